//! The OwnTracks app protocol (HTTP mode, and MQTT payloads, which are the
//! same JSON objects without `topic`): one message per request body.
//!
//! Why this is more than "deserialize a struct":
//!
//! * **Units.** `vel` is km/h (converted to m/s), `tst` and `created_at` are
//!   Unix seconds, `acc`/`alt`/`vac` metres, `cog` degrees, `batt` percent.
//! * **Presence.** Android omits numbers that are 0, so a missing number is
//!   "unknown", never 0. Android's deserializer also takes floats for its
//!   integer fields, and some devices send numbers as strings: all accepted.
//! * **Nothing is lost.** Every member without a [`Fix`] column (`tid`, `bs`,
//!   `t`, `m`, `conn`, `SSID`, `inregions`, `_id`, `created_at`, …) goes into
//!   [`Fix::extras`] verbatim, exactly like the `.rec` importer of
//!   `polo-formats` does, so a live point and an imported one look the same.
//! * **Identity.** In HTTP mode the body carries `topic`
//!   (`owntracks/<user>/<device>`), which is how a server can tell the sender
//!   when the `X-Limit-*` headers are missing. It is returned as a [`Topic`];
//!   the handler decides (authenticated user first, as protocols.md says).
//! * **Zero-length bodies** are sent when a friend is deleted: [`Message::Empty`].
//! * **Encryption** is libsodium `crypto_secretbox` with the passphrase cut or
//!   zero-padded to 32 bytes as the key: [`decrypt`], [`encrypt`].
//! * **Overland's OwnTracks mode** counts `tst` from 2001-01-01; with
//!   [`ParseOptions::from_overland`] such values are moved to the Unix epoch.
//! * **Friends.** The apps file HTTP-mode friends under `owntracks/http/<tid>`,
//!   so the reply built by [`friends_reply`] gives every device a unique `tid`.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use crypto_secretbox::aead::rand_core::RngCore as _;
use crypto_secretbox::aead::{Aead as _, KeyInit as _, OsRng};
use crypto_secretbox::{Key, Nonce, XSalsa20Poly1305};
use polo_domain::{Coord, Extras, Fix, SourceFormat, Timestamp};
use polo_formats::ImportOptions;
use polo_formats::extras::ExtrasBuilder;
use polo_formats::raw_object::OwntracksMeasurements;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::json::{Members, epoch_seconds, is_null, number, shown, string};

/// Seconds between 1970-01-01 and 2001-01-01 (Apple's reference date).
pub const APPLE_EPOCH_OFFSET_S: i64 = 978_307_200;

/// How to read a message.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// "Now", for refusing fixes from before 1985 or from the future.
    pub now: Timestamp,
    /// The request came from Overland's OwnTracks logging mode (its `Authorization`
    /// header is the unencoded `Basic <token>:`): `tst` values below 1e9 are seconds
    /// since 2001-01-01 and get [`APPLE_EPOCH_OFFSET_S`] added.
    pub from_overland: bool,
}

impl ParseOptions {
    /// Options for a normal OwnTracks app at `now`.
    #[must_use]
    pub fn at(now: Timestamp) -> Self {
        Self { now, from_overland: false }
    }
}

/// Why a message could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwntracksError {
    /// The body is not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    /// A required member is missing.
    #[error("{kind} message without {field}")]
    Missing {
        /// The message type.
        kind: &'static str,
        /// The missing member.
        field: &'static str,
    },
    /// A member has an unusable value.
    #[error("{field} {value} is invalid: {reason}")]
    Invalid {
        /// The member.
        field: &'static str,
        /// Its raw JSON text (shortened).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The time is implausible (before 1985, or in the future).
    #[error("{0}")]
    Time(String),
    /// An object of the message names a key twice (polo's one rule for
    /// duplicate JSON keys, as in every importer: `polo_formats::json_keys`).
    /// Permanent: the HTTP handler answers 400 naming the key.
    #[error(
        "the message names the key {key:?} twice (the second at byte {offset}): a message that names a key twice is ambiguous"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// Byte offset of its second occurrence in the body.
        offset: usize,
    },
    /// A decrypted payload was itself encrypted.
    #[error("an encrypted payload decrypted to another encrypted payload")]
    NestedEncryption,
    /// Decryption failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The passphrase is empty (the apps then do not encrypt at all).
    #[error("the encryption key is empty")]
    EmptyKey,
    /// `data` is not base64.
    #[error("encrypted data is not base64: {0}")]
    Base64(String),
    /// `data` is shorter than a nonce and a MAC.
    #[error("encrypted data is {0} bytes, shorter than nonce and MAC")]
    TooShort(usize),
    /// Wrong key, or the data was altered.
    #[error("decryption failed: wrong key or damaged data")]
    Decrypt,
    /// Encryption failed (no randomness, or an absurdly long message).
    #[error("encryption failed: {0}")]
    Encrypt(String),
}

/// `owntracks/<user>/<device>[/<rest>]`, split. Both apps let the user change
/// the base, so parts are taken by position, as the Recorder does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// The topic as sent.
    pub raw: String,
    /// Second part (`jane`).
    pub user: Option<String>,
    /// Third part (`phone`).
    pub device: Option<String>,
    /// What follows (`event`, `info`, …), when anything does.
    pub rest: Option<String>,
}

impl Topic {
    /// Splits a topic; empty parts are `None`.
    #[must_use]
    pub fn parse(raw: &str) -> Self {
        let mut parts = raw.splitn(4, '/');
        let _base = parts.next();
        let mut next = || parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
        let (user, device, rest) = (next(), next(), next());
        Self { raw: raw.to_owned(), user, device, rest }
    }

    /// The device name the topic suggests: its third part, or for a two-part
    /// topic (Overland's OwnTracks mode sends `owntracks/<device_id>`) the second.
    #[must_use]
    pub fn device_hint(&self) -> Option<&str> {
        match (&self.device, &self.user) {
            (Some(d), _) => Some(d),
            (None, Some(u)) => Some(u),
            (None, None) => None,
        }
    }
}

/// A `location` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The fix; every member without a column is in its extras.
    pub fix: Fix,
    /// Tracker ID (`tid`), needed for friends.
    pub tid: Option<String>,
    /// The HTTP-mode `topic`.
    pub topic: Option<Topic>,
    /// Android's per-message `_id`: the same on every retry of one message.
    pub message_id: Option<String>,
    /// When the message was built (`created_at`).
    pub created_at: Option<Timestamp>,
    /// Trigger (`t`): `p` ping, `c` region, `u` manual, … `None` means automatic.
    pub trigger: Option<String>,
}

/// A `transition` message: entering or leaving a region. It is also a fix
/// (the device was there then); `_type`, `event`, `desc`, `rid`, `wtst` stay
/// in its extras so the transition remains visible in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Where and when.
    pub fix: Fix,
    /// `enter` or `leave`.
    pub event: Option<String>,
    /// The region's name.
    pub desc: Option<String>,
    /// The region's ID.
    pub rid: Option<String>,
    /// When the region was created (`wtst`).
    pub wtst: Option<Timestamp>,
    /// Tracker ID.
    pub tid: Option<String>,
    /// The HTTP-mode `topic`.
    pub topic: Option<Topic>,
    /// Trigger (`c` region, `b` beacon, …).
    pub trigger: Option<String>,
}

/// A region definition (`waypoint`, or one entry of `waypoints`).
#[derive(Debug, Clone, PartialEq)]
pub struct Waypoint {
    /// Name.
    pub desc: Option<String>,
    /// Centre; `None` for beacon regions without a position.
    pub coord: Option<Coord>,
    /// Radius in metres.
    pub radius_m: Option<f64>,
    /// Creation time, which OwnTracks uses as the region's identity.
    pub tst: Option<Timestamp>,
    /// Region ID.
    pub rid: Option<String>,
    /// Every other member (beacon `uuid`, `major`, `minor`, …), verbatim.
    pub extras: Option<Extras>,
}

/// A `card`: a friend's name and picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    /// Display name.
    pub name: Option<String>,
    /// Base64 PNG.
    pub face: Option<String>,
    /// Tracker ID.
    pub tid: Option<String>,
    /// The HTTP-mode `topic`.
    pub topic: Option<Topic>,
}

impl Card {
    /// What polo keeps of it: `None` for a card with neither name nor face,
    /// which removes the device's card.
    #[must_use]
    pub fn into_device_card(self) -> Option<polo_store::DeviceCard> {
        (self.name.is_some() || self.face.is_some())
            .then_some(polo_store::DeviceCard { name: self.name, face: self.face })
    }
}

/// One OwnTracks message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A zero-length (or blank) body: sent when a friend is deleted. Accept and ignore.
    Empty,
    /// A position report.
    Location(Location),
    /// A region enter/leave event.
    Transition(Transition),
    /// One region definition.
    Waypoint(Waypoint),
    /// An export of all regions.
    Waypoints(Vec<Waypoint>),
    /// Name and picture.
    Card(Card),
    /// Last will: the broker's "this device went away"; `tst` is its first connect.
    Lwt {
        /// The `tst` of the will.
        tst: Option<Timestamp>,
    },
    /// An encrypted message: [`decrypt_message`] with the device's key.
    Encrypted {
        /// base64(nonce ‖ ciphertext+MAC).
        data: String,
    },
    /// Any other type (`status`, `steps`, `beacon`, `cmd`, `configuration`, `request`…),
    /// or an object without `_type` and position (then `kind` is empty).
    Other {
        /// The `_type`.
        kind: String,
    },
}

/// Parses one message body.
///
/// # Errors
/// [`OwntracksError`] for bodies that are not a JSON object, that name a key
/// twice ([`OwntracksError::DuplicateKey`]), and for location and transition
/// messages without a usable position or time. Handlers should still answer
/// 2xx for the unusable ones (the iOS app drops messages on 4xx and Android
/// retries them forever), and count them; a duplicate key is answered 400,
/// like an undecryptable message, because the sender must be told.
pub fn parse(body: &[u8], options: &ParseOptions) -> Result<Message, OwntracksError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Message::Empty);
    }
    let text = std::str::from_utf8(body).map_err(|e| OwntracksError::NotJson(e.to_string()))?;
    let members = Members::parse(text).map_err(|e| OwntracksError::NotJson(e.to_string()))?;
    if let Some(d) = polo_formats::json_keys::duplicate_key(body) {
        return Err(OwntracksError::DuplicateKey { key: d.key, offset: d.offset });
    }
    let kind = members.get("_type").and_then(string);
    match kind.as_deref() {
        Some("location") => parse_position(&members, options, false).map(|p| Message::Location(p.into_location())),
        None if members.get("lat").is_some() => {
            parse_position(&members, options, false).map(|p| Message::Location(p.into_location()))
        }
        Some("transition") => parse_position(&members, options, true).map(|p| Message::Transition(p.into_transition())),
        Some("waypoint") => Ok(Message::Waypoint(parse_waypoint(&members, options))),
        Some("waypoints") => Ok(Message::Waypoints(parse_waypoints(&members, options))),
        Some("card") => Ok(Message::Card(Card {
            name: members.get("name").and_then(string),
            face: members.get("face").and_then(string),
            tid: members.get("tid").and_then(string),
            topic: topic(&members),
        })),
        Some("lwt") => Ok(Message::Lwt { tst: members.get("tst").and_then(|v| tst(v, options)) }),
        Some("encrypted") => match members.get("data").and_then(string) {
            Some(data) => Ok(Message::Encrypted { data }),
            None => Err(OwntracksError::Missing { kind: "encrypted", field: "data" }),
        },
        other => Ok(Message::Other { kind: other.unwrap_or_default().to_owned() }),
    }
}

/// Decrypts an [`Message::Encrypted`] payload with the device's passphrase and
/// parses the plaintext.
///
/// # Errors
/// [`OwntracksError::Crypto`] for a wrong key or damaged data,
/// [`OwntracksError::NestedEncryption`], and the errors of [`parse`].
pub fn decrypt_message(
    key_passphrase: &str,
    data_b64: &str,
    options: &ParseOptions,
) -> Result<Message, OwntracksError> {
    let plain = decrypt(key_passphrase, data_b64)?;
    match parse(&plain, options)? {
        Message::Encrypted { .. } => Err(OwntracksError::NestedEncryption),
        message => Ok(message),
    }
}

fn topic(members: &Members<'_>) -> Option<Topic> {
    members.get("topic").and_then(string).map(|t| Topic::parse(&t))
}

fn tst(raw: &RawValue, options: &ParseOptions) -> Option<Timestamp> {
    let t = epoch_seconds(raw)?;
    if options.from_overland && t.0 < 1_000_000_000_000 {
        return Some(Timestamp(t.0 + APPLE_EPOCH_OFFSET_S * 1000));
    }
    Some(t)
}

/// What location and transition messages share.
struct Position {
    fix: Fix,
    tid: Option<String>,
    topic: Option<Topic>,
    message_id: Option<String>,
    created_at: Option<Timestamp>,
    trigger: Option<String>,
    event: Option<String>,
    desc: Option<String>,
    rid: Option<String>,
    wtst: Option<Timestamp>,
}

impl Position {
    fn into_location(self) -> Location {
        let Self { fix, tid, topic, message_id, created_at, trigger, .. } = self;
        Location { fix, tid, topic, message_id, created_at, trigger }
    }

    fn into_transition(self) -> Transition {
        let Self { fix, tid, topic, trigger, event, desc, rid, wtst, .. } = self;
        Transition { fix, event, desc, rid, wtst, tid, topic, trigger }
    }
}

fn parse_position(members: &Members<'_>, options: &ParseOptions, transition: bool) -> Result<Position, OwntracksError> {
    let kind = if transition { "transition" } else { "location" };
    let mut extras = ExtrasBuilder::new();
    let (mut lat, mut lon, mut time) = (None, None, None);
    let mut measured = OwntracksMeasurements::default();
    for (key, value) in &members.0 {
        let slot = match key.as_str() {
            "lat" => &mut lat,
            "lon" => &mut lon,
            "tst" => {
                time = Some(tst(value, options).ok_or_else(|| OwntracksError::Invalid {
                    field: "tst",
                    value: shown(value),
                    reason: "not epoch seconds".to_owned(),
                })?);
                continue;
            }
            // Identity, not measurement: returned as `topic`.
            "topic" => continue,
            "_type" if !transition => continue,
            other => match measured.slot(other) {
                Some(slot) => slot,
                None => {
                    extras.raw(key, value.get());
                    continue;
                }
            },
        };
        if is_null(value) {
            continue;
        }
        match number(value) {
            Some(v) => *slot = Some(v),
            None if matches!(key.as_str(), "lat" | "lon") => {
                return Err(OwntracksError::Invalid {
                    field: if key == "lat" { "lat" } else { "lon" },
                    value: shown(value),
                    reason: "not a number".to_owned(),
                });
            }
            // A column value that is not a number is kept rather than lost.
            _ => extras.raw(key, value.get()),
        }
    }
    let lat = lat.ok_or(OwntracksError::Missing { kind, field: "lat" })?;
    let lon = lon.ok_or(OwntracksError::Missing { kind, field: "lon" })?;
    let time = time.ok_or(OwntracksError::Missing { kind, field: "tst" })?;
    ImportOptions { now: options.now }.check_time(time).map_err(OwntracksError::Time)?;
    let coord = Coord::from_degrees(lat, lon).map_err(|e| OwntracksError::Invalid {
        field: "lat/lon",
        value: format!("{lat},{lon}"),
        reason: e.to_string(),
    })?;
    let mut fix = Fix::new(time, coord, SourceFormat::Owntracks);
    measured.apply(&mut fix);
    fix.extras = extras.finish();
    let text = |key: &str| members.get(key).and_then(string);
    Ok(Position {
        fix,
        tid: text("tid"),
        topic: topic(members),
        message_id: text("_id"),
        created_at: members.get("created_at").and_then(epoch_seconds),
        trigger: text("t"),
        event: text("event"),
        desc: text("desc"),
        rid: text("rid"),
        wtst: members.get("wtst").and_then(epoch_seconds),
    })
}

fn parse_waypoint(members: &Members<'_>, options: &ParseOptions) -> Waypoint {
    let mut extras = ExtrasBuilder::new();
    for (key, value) in &members.0 {
        if !matches!(key.as_str(), "_type" | "desc" | "lat" | "lon" | "rad" | "tst" | "rid" | "topic") {
            extras.raw(key, value.get());
        }
    }
    let coord = match (members.get("lat").and_then(number), members.get("lon").and_then(number)) {
        (Some(lat), Some(lon)) => Coord::from_degrees(lat, lon).ok(),
        _ => None,
    };
    Waypoint {
        desc: members.get("desc").and_then(string),
        coord,
        radius_m: members.get("rad").and_then(number),
        tst: members.get("tst").and_then(|v| tst(v, options)),
        rid: members.get("rid").and_then(string),
        extras: extras.finish(),
    }
}

fn parse_waypoints(members: &Members<'_>, options: &ParseOptions) -> Vec<Waypoint> {
    let Some(list) = members.get("waypoints") else {
        return Vec::new();
    };
    let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(list.get()) else {
        return Vec::new();
    };
    items.into_iter().filter_map(|item| Members::parse(item.get()).ok()).map(|m| parse_waypoint(&m, options)).collect()
}

impl Waypoint {
    /// The region as `polo_zones` reads it.
    #[must_use]
    pub fn region(&self) -> polo_zones::regions::Region {
        polo_zones::regions::Region {
            desc: self.desc.clone(),
            center: self.coord.map(|c| [c.lat(), c.lon()]),
            radius_m: self.radius_m,
            tst: self.tst.map(|t| t.0.div_euclid(1000)),
            rid: self.rid.clone(),
        }
    }
}

impl Transition {
    /// The transition as the event log keeps it.
    #[must_use]
    pub fn app_transition(&self) -> crate::zones::regions::AppTransition {
        crate::zones::regions::AppTransition {
            event: self.event.clone().unwrap_or_default(),
            at: self.fix.time,
            lat: self.fix.coord.lat(),
            lon: self.fix.coord.lon(),
            accuracy_m: self.fix.horizontal_accuracy_m(),
            desc: self.desc.clone(),
            rid: self.rid.clone(),
            wtst: self.wtst.map(|t| t.0.div_euclid(1000)),
            trigger: self.trigger.clone(),
        }
    }
}

// ---------------------------------------------------------------------------
// Encryption

fn cipher(key_passphrase: &str) -> Result<XSalsa20Poly1305, CryptoError> {
    if key_passphrase.is_empty() {
        return Err(CryptoError::EmptyKey);
    }
    let mut key = [0u8; 32];
    let bytes = key_passphrase.as_bytes();
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    Ok(XSalsa20Poly1305::new(Key::from_slice(&key)))
}

/// Decrypts an OwnTracks `data` field: base64 of (24-byte nonce ‖ ciphertext+MAC),
/// libsodium `crypto_secretbox` with the passphrase's UTF-8 bytes cut or
/// zero-padded to 32 bytes as the key. Whitespace in the base64 is ignored.
///
/// # Errors
/// [`CryptoError`] for an empty key, bad base64, short data, or a wrong key.
pub fn decrypt(key_passphrase: &str, data_b64: &str) -> Result<Vec<u8>, CryptoError> {
    let cipher = cipher(key_passphrase)?;
    let compact: String = data_b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let data = BASE64.decode(compact.as_bytes()).map_err(|e| CryptoError::Base64(e.to_string()))?;
    if data.len() < 24 + 16 {
        return Err(CryptoError::TooShort(data.len()));
    }
    let (nonce, ciphertext) = data.split_at(24);
    cipher.decrypt(Nonce::from_slice(nonce), ciphertext).map_err(|_| CryptoError::Decrypt)
}

/// Encrypts `plaintext` for a device with a fresh random nonce, in the form
/// [`decrypt`] reads (and the apps expect in replies).
///
/// # Errors
/// [`CryptoError::EmptyKey`]; [`CryptoError::Encrypt`] when the OS has no randomness.
pub fn encrypt(key_passphrase: &str, plaintext: &[u8]) -> Result<String, CryptoError> {
    let mut nonce = [0u8; 24];
    OsRng.try_fill_bytes(&mut nonce).map_err(|e| CryptoError::Encrypt(e.to_string()))?;
    encrypt_with_nonce(key_passphrase, &nonce, plaintext)
}

/// [`encrypt`] with a caller-chosen nonce. A nonce must never be reused with
/// the same key; this exists for reproducible tests.
///
/// # Errors
/// As [`encrypt`].
pub fn encrypt_with_nonce(key_passphrase: &str, nonce: &[u8; 24], plaintext: &[u8]) -> Result<String, CryptoError> {
    let sealed = cipher(key_passphrase)?
        .encrypt(Nonce::from_slice(nonce), plaintext)
        .map_err(|e| CryptoError::Encrypt(e.to_string()))?;
    let mut out = Vec::with_capacity(24 + sealed.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(BASE64.encode(out))
}

/// The whole encrypted reply body: `{"_type":"encrypted","data":"…"}` around
/// `plaintext` (typically the serialized [`friends_reply`] array).
///
/// # Errors
/// As [`encrypt`].
pub fn encrypted_envelope(key_passphrase: &str, plaintext: &[u8]) -> Result<Value, CryptoError> {
    Ok(json!({"_type": "encrypted", "data": encrypt(key_passphrase, plaintext)?}))
}

// ---------------------------------------------------------------------------
// Friends reply

/// One device the caller may see, with what the reply needs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    /// Owner's user name (for `topic`).
    pub user: String,
    /// Device name (for `topic`, and the `tid` fallback).
    pub device: String,
    /// The `tid` the device reported itself, if any.
    pub tid: Option<String>,
    /// True for the caller's own device: it keeps its own `tid` first, so the
    /// app shows itself under the tracker ID it chose.
    pub is_self: bool,
    /// Its last location.
    pub last: Option<Fix>,
    /// Card name.
    pub name: Option<String>,
    /// Card picture (base64 PNG).
    pub face: Option<String>,
}

/// Builds the reply array for an OwnTracks HTTP POST, as the Recorder does:
/// one `card` per friend that has both name and face, and one reduced
/// `location` (`tid, lat, lon, tst, vel, alt, cog, acc, vac, topic`; unknown
/// measurements left out) per friend with a last location.
///
/// Every friend gets a distinct `tid` (the apps file HTTP friends under
/// `owntracks/http/<tid>`, so equal tids overwrite each other): the device's
/// own `tid`, else the initials of its name; on a collision the second
/// character is replaced by `2`…`9`, then any letter or digit pair is tried.
/// The caller's own device, then devices that reported a `tid`, then the rest
/// sorted by user and device choose first, so the outcome does not depend on
/// the order of `friends`. Output follows the order of `friends`.
#[must_use]
pub fn friends_reply(friends: &[Friend]) -> Vec<ReplyItem<'_>> {
    let tids = unique_tids(friends);
    let mut out = Vec::with_capacity(friends.len() * 2);
    for (friend, tid) in friends.iter().zip(tids) {
        if let (Some(name), Some(face)) = (&friend.name, &friend.face) {
            out.push(ReplyItem::Card { tid: tid.clone(), name, face });
        }
        if let Some(fix) = &friend.last {
            out.push(ReplyItem::Location(reduced_location(
                fix,
                tid,
                format!("owntracks/{}/{}", friend.user, friend.device),
            )));
        }
    }
    out
}

/// One element of the friends reply. Serialized straight to the body: the
/// reply is built for every OwnTracks request, so it skips `serde_json::Value`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "_type", rename_all = "lowercase")]
pub enum ReplyItem<'a> {
    /// A friend's name and picture.
    Card {
        /// The friend's unique tracker ID in this reply.
        tid: String,
        /// Card name.
        name: &'a str,
        /// Card picture (base64 PNG).
        face: &'a str,
    },
    /// A friend's last location.
    Location(ReducedLocation),
}

/// The members of a friend's `location` in the reply; unknown measurements
/// are left out.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReducedLocation {
    tid: String,
    lat: f64,
    lon: f64,
    tst: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    vel: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alt: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cog: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acc: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vac: Option<i64>,
    topic: String,
}

fn reduced_location(fix: &Fix, tid: String, topic: String) -> ReducedLocation {
    // Rounded; in i64 range for any stored u32/i32 column.
    #[allow(clippy::cast_possible_truncation)]
    let whole = |v: f64| v.round() as i64;
    ReducedLocation {
        tid,
        lat: fix.coord.lat(),
        lon: fix.coord.lon(),
        tst: fix.time.0.div_euclid(1000),
        vel: fix.speed_m_s().map(|v| whole(v * 3.6)),
        alt: fix.altitude_m().map(whole),
        cog: fix.course_deg().map(whole),
        acc: fix.horizontal_accuracy_m().map(whole),
        vac: fix.vertical_accuracy_m().map(whole),
        topic,
    }
}

/// The `tid` a fix's extras carry (OwnTracks keeps it there), read without
/// building the whole object.
#[must_use]
pub fn extras_tid(extras: &Extras) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct OnlyTid<'a> {
        #[serde(borrow)]
        tid: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<OnlyTid<'_>>(extras.as_str()).ok()?.tid.map(std::borrow::Cow::into_owned)
}

/// The initials of a device name: first letters of its first two words, or
/// the first two letters or digits of a single word, upper-cased.
fn initials(name: &str) -> String {
    let words: Vec<Vec<char>> = name
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '.' | '/' | ',' | '(' | ')'))
        .map(|w| w.chars().filter(|c| c.is_alphanumeric()).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let tid: String = match words.as_slice() {
        [] => "XX".to_owned(),
        [one] => one.iter().take(2).collect(),
        [first, second, ..] => [first[0], second[0]].iter().collect(),
    };
    tid.to_uppercase()
}

fn unique_tids(friends: &[Friend]) -> Vec<String> {
    let mut order: Vec<usize> = (0..friends.len()).collect();
    order.sort_by(|&a, &b| {
        let key =
            |f: &Friend| (!f.is_self, f.tid.as_deref().is_none_or(str::is_empty), f.user.clone(), f.device.clone());
        key(&friends[a]).cmp(&key(&friends[b])).then(a.cmp(&b))
    });
    let mut taken = HashSet::new();
    let mut out = vec![String::new(); friends.len()];
    for index in order {
        let friend = &friends[index];
        let wanted = friend
            .tid
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map_or_else(|| initials(&friend.device), str::to_owned);
        let tid = free_tid(&wanted, &taken);
        taken.insert(tid.clone());
        out[index] = tid;
    }
    out
}

fn free_tid(wanted: &str, taken: &HashSet<String>) -> String {
    if !taken.contains(wanted) {
        return wanted.to_owned();
    }
    let first: String = wanted.chars().take(1).collect();
    let first = if first.is_empty() { "X".to_owned() } else { first };
    const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let candidates = ('2'..='9')
        .map(|d| format!("{first}{d}"))
        .chain(ALNUM.chars().flat_map(|a| ALNUM.chars().map(move |b| format!("{a}{b}"))));
    for candidate in candidates {
        if !taken.contains(&candidate) {
            return candidate;
        }
    }
    // More than 1,300 friends: fall back to numbered tids.
    (1..).map(|n| format!("{first}{n}")).find(|c| !taken.contains(c)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn opts() -> ParseOptions {
        ParseOptions::at(NOW)
    }

    /// A location as Android sends it in HTTP mode (our own values).
    const ANDROID_LOCATION: &str = r#"{"_type":"location","created_at":1763700000,"_id":"f00dcafe","batt":64,"bs":2,
        "acc":9,"vac":4,"lat":52.520008,"lon":13.404954,"alt":48,"vel":18,"cog":270,"tst":1763699950,"m":2,
        "conn":"m","inregions":["Work"],"BSSID":"11:22:33:44:55:66","SSID":"officenet","tid":"mx","t":"p",
        "topic":"owntracks/max/pixel"}"#;

    #[test]
    fn a_key_named_twice_is_refused_at_any_depth_and_inside_encrypted_payloads() {
        let twice = r#"{"_type":"location","lat":52.5,"lon":13.4,"tst":1763699950,"lat":1}"#;
        assert_eq!(
            parse(twice.as_bytes(), &opts()),
            Err(OwntracksError::DuplicateKey { key: "lat".to_owned(), offset: 59 })
        );
        let nested = r#"{"_type":"waypoints","waypoints":[{"desc":"a","desc":"b"}]}"#;
        let Err(e) = parse(nested.as_bytes(), &opts()) else { panic!("accepted") };
        assert!(e.to_string().starts_with("the message names the key \"desc\" twice (the second at byte 46)"), "{e}");
        let sealed = encrypt("k", twice.as_bytes()).unwrap();
        assert!(matches!(decrypt_message("k", &sealed, &opts()), Err(OwntracksError::DuplicateKey { .. })));
        // The same key in different objects is no repeat.
        let fine = r#"{"_type":"waypoints","waypoints":[{"desc":"a"},{"desc":"b"}],"desc":"c"}"#;
        assert!(matches!(parse(fine.as_bytes(), &opts()), Ok(Message::Waypoints(w)) if w.len() == 2));
    }

    #[test]
    fn android_location_units_and_extras() {
        let Message::Location(loc) = parse(ANDROID_LOCATION.as_bytes(), &opts()).unwrap() else { panic!() };
        let f = &loc.fix;
        assert_eq!(f.time, Timestamp(1_763_699_950_000), "tst is the fix time, not created_at");
        assert_eq!(f.coord, Coord::from_degrees(52.520008, 13.404954).unwrap());
        assert_eq!(f.speed_cm_s, Some(500), "vel 18 km/h = 5 m/s");
        assert_eq!(
            (f.horizontal_accuracy_cm, f.vertical_accuracy_cm, f.altitude_cm),
            (Some(900), Some(400), Some(4800))
        );
        assert_eq!((f.course_centideg, f.battery_percent), (Some(27_000), Some(64)));
        assert_eq!(f.source, SourceFormat::Owntracks);
        assert_eq!(loc.tid.as_deref(), Some("mx"));
        assert_eq!(loc.message_id.as_deref(), Some("f00dcafe"));
        assert_eq!(loc.created_at, Some(Timestamp(1_763_700_000_000)));
        assert_eq!(loc.trigger.as_deref(), Some("p"));
        let topic = loc.topic.unwrap();
        assert_eq!((topic.user.as_deref(), topic.device.as_deref(), topic.rest), (Some("max"), Some("pixel"), None));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"created_at":1763700000,"_id":"f00dcafe","bs":2,"m":2,"conn":"m","inregions":["Work"],"BSSID":"11:22:33:44:55:66","SSID":"officenet","tid":"mx","t":"p"}"#
        );
    }

    #[test]
    fn missing_numbers_are_unknown_and_floats_and_strings_are_accepted() {
        let body = br#"{"_type":"location","lat":"52.5","lon":13.4,"tst":"1763699950","acc":12.7,"batt":"55"}"#;
        let Message::Location(loc) = parse(body, &opts()).unwrap() else { panic!() };
        let f = loc.fix;
        assert_eq!(f.horizontal_accuracy_cm, Some(1270));
        assert_eq!(f.battery_percent, Some(55));
        assert_eq!((f.speed_cm_s, f.altitude_cm, f.course_centideg, f.vertical_accuracy_cm), (None, None, None, None));
        assert_eq!(f.extras, None);
        // An explicit 0 is a measurement, not a missing value.
        let body = br#"{"_type":"location","lat":52.5,"lon":13.4,"tst":1763699950,"vel":0}"#;
        let Message::Location(loc) = parse(body, &opts()).unwrap() else { panic!() };
        assert_eq!(loc.fix.speed_cm_s, Some(0));
    }

    #[test]
    fn location_errors() {
        let e = parse(br#"{"_type":"location","lat":52.5,"tst":1763699950}"#, &opts()).unwrap_err();
        assert_eq!(e, OwntracksError::Missing { kind: "location", field: "lon" });
        let e = parse(br#"{"_type":"location","lat":52.5,"lon":13.4,"tst":0}"#, &opts()).unwrap_err();
        assert!(matches!(e, OwntracksError::Time(_)), "{e}");
        let e = parse(br#"{"_type":"location","lat":"north","lon":13.4,"tst":1763699950}"#, &opts()).unwrap_err();
        assert!(matches!(e, OwntracksError::Invalid { field: "lat", .. }), "{e}");
        assert!(matches!(parse(b"[1,2]", &opts()), Err(OwntracksError::NotJson(_))));
        assert!(matches!(parse(b"{\"_type\":", &opts()), Err(OwntracksError::NotJson(_))));
    }

    #[test]
    fn empty_body_is_accepted() {
        assert_eq!(parse(b"", &opts()).unwrap(), Message::Empty);
        assert_eq!(parse(b" \n", &opts()).unwrap(), Message::Empty);
    }

    #[test]
    fn transition_keeps_event_in_extras() {
        let body = br#"{"_type":"transition","wtst":1700000500,"lat":52.5163,"lon":13.3777,"tst":1763700200,"acc":7,
            "tid":"mx","event":"enter","desc":"Gate","t":"c","rid":"9f8e7d"}"#;
        let Message::Transition(t) = parse(body, &opts()).unwrap() else { panic!() };
        assert_eq!(
            (t.event.as_deref(), t.desc.as_deref(), t.rid.as_deref()),
            (Some("enter"), Some("Gate"), Some("9f8e7d"))
        );
        assert_eq!(t.wtst, Some(Timestamp(1_700_000_500_000)));
        assert_eq!(t.fix.time, Timestamp(1_763_700_200_000));
        assert_eq!(t.fix.horizontal_accuracy_cm, Some(700));
        assert_eq!(
            t.fix.extras.unwrap().as_str(),
            r#"{"_type":"transition","wtst":1700000500,"tid":"mx","event":"enter","desc":"Gate","t":"c","rid":"9f8e7d"}"#
        );
    }

    #[test]
    fn other_message_types() {
        let w = parse(
            br#"{"_type":"waypoint","desc":"Gym","lat":52.51,"lon":13.39,"rad":80,"tst":1700000002,"rid":"aa11"}"#,
            &opts(),
        );
        let Message::Waypoint(w) = w.unwrap() else { panic!() };
        assert_eq!((w.desc.as_deref(), w.radius_m, w.rid.as_deref()), (Some("Gym"), Some(80.0), Some("aa11")));
        assert_eq!(w.coord, Coord::from_degrees(52.51, 13.39).ok());
        let ws = parse(
            br#"{"_type":"waypoints","_creator":"tests","waypoints":[{"_type":"waypoint","desc":"A","lat":1,"lon":2,"rad":5,"tst":1700000003},{"_type":"waypoint","desc":"Beacon","uuid":"X","tst":1700000004}]}"#,
            &opts(),
        );
        let Message::Waypoints(ws) = ws.unwrap() else { panic!() };
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[1].coord, None);
        assert_eq!(ws[1].extras.as_ref().unwrap().as_str(), r#"{"uuid":"X"}"#);
        let card = parse(br#"{"_type":"card","tid":"mx","name":"Max Muster","face":"iVBORw0KGgo="}"#, &opts()).unwrap();
        let Message::Card(card) = card else { panic!() };
        assert_eq!(
            (card.name.as_deref(), card.face.as_deref(), card.tid.as_deref()),
            (Some("Max Muster"), Some("iVBORw0KGgo="), Some("mx"))
        );
        assert_eq!(
            parse(br#"{"_type":"lwt","tst":1763690000}"#, &opts()).unwrap(),
            Message::Lwt { tst: Some(Timestamp(1_763_690_000_000)) }
        );
        assert_eq!(
            parse(br#"{"_type":"encrypted","data":"AAAA"}"#, &opts()).unwrap(),
            Message::Encrypted { data: "AAAA".into() }
        );
        assert_eq!(
            parse(br#"{"_type":"status","android":{}}"#, &opts()).unwrap(),
            Message::Other { kind: "status".into() }
        );
        assert_eq!(parse(br#"{"foo":1}"#, &opts()).unwrap(), Message::Other { kind: String::new() });
    }

    #[test]
    fn location_without_type_is_a_location() {
        let m = parse(br#"{"lat":52.5,"lon":13.4,"tst":1763699950}"#, &opts()).unwrap();
        assert!(matches!(m, Message::Location(_)));
    }

    #[test]
    fn topics() {
        let t = Topic::parse("owntracks/jane/phone/event");
        assert_eq!(
            (t.user.as_deref(), t.device.as_deref(), t.rest.as_deref()),
            (Some("jane"), Some("phone"), Some("event"))
        );
        assert_eq!(Topic::parse("owntracks/ovl-iphone").device_hint(), Some("ovl-iphone"));
        assert_eq!(Topic::parse("owntracks/jane/phone").device_hint(), Some("phone"));
        assert_eq!(Topic::parse("owntracks").device_hint(), None);
    }

    #[test]
    fn overland_owntracks_mode_epoch_is_moved_to_1970() {
        // Overland's OwnTracks mode: seconds since 2001-01-01 (about 7.8e8 in 2025).
        let body = br#"{"_type":"location","lat":45.5,"lon":-122.6,"tst":785000000,"acc":10,"batt":0.9,"topic":"owntracks/ovl1"}"#;
        let quirky = ParseOptions { now: NOW, from_overland: true };
        let Message::Location(loc) = parse(body, &quirky).unwrap() else { panic!() };
        assert_eq!(loc.fix.time, Timestamp((785_000_000 + APPLE_EPOCH_OFFSET_S) * 1000));
        assert_eq!(loc.topic.unwrap().device_hint(), Some("ovl1"));
        // Without the flag the value is taken literally (1994).
        let Message::Location(loc) = parse(body, &opts()).unwrap() else { panic!() };
        assert_eq!(loc.fix.time, Timestamp(785_000_000_000));
        // A correct Unix tst from Overland is left alone.
        let body = br#"{"_type":"location","lat":45.5,"lon":-122.6,"tst":1763699950}"#;
        let Message::Location(loc) = parse(body, &quirky).unwrap() else { panic!() };
        assert_eq!(loc.fix.time, Timestamp(1_763_699_950_000));
    }

    // Generated independently with PyNaCl 1.5 (`nacl.secret.SecretBox`): key
    // b"s3cret passphrase" zero-padded to 32 bytes, nonce bytes 0..24.
    const PYNACL_PLAIN: &str = r#"{"_type":"location","lat":48.8566,"lon":2.3522,"tst":1763700000,"tid":"JP"}"#;
    const PYNACL_DATA: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXkIZn3Y3vw1zQY5i2Hg2OEchUZaR0eay1DlrQEsB5LFM9v2wF3KUq2glORh78s34stiY26NFWxlrcHOk/liesd5nCwiQe/ldI16pgUmjuiWcjySiPzMTeJu0S7Q==";
    // Key longer than 32 bytes ("0123456789abcdef0123456789abcdefEXTRA" cut to 32), nonce 24×7, plaintext "[]".
    const PYNACL_LONG_KEY_DATA: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHLTDqrWM9QdiqwJNNEciIdImS";

    #[test]
    fn decrypts_a_libsodium_vector() {
        assert_eq!(decrypt("s3cret passphrase", PYNACL_DATA).unwrap(), PYNACL_PLAIN.as_bytes());
        assert_eq!(decrypt("0123456789abcdef0123456789abcdefEXTRA", PYNACL_LONG_KEY_DATA).unwrap(), b"[]");
        assert_eq!(decrypt("0123456789abcdef0123456789abcdef", PYNACL_LONG_KEY_DATA).unwrap(), b"[]");
        assert_eq!(decrypt("wrong", PYNACL_DATA), Err(CryptoError::Decrypt));
        assert_eq!(decrypt("", PYNACL_DATA), Err(CryptoError::EmptyKey));
        assert!(matches!(decrypt("k", "not base64!"), Err(CryptoError::Base64(_))));
        assert_eq!(decrypt("k", "AAAA"), Err(CryptoError::TooShort(3)));
        // Line-wrapped base64 is accepted.
        let wrapped = format!("{}\n{}", &PYNACL_DATA[..40], &PYNACL_DATA[40..]);
        assert_eq!(decrypt("s3cret passphrase", &wrapped).unwrap(), PYNACL_PLAIN.as_bytes());
    }

    #[test]
    fn encrypts_like_libsodium_and_round_trips() {
        let nonce: [u8; 24] = std::array::from_fn(|i| u8::try_from(i).unwrap());
        assert_eq!(encrypt_with_nonce("s3cret passphrase", &nonce, PYNACL_PLAIN.as_bytes()).unwrap(), PYNACL_DATA);
        let data = encrypt("k3y", b"[]").unwrap();
        assert_eq!(decrypt("k3y", &data).unwrap(), b"[]");
        assert_ne!(encrypt("k3y", b"[]").unwrap(), data, "fresh nonce per message");
        let envelope = encrypted_envelope("k3y", b"[]").unwrap();
        assert_eq!(envelope["_type"], "encrypted");
    }

    #[test]
    fn encrypted_message_decrypts_and_parses() {
        let Message::Encrypted { data } =
            parse(format!(r#"{{"_type":"encrypted","data":"{PYNACL_DATA}"}}"#).as_bytes(), &opts()).unwrap()
        else {
            panic!()
        };
        let Message::Location(loc) = decrypt_message("s3cret passphrase", &data, &opts()).unwrap() else { panic!() };
        assert_eq!(loc.tid.as_deref(), Some("JP"));
        let nested = encrypt("k", format!(r#"{{"_type":"encrypted","data":"{PYNACL_DATA}"}}"#).as_bytes()).unwrap();
        assert_eq!(decrypt_message("k", &nested, &opts()), Err(OwntracksError::NestedEncryption));
    }

    fn friend(user: &str, device: &str, tid: Option<&str>, last: Option<Fix>) -> Friend {
        Friend {
            user: user.into(),
            device: device.into(),
            tid: tid.map(Into::into),
            is_self: false,
            last,
            name: None,
            face: None,
        }
    }

    #[test]
    fn friends_reply_matches_the_recorder_shape() {
        let mut fix =
            Fix::new(Timestamp(1_795_296_312_000), Coord::from_degrees(48.86, 2.295).unwrap(), SourceFormat::Owntracks);
        fix.set_horizontal_accuracy_m(8.0);
        fix.set_speed_m_s(5.0);
        let mut john = friend("john", "android", Some("JH"), Some(fix));
        john.name = Some("John".into());
        john.face = Some("iVBOR".into());
        let mut jane = friend(
            "jane",
            "phone",
            Some("JP"),
            Some(Fix::new(
                Timestamp(1_795_296_379_000),
                Coord::from_degrees(48.8585, 2.2946).unwrap(),
                SourceFormat::Owntracks,
            )),
        );
        jane.is_self = true;
        jane.name = Some("Jane".into()); // no face: no card
        let reply = serde_json::to_value(friends_reply(&[john, jane])).unwrap();
        assert_eq!(
            reply,
            json!([
                {"_type":"card","tid":"JH","name":"John","face":"iVBOR"},
                {"_type":"location","tid":"JH","lat":48.86,"lon":2.295,"tst":1_795_296_312,"vel":18,"acc":8,"topic":"owntracks/john/android"},
                {"_type":"location","tid":"JP","lat":48.8585,"lon":2.2946,"tst":1_795_296_379,"topic":"owntracks/jane/phone"},
            ])
        );
    }

    #[test]
    fn the_tid_is_read_from_the_extras() {
        let tid = |json: &str| extras_tid(&Extras::from_json_object(json));
        assert_eq!(tid(r#"{"_id":"a1","tid":"BP","inregions":["home"]}"#).as_deref(), Some("BP"));
        assert_eq!(tid(r#"{"tid":"J\u00e9"}"#).as_deref(), Some("Jé"), "escapes are decoded");
        assert_eq!(tid(r#"{"t":"u"}"#), None);
        assert_eq!(tid(r#"{"tid":7}"#), None, "a tid that is not a string is no tid");
    }

    #[test]
    fn friend_tids_are_unique_and_deterministic() {
        let f = |user, device, tid| friend(user, device, tid, None);
        let friends = vec![
            f("zoe", "pixel", None),         // initials PI, collides with the reported PI below
            f("amy", "Pixel 7", Some("PI")), // reported tids choose first
            f("bob", "iPhone", None),        // IP
            f("cat", "iPad", None),          // IP again → I2
            f("dan", "iPad", Some("")),      // empty tid counts as none → I3
        ];
        let mut me = f("eve", "phone", Some("PI"));
        me.is_self = true; // the caller keeps its own tid
        let mut all = friends.clone();
        all.push(me);
        let tids = unique_tids(&all);
        assert_eq!(tids, ["P3", "P2", "IP", "I2", "I3", "PI"]);
        // Same result whatever the input order.
        let mut reversed = all.clone();
        reversed.reverse();
        let mut back = unique_tids(&reversed);
        back.reverse();
        assert_eq!(back, tids);
        assert_eq!(initials("Jane's iPhone"), "JI");
        assert_eq!(initials("car tracker"), "CT");
        assert_eq!(initials("---"), "XX");
    }
}

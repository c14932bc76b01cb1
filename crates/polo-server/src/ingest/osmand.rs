//! The OsmAnd protocol as Traccar defines it, and everything that speaks it:
//! the legacy Traccar Client (query string, empty body), the current Traccar
//! Client SDK (form body, or with `uploadJson` a JSON array of flat objects),
//! Traccar Client 9.x (`{"location":{…},"device_id":…}` from the
//! transistorsoft plugin), the OsmAnd app's live-tracking URL and GPSLogger's
//! "custom URL" (a body and headers the user types, usually without a
//! Content-Type, so [`parse_request`] sniffs: JSON, then a form, then the query).
//!
//! Units differ per generation, which is why one module owns them all:
//!
//! * `speed` in query/form/flat JSON is **knots** (the OsmAnd protocol) → m/s;
//!   in the 9.x `coords.speed` it is m/s already; `-1` means unknown there.
//! * `timestamp` is Unix seconds, Unix milliseconds when ≥ 2^31 (Traccar's
//!   rule), ISO 8601 or `yyyy-MM-dd HH:mm:ss` (read as UTC, flagged
//!   `zone_assumed`). Without a timestamp Traccar uses the arrival time, and
//!   so does polo (marked `"server_time":true` in the extras).
//! * `batt` is percent; the 9.x `battery.level` is a 0–1 fraction (`-1` unknown).
//! * `accuracy` 0 is what the legacy client sends when it has none: unknown.
//!
//! Keys without a column (`hdop`, `charge`, `alarm`, `cell`, `wifi`,
//! `driverUniqueId`, …) go into the extras as numbers, booleans or strings,
//! like Traccar's attributes; repeated keys (`cell`, `wifi`) become arrays.

use polo_domain::time::parse_timestamp;
use polo_domain::{Coord, Fix, Motion, SourceFormat, Timestamp};
use polo_formats::ImportOptions;
use polo_formats::extras::ExtrasBuilder;
use serde_json::value::RawValue;

use super::json::{Members, boolean, is_null, number, shown, string};

/// One knot in m/s (1852 m per hour).
pub const KNOT_M_S: f64 = 1852.0 / 3600.0;

/// A fix and the device unique ID it was reported for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// `id` / `deviceid` / `device_id`: Traccar's device unique ID.
    pub device_id: String,
    /// The fix (`SourceFormat::Osmand`).
    pub fix: Fix,
}

/// An item of a JSON array that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemReject {
    /// Index in the array.
    pub index: usize,
    /// Why.
    pub reason: String,
}

/// What one request contained.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Usable positions, in order.
    pub reports: Vec<Report>,
    /// Unusable items of a JSON array body. A single-position request that
    /// is unusable is an [`OsmandError`] instead.
    pub rejects: Vec<ItemReject>,
}

/// Why a request (or one item) could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OsmandError {
    /// No `id`/`deviceid` (Traccar answers 400).
    #[error("no device id (id or deviceid)")]
    MissingDeviceId,
    /// No latitude/longitude.
    #[error("no position (lat and lon, or location=lat,lon)")]
    MissingPosition,
    /// A value is unusable.
    #[error("{field} {value:?} is invalid: {reason}")]
    Invalid {
        /// The parameter.
        field: String,
        /// Its text (shortened).
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The time is implausible.
    #[error("{0}")]
    Time(String),
    /// The body could not be read as JSON or as a form.
    #[error("unreadable body: {0}")]
    Body(String),
    /// An object of a JSON body names a key twice (polo's one rule for
    /// duplicate JSON keys: `polo_formats::json_keys`).
    #[error(
        "the body names the key {key:?} twice (the second at byte {offset}): a body that names a key twice is ambiguous"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// Byte offset of its second occurrence.
        offset: usize,
    },
}

/// A parameter value: text from a query or form, or a JSON member.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Json(&'a RawValue),
}

impl Value<'_> {
    fn text(&self) -> Option<String> {
        match self {
            Self::Text(t) => Some((*t).to_owned()),
            Self::Json(raw) => string(raw).or_else(|| {
                let t = raw.get();
                (!t.starts_with(['{', '[']) && !is_null(raw)).then(|| t.to_owned())
            }),
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Self::Text(t) => t.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
            Self::Json(raw) => number(raw),
        }
    }

    fn shown(&self) -> String {
        match self {
            Self::Text(t) => t.chars().take(64).collect(),
            Self::Json(raw) => shown(raw),
        }
    }

    /// The value as JSON for the extras: JSON verbatim; text as a number when
    /// it is a JSON number literal, a boolean for `true`/`false`, else a string.
    fn to_json(self) -> String {
        match self {
            Self::Json(raw) => raw.get().to_owned(),
            Self::Text(t) => text_as_json(t),
        }
    }
}

fn text_as_json(t: &str) -> String {
    if t == "true" || t == "false" || serde_json::from_str::<serde_json::Number>(t).is_ok() {
        t.to_owned()
    } else {
        let mut out = String::new();
        polo_formats::extras::push_json_string(&mut out, t);
        out
    }
}

/// Parses one request of any generation. `query` is the raw query string
/// (without `?`), `content_type` the header if any.
///
/// Sniffing order for a missing or unknown Content-Type: a body starting with
/// `{` or `[` is JSON, a non-empty body with `=` is a form, else the query
/// string alone. Form and query are merged (a key in the body wins), since
/// users split GPSLogger templates between URL and body. A JSON body without
/// a device id takes `id`/`deviceid` from the query.
///
/// # Errors
/// [`OsmandError`] when the body is unreadable, or the request holds a
/// single position that is unusable (Traccar answers 400 then).
pub fn parse_request(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
    now: Timestamp,
) -> Result<Parsed, OsmandError> {
    let query_pairs = match query {
        Some(q) if !q.is_empty() => form_pairs(q.as_bytes())?,
        _ => Vec::new(),
    };
    let content_type = content_type.map(str::to_ascii_lowercase).unwrap_or_default();
    let trimmed = body.trim_ascii();
    let is_json = content_type.contains("json")
        || (!content_type.contains("x-www-form-urlencoded")
            && trimmed.first().is_some_and(|b| matches!(b, b'{' | b'[')));
    if is_json && !trimmed.is_empty() {
        let fallback = lookup(&query_pairs, &["id", "deviceid", "device_id"]);
        return parse_json(body, fallback.as_deref(), now);
    }
    let mut pairs = if !trimmed.is_empty() && trimmed.contains(&b'=') { form_pairs(trimmed)? } else { Vec::new() };
    let from_body: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
    pairs.extend(query_pairs.into_iter().filter(|(k, _)| !from_body.contains(k)));
    parse_params(&pairs, now).map(|report| Parsed { reports: vec![report], rejects: Vec::new() })
}

/// The device id a request names, read leniently: from the body (a form,
/// a flat JSON object, the first item of a JSON array, or Traccar Client
/// 9's `device_id` and `location._`), else from the query string.
///
/// Why: Traccar-style clients authenticate with their device id set to a
/// polo token, and a request must be authenticated before it is told what
/// is wrong with its reading. This finds the id even when the reading around
/// it is unusable, so such a client gets 400 and the reason, not 401.
#[must_use]
pub fn claimed_device_id(query: Option<&str>, body: &[u8]) -> Option<String> {
    let pairs = |bytes: &[u8]| form_pairs(bytes).unwrap_or_default();
    let trimmed = body.trim_ascii();
    let from_body = if trimmed.first().is_some_and(|b| matches!(b, b'{' | b'[')) {
        serde_json::from_slice::<serde_json::Value>(trimmed).ok().as_ref().and_then(json_device_id)
    } else if trimmed.contains(&b'=') {
        lookup(&pairs(trimmed), &ID_KEYS)
    } else {
        None
    };
    from_body.or_else(|| lookup(&pairs(query.unwrap_or_default().as_bytes()), &ID_KEYS))
}

fn json_device_id(value: &serde_json::Value) -> Option<String> {
    use serde_json::Value as Json;
    let text = |v: &Json| match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match value {
        Json::Array(items) => items.first().and_then(json_device_id),
        Json::Object(members) => ID_KEYS.iter().find_map(|k| members.get(*k).and_then(text)).or_else(|| {
            let location = members.get("location")?;
            let location = if let Json::Array(items) = location { items.first()? } else { location };
            let query = location.get("_")?.as_str()?.trim_matches('&');
            lookup(&form_pairs(query.as_bytes()).ok()?, &ID_KEYS)
        }),
        _ => None,
    }
}

fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, OsmandError> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).map_err(|e| OsmandError::Body(e.to_string()))
}

fn lookup(pairs: &[(String, String)], keys: &[&str]) -> Option<String> {
    pairs.iter().find(|(k, v)| keys.contains(&k.as_str()) && !v.is_empty()).map(|(_, v)| v.clone())
}

/// Parses query or form parameters (the legacy and SDK clients, OsmAnd, GPSLogger).
///
/// # Errors
/// [`OsmandError`] for a missing id or position, or unusable values.
pub fn parse_params(pairs: &[(String, String)], now: Timestamp) -> Result<Report, OsmandError> {
    let values: Vec<(&str, Value<'_>)> = pairs.iter().map(|(k, v)| (k.as_str(), Value::Text(v))).collect();
    flat(&values, None, now)
}

/// Parses a JSON body: the Traccar 9.x `{"location":{…}|[…],"device_id":…}`
/// shape, a JSON array of flat objects (SDK `uploadJson`), or one flat object.
///
/// # Errors
/// [`OsmandError::Body`] for invalid JSON, [`OsmandError::DuplicateKey`] for
/// a body that names a key twice in some object, and the single position's
/// error for one-position bodies.
pub fn parse_json(body: &[u8], fallback_device: Option<&str>, now: Timestamp) -> Result<Parsed, OsmandError> {
    let text = std::str::from_utf8(body).map_err(|e| OsmandError::Body(e.to_string()))?;
    serde_json::from_str::<&RawValue>(text).map_err(|e| OsmandError::Body(e.to_string()))?;
    if let Some(d) = polo_formats::json_keys::duplicate_key(body) {
        return Err(OsmandError::DuplicateKey { key: d.key, offset: d.offset });
    }
    let text = text.trim();
    if text.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| OsmandError::Body(e.to_string()))?;
        let mut parsed = Parsed::default();
        for (index, item) in items.into_iter().enumerate() {
            match flat_json(item, fallback_device, now) {
                Ok(report) => parsed.reports.push(report),
                Err(e) => parsed.rejects.push(ItemReject { index, reason: e.to_string() }),
            }
        }
        return Ok(parsed);
    }
    let top = Members::parse(text).map_err(|e| OsmandError::Body(e.to_string()))?;
    let Some(location) = top.get("location").filter(|l| l.get().starts_with(['{', '['])) else {
        return flat_json(
            serde_json::from_str(text).map_err(|e| OsmandError::Body(e.to_string()))?,
            fallback_device,
            now,
        )
        .map(|report| Parsed { reports: vec![report], rejects: Vec::new() });
    };
    let device = top.get("device_id").and_then(|v| Value::Json(v).text()).filter(|d| !d.is_empty());
    let device = device.or_else(|| fallback_device.map(str::to_owned));
    if location.get().starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(location.get()).map_err(|e| OsmandError::Body(e.to_string()))?;
        let mut parsed = Parsed::default();
        for (index, item) in items.into_iter().enumerate() {
            match transistorsoft(item, device.as_deref(), now) {
                Ok(report) => parsed.reports.push(report),
                Err(e) => parsed.rejects.push(ItemReject { index, reason: e.to_string() }),
            }
        }
        return Ok(parsed);
    }
    transistorsoft(location, device.as_deref(), now).map(|report| Parsed { reports: vec![report], rejects: Vec::new() })
}

fn flat_json(item: &RawValue, fallback_device: Option<&str>, now: Timestamp) -> Result<Report, OsmandError> {
    let members =
        Members::parse(item.get()).map_err(|_| OsmandError::Body(format!("{} is not an object", shown(item))))?;
    let values: Vec<(&str, Value<'_>)> =
        members.0.iter().filter(|(_, v)| !is_null(v)).map(|(k, v)| (k.as_str(), Value::Json(v))).collect();
    flat(&values, fallback_device, now)
}

const ID_KEYS: [&str; 3] = ["id", "deviceid", "device_id"];

/// The OsmAnd parameter set, from whichever container.
fn flat(values: &[(&str, Value<'_>)], fallback_device: Option<&str>, now: Timestamp) -> Result<Report, OsmandError> {
    let get = |keys: &[&str]| values.iter().find(|(k, _)| keys.contains(k)).map(|(k, v)| (*k, *v));
    let device_id = get(&ID_KEYS)
        .and_then(|(_, v)| v.text())
        .filter(|d| !d.is_empty())
        .or_else(|| fallback_device.map(str::to_owned))
        .ok_or(OsmandError::MissingDeviceId)?;
    let invalid = |field: &str, v: &Value<'_>, reason: &str| OsmandError::Invalid {
        field: field.to_owned(),
        value: v.shown(),
        reason: reason.to_owned(),
    };
    let coord_number = |key: &str, v: &Value<'_>| v.number().ok_or_else(|| invalid(key, v, "not a number"));
    let coord = match (get(&["lat", "latitude"]), get(&["lon", "lng", "longitude"]), get(&["location"])) {
        (Some((lk, lat)), Some((ok, lon)), _) => Coord::from_degrees(coord_number(lk, &lat)?, coord_number(ok, &lon)?)
            .map_err(|e| OsmandError::Invalid {
                field: "lat/lon".into(),
                value: format!("{},{}", lat.shown(), lon.shown()),
                reason: e.to_string(),
            })?,
        (_, _, Some((_, loc))) => {
            let text = loc.text().unwrap_or_default();
            Coord::parse_lat_lon_text(&text).map_err(|e| invalid("location", &loc, &e.to_string()))?
        }
        _ => return Err(OsmandError::MissingPosition),
    };
    let mut extras = ExtrasBuilder::new();
    let time_key = get(&["timestamp"]).or_else(|| get(&["time"]));
    let (time, offset, zone_assumed) = match time_key {
        Some((key, v)) => {
            let text = v.text().unwrap_or_default();
            let parsed = osmand_time(&text).ok_or_else(|| invalid(key, &v, "not a Unix time or a date"))?;
            ImportOptions { now }.check_time(parsed.0).map_err(OsmandError::Time)?;
            parsed
        }
        None => {
            extras.raw("server_time", "true");
            (now, None, false)
        }
    };
    let mut fix = Fix::new(time, coord, SourceFormat::Osmand);
    fix.utc_offset_minutes = offset;
    fix.zone_assumed = zone_assumed;
    let consumed = |key: &str| -> bool {
        ID_KEYS.contains(&key)
            || matches!(key, "lat" | "latitude" | "lon" | "lng" | "longitude" | "location")
            || time_key.is_some_and(|(k, _)| k == key)
    };
    // Repeated keys (`cell`, `wifi`) become arrays, in first-seen order.
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in values {
        if consumed(key) || seen.contains(key) {
            continue;
        }
        seen.push(*key);
        let n = value.number();
        let used = match (*key, n) {
            ("speed", Some(v)) => {
                fix.set_speed_m_s(v * KNOT_M_S);
                true
            }
            ("bearing" | "heading", Some(v)) if fix.course_centideg.is_none() => {
                fix.set_course_deg(v);
                true
            }
            ("altitude", Some(v)) => {
                fix.set_altitude_m(v);
                true
            }
            ("accuracy", Some(v)) => {
                if v > 0.0 {
                    fix.set_horizontal_accuracy_m(v);
                }
                true
            }
            ("batt" | "battery", Some(v)) if fix.battery_percent.is_none() => {
                fix.set_battery_percent(v);
                true
            }
            _ => false,
        };
        if used {
            continue;
        }
        let all: Vec<String> = values.iter().filter(|(k, _)| k == key).map(|(_, v)| v.to_json()).collect();
        if let [one] = all.as_slice() {
            extras.raw(key, one);
        } else {
            extras.raw(key, &format!("[{}]", all.join(",")));
        }
    }
    fix.extras = extras.finish();
    Ok(Report { device_id, fix })
}

/// Traccar's timestamp rule: digits are Unix seconds, or milliseconds when
/// ≥ 2^31; anything else is a date text.
fn osmand_time(text: &str) -> Option<(Timestamp, Option<i16>, bool)> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let v: f64 = t.parse().ok().filter(|v: &f64| v.is_finite())?;
        let ms = if v >= 2_147_483_648.0 { v } else { v * 1000.0 };
        if ms > 1e15 {
            return None;
        }
        // Range-checked above.
        #[allow(clippy::cast_possible_truncation)]
        return Some((Timestamp(ms.round() as i64), None, false));
    }
    let p = parse_timestamp(t).ok()?;
    Some((p.time, p.offset_minutes, p.zone_assumed))
}

/// One transistorsoft location object (Traccar Client 9.x).
fn transistorsoft(raw: &RawValue, device: Option<&str>, now: Timestamp) -> Result<Report, OsmandError> {
    let location = Members::parse(raw.get())
        .map_err(|_| OsmandError::Body(format!("location {} is not an object", shown(raw))))?;
    // The `_` member repeats the position as a query string; it can carry the id.
    let underscore = location.get("_").and_then(string);
    let device_id = device
        .map(str::to_owned)
        .or_else(|| {
            let q = underscore.as_deref()?.trim_matches('&');
            form_pairs(q.as_bytes()).ok().and_then(|pairs| lookup(&pairs, &ID_KEYS))
        })
        .ok_or(OsmandError::MissingDeviceId)?;
    let coords = location.get("coords").ok_or(OsmandError::MissingPosition)?;
    let coords = Members::parse(coords.get()).map_err(|_| OsmandError::MissingPosition)?;
    let (Some(lat), Some(lon)) = (coords.get("latitude").and_then(number), coords.get("longitude").and_then(number))
    else {
        return Err(OsmandError::MissingPosition);
    };
    let coord = Coord::from_degrees(lat, lon).map_err(|e| OsmandError::Invalid {
        field: "coords".into(),
        value: format!("{lat},{lon}"),
        reason: e.to_string(),
    })?;
    let mut extras = ExtrasBuilder::new();
    let (time, offset, zone_assumed) = match location.get("timestamp") {
        Some(ts) => {
            let parsed = string(ts)
                .and_then(|t| osmand_time(&t))
                .or_else(|| number(ts).and_then(|n| osmand_time(&n.to_string())))
                .ok_or_else(|| OsmandError::Invalid {
                    field: "timestamp".into(),
                    value: shown(ts),
                    reason: "not a date".into(),
                })?;
            ImportOptions { now }.check_time(parsed.0).map_err(OsmandError::Time)?;
            parsed
        }
        None => {
            extras.raw("server_time", "true");
            (now, None, false)
        }
    };
    let mut fix = Fix::new(time, coord, SourceFormat::Osmand);
    fix.utc_offset_minutes = offset;
    fix.zone_assumed = zone_assumed;
    for (key, value) in &coords.0 {
        match (key.as_str(), number(value)) {
            ("latitude" | "longitude", _) => {}
            // −1 means unknown; the setters ignore negative values.
            ("speed", Some(v)) => fix.set_speed_m_s(v),
            ("heading", Some(v)) => fix.set_course_deg(v),
            ("accuracy", Some(v)) => fix.set_horizontal_accuracy_m(v),
            ("altitude", Some(v)) => fix.set_altitude_m(v),
            ("altitude_accuracy", Some(v)) => fix.set_vertical_accuracy_m(v),
            ("speed" | "heading" | "accuracy" | "altitude_accuracy", _) => {}
            (_, Some(v)) if v < 0.0 && key.ends_with("_accuracy") => {}
            _ => extras.raw(key, value.get()),
        }
    }
    for (key, value) in &location.0 {
        match key.as_str() {
            "coords" | "timestamp" | "_" => {}
            "battery" => match Members::parse(value.get()) {
                Ok(battery) => {
                    for (k, v) in &battery.0 {
                        match (k.as_str(), number(v)) {
                            ("level", Some(level)) => fix.set_battery_fraction(level),
                            ("level", _) => {}
                            ("is_charging", _) => match boolean(v) {
                                Some(b) => extras.raw("charge", if b { "true" } else { "false" }),
                                None => extras.raw("charge", v.get()),
                            },
                            _ => extras.raw(&format!("battery_{k}"), v.get()),
                        }
                    }
                }
                Err(_) => extras.raw(key, value.get()),
            },
            "activity" => {
                let kind = Members::parse(value.get()).ok().and_then(|a| a.get("type").and_then(string));
                fix.motion = kind.as_deref().and_then(Motion::from_activity_name);
                extras.raw(key, value.get());
            }
            "extras" if value.get().trim() == "{}" => {}
            _ => extras.raw(key, value.get()),
        }
    }
    fix.extras = extras.finish();
    Ok(Report { device_id, fix })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    fn one(query: Option<&str>, content_type: Option<&str>, body: &str) -> Report {
        let mut parsed = parse_request(query, content_type, body.as_bytes(), NOW).unwrap();
        assert!(parsed.rejects.is_empty(), "{:?}", parsed.rejects);
        assert_eq!(parsed.reports.len(), 1);
        parsed.reports.remove(0)
    }

    #[test]
    fn legacy_client_query_string_with_empty_body() {
        let r = one(
            Some(
                "id=865123&timestamp=1741600000&lat=47.3769&lon=8.5417&speed=10&bearing=45.5&altitude=408&accuracy=0&batt=77&charge=true&mock=true&alarm=sos",
            ),
            None,
            "",
        );
        assert_eq!(r.device_id, "865123");
        let f = &r.fix;
        assert_eq!(f.time, Timestamp(1_741_600_000_000));
        assert_eq!(f.coord, Coord::from_degrees(47.3769, 8.5417).unwrap());
        assert_eq!(f.speed_cm_s, Some(514), "10 knots = 5.14 m/s");
        assert_eq!((f.course_centideg, f.altitude_cm, f.battery_percent), (Some(4550), Some(40_800), Some(77)));
        assert_eq!(f.horizontal_accuracy_cm, None, "accuracy 0 means unknown");
        assert_eq!(f.source, SourceFormat::Osmand);
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"charge":true,"mock":true,"alarm":"sos"}"#);
    }

    #[test]
    fn timestamps_in_every_form() {
        let at = |ts: &str| one(Some(&format!("id=a&lat=1&lon=2&timestamp={ts}")), None, "").fix;
        assert_eq!(at("1741600000").time, Timestamp(1_741_600_000_000));
        assert_eq!(osmand_time("2147483647").map(|t| t.0), Some(Timestamp(2_147_483_647_000)));
        assert_eq!(osmand_time("2147483648").map(|t| t.0), Some(Timestamp(2_147_483_648)), "from 2^31 on: ms");
        assert_eq!(at("1741600000123").time, Timestamp(1_741_600_000_123));
        assert_eq!(at("2016-01-27T18:55:47Z").time, parse_timestamp("2016-01-27T18:55:47Z").unwrap().time);
        let naive = at("2016-01-27%2018:55:47");
        assert_eq!(naive.time, parse_timestamp("2016-01-27T18:55:47Z").unwrap().time);
        assert!(naive.zone_assumed);
        // Missing timestamp: arrival time, marked.
        let f = one(Some("id=a&lat=1&lon=2"), None, "").fix;
        assert_eq!(f.time, NOW);
        assert_eq!(f.extras.unwrap().as_str(), r#"{"server_time":true}"#);
        let e = parse_request(Some("id=a&lat=1&lon=2&timestamp=tuesday"), None, b"", NOW).unwrap_err();
        assert!(matches!(e, OsmandError::Invalid { ref field, .. } if field == "timestamp"), "{e}");
        let e = parse_request(Some("id=a&lat=1&lon=2&timestamp=0"), None, b"", NOW).unwrap_err();
        assert!(matches!(e, OsmandError::Time(_)), "{e}");
    }

    #[test]
    fn location_pair_deviceid_heading_and_repeated_keys() {
        let r = one(
            Some(
                "deviceid=osm1&location=51.5%2C-0.12&heading=270&hdop=1.2&cell=228,1,1234,5678&cell=228,1,1234,5679&wifi=aa:bb,-60&driverUniqueId=007",
            ),
            None,
            "",
        );
        assert_eq!(r.device_id, "osm1");
        assert_eq!(r.fix.coord, Coord::from_degrees(51.5, -0.12).unwrap());
        assert_eq!(r.fix.course_centideg, Some(27_000));
        assert_eq!(
            r.fix.extras.unwrap().as_str(),
            r#"{"server_time":true,"hdop":1.2,"cell":["228,1,1234,5678","228,1,1234,5679"],"wifi":"aa:bb,-60","driverUniqueId":"007"}"#
        );
    }

    #[test]
    fn sdk_form_body_and_errors() {
        let body = "id=48241179&lat=37.42&lon=-122.08&timestamp=1749995112&accuracy=5.0&altitude=5.0&speed=1.94&bearing=90.0&batt=88&charge=false&battery_health=good";
        let r = one(None, Some("application/x-www-form-urlencoded"), body);
        assert_eq!(r.fix.speed_cm_s, Some(100), "1.94 knots ≈ 1 m/s");
        assert_eq!(r.fix.horizontal_accuracy_cm, Some(500));
        assert_eq!(r.fix.extras.unwrap().as_str(), r#"{"charge":false,"battery_health":"good"}"#);
        assert_eq!(parse_request(Some("lat=1&lon=2"), None, b"", NOW), Err(OsmandError::MissingDeviceId));
        assert_eq!(parse_request(Some("id=x&lat=1"), None, b"", NOW), Err(OsmandError::MissingPosition));
        assert!(matches!(
            parse_request(Some("id=x&lat=north&lon=2"), None, b"", NOW),
            Err(OsmandError::Invalid { .. })
        ));
    }

    #[test]
    fn sdk_upload_json_array_with_per_item_errors() {
        let body = r#"[{"id":"48241179","lat":37.42,"lon":-122.08,"timestamp":1749995112,"speed":3.89,"batt":88,"charge":true},
            {"id":"48241179","lat":37.43},
            {"lat":37.44,"lon":-122.07,"timestamp":1749995172,"battery_temp":31.5}]"#;
        let parsed = parse_request(Some("id=fromquery"), Some("application/json"), body.as_bytes(), NOW).unwrap();
        assert_eq!(parsed.reports.len(), 2);
        assert_eq!(parsed.reports[0].fix.speed_cm_s, Some(200));
        assert_eq!(parsed.reports[0].fix.extras.as_ref().unwrap().as_str(), r#"{"charge":true}"#);
        assert_eq!(parsed.reports[1].device_id, "fromquery", "the query's id fills in");
        assert_eq!(parsed.rejects, vec![ItemReject { index: 1, reason: OsmandError::MissingPosition.to_string() }]);
    }

    const TRACCAR9: &str = r#"{"location":{"timestamp":"2025-06-15T13:45:12.862Z",
        "coords":{"latitude":37.42,"longitude":-122.08,"accuracy":5,"speed":0,"heading":-1,"altitude":5,"altitude_accuracy":3,"speed_accuracy":-1},
        "is_moving":false,"odometer":0,"event":"motionchange",
        "battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{},
        "_":"&id=48241179&lat=37.42&lon=-122.08&timestamp=2025-06-15T13:45:12.862Z&"},
        "device_id":"48241179"}"#;

    #[test]
    fn traccar_client_9_json() {
        let r = one(None, Some("application/json"), TRACCAR9);
        assert_eq!(r.device_id, "48241179");
        let f = &r.fix;
        assert_eq!(f.time, parse_timestamp("2025-06-15T13:45:12.862Z").unwrap().time);
        assert_eq!(f.speed_cm_s, Some(0), "m/s, not knots; 0 is a measurement");
        assert_eq!(f.course_centideg, None, "heading -1 is unknown");
        assert_eq!(
            (f.horizontal_accuracy_cm, f.altitude_cm, f.vertical_accuracy_cm),
            (Some(500), Some(500), Some(300))
        );
        assert_eq!(f.battery_percent, Some(100), "level is 0-1");
        assert_eq!(f.motion, Some(Motion::Stationary));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"is_moving":false,"odometer":0,"event":"motionchange","charge":false,"activity":{"type":"still"}}"#
        );
        // Speed and battery unknown; the id only in `_`.
        let body = TRACCAR9.replace(r#""speed":0"#, r#""speed":-1"#).replace(r#""level":1"#, r#""level":-1"#);
        let body = body.replace(r#","device_id":"48241179""#, "");
        let r = one(None, None, &body);
        assert_eq!((r.fix.speed_cm_s, r.fix.battery_percent), (None, None));
        assert_eq!(r.device_id, "48241179");
    }

    #[test]
    fn the_claimed_device_id_is_found_around_an_unusable_reading() {
        for (query, body, want) in [
            (Some("id=polo_tok&lat=north&lon=2"), "", Some("polo_tok")),
            (None, "deviceid=polo_tok&lat=north", Some("polo_tok")),
            (Some("id=from_query"), "id=from_body&lat=1", Some("from_body")),
            (None, r#"{"id":"polo_tok","lat":"north"}"#, Some("polo_tok")),
            (None, r#"[{"device_id":48241179,"lat":1}]"#, Some("48241179")),
            (None, r#"{"location":{"coords":{},"_":"&id=polo_tok&"}}"#, Some("polo_tok")),
            (None, r#"{"location":[{"coords":{}}],"device_id":"polo_tok"}"#, Some("polo_tok")),
            (Some("id=polo_tok"), "{not json", Some("polo_tok")),
            (None, "lat=1&lon=2", None),
            (Some("id="), "", None),
        ] {
            assert_eq!(claimed_device_id(query, body.as_bytes()).as_deref(), want, "{query:?} {body}");
        }
    }

    #[test]
    fn gpslogger_without_content_type_is_sniffed() {
        // JSON body (an OsmAnd-style flat object) without Content-Type.
        let r = one(None, None, r#" {"id":"gl","lat":12.193,"lon":19.111,"timestamp":1457205869} "#);
        assert_eq!(r.device_id, "gl");
        // Form body without Content-Type; id in the URL, the rest in the body.
        let r = one(
            Some("id=gl&lat=0.5"),
            None,
            "lat=12.193&lon=19.111&sat=9&alt=45.0&acc=8.0&dir=359.0&prov=MOCK&spd=9005.0&time=2016-03-05T19:24:29.949Z&battery=91.0",
        );
        assert_eq!(r.device_id, "gl");
        assert_eq!(r.fix.coord, Coord::from_degrees(12.193, 19.111).unwrap(), "a key in the body wins");
        assert_eq!(r.fix.time, parse_timestamp("2016-03-05T19:24:29.949Z").unwrap().time, "time= is accepted");
        assert_eq!(r.fix.battery_percent, Some(91));
        assert_eq!(
            r.fix.extras.unwrap().as_str(),
            r#"{"sat":9,"alt":45.0,"acc":8.0,"dir":359.0,"prov":"MOCK","spd":9005.0}"#
        );
        // Query only (GPSLogger's default GET with `longitude=`).
        let r =
            one(Some("id=gl&lat=12.193&longitude=19.111&time=2016-03-05T19:24:29.949Z&s=4.5"), Some("text/plain"), "");
        assert_eq!(r.fix.coord, Coord::from_degrees(12.193, 19.111).unwrap());
        assert!(matches!(parse_request(None, None, b"{not json", NOW), Err(OsmandError::Body(_))));
    }
}

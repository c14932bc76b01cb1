//! Checking what a browser and an authenticator sent: the client data, the
//! authenticator data, COSE public keys, attestation statements and
//! assertion signatures (WebAuthn Level 2, §7). Pure functions, no store.
//!
//! What is accepted, and why:
//!
//! * **Keys**: ES256 (ECDSA P-256, COSE -7), EdDSA (Ed25519, -8) and RS256
//!   (RSA PKCS#1 v1.5 with SHA-256, -257, 2048 bits or more): what every
//!   platform and security key offers, and what `ring` verifies.
//! * **Attestation**: `none` and `packed` *self* attestation (signed with
//!   the credential's own key). polo asks browsers for `none`: it has no
//!   list of trusted authenticator makers to check a certificate chain
//!   against, so a certificate would prove nothing to it. A `packed`
//!   statement with a certificate (`x5c`) and every other format are
//!   refused rather than accepted unchecked.
//! * **Flags**: user presence is required always; user verification (PIN or
//!   biometrics) when the passkey replaces the password.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use thiserror::Error;

use super::cbor::{self, CborError, Value};
use crate::auth::secret::{constant_time_eq, sha256};

/// The user was present (touched the key): bit 0 of the flags.
pub const FLAG_UP: u8 = 0x01;
/// The user was verified (PIN, biometrics): bit 2.
pub const FLAG_UV: u8 = 0x04;
/// The credential may be backed up (synced passkeys): bit 3.
pub const FLAG_BE: u8 = 0x08;
/// Attested credential data follows: bit 6.
pub const FLAG_AT: u8 = 0x40;
/// Extensions follow: bit 7.
pub const FLAG_ED: u8 = 0x80;

/// COSE algorithm ES256.
pub const ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519 only).
pub const EDDSA: i64 = -8;
/// COSE algorithm RS256.
pub const RS256: i64 = -257;

/// Why a registration or sign-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WebAuthnError {
    /// The client data is no JSON of the expected shape.
    #[error("the client data is malformed: {0}")]
    ClientData(String),
    /// A registration's client data at a sign-in, or the other way round.
    #[error("the client data is of type {found:?}, not {expected:?}")]
    WrongType {
        /// What came.
        found: String,
        /// What was needed.
        expected: &'static str,
    },
    /// Not this server's challenge, or used already, or too old.
    #[error("the challenge is unknown, used already or expired; start again")]
    Challenge,
    /// Made on another site, or in a frame of one.
    #[error("the passkey was used at {found}, not at {expected}")]
    Origin {
        /// The origin in the client data.
        found: String,
        /// This server's.
        expected: String,
    },
    /// The authenticator data cannot be read.
    #[error("the authenticator data is malformed: {0}")]
    AuthData(&'static str),
    /// The rpIdHash is not that of this server's name.
    #[error("the authenticator data is for another site")]
    RelyingParty,
    /// The user did not touch the authenticator.
    #[error("the authenticator did not confirm that a person was present")]
    NotPresent,
    /// No PIN or biometrics where the passkey replaces the password.
    #[error("signing in with a passkey alone needs the device's PIN, fingerprint or face (user verification)")]
    NotVerified,
    /// A key polo does not verify.
    #[error("unsupported public key: {0}")]
    Key(String),
    /// An attestation polo does not accept.
    #[error("unsupported attestation: {0}")]
    Attestation(String),
    /// The signature is wrong.
    #[error("the signature does not verify")]
    Signature,
    /// The authenticator's counter did not move forward: a sign of a cloned key.
    #[error("the passkey's signature counter went from {stored} to {given}; it may have been copied")]
    Counter {
        /// The last counter seen.
        stored: u32,
        /// The one sent now.
        given: u32,
    },
    /// No passkey with this id, or not the account's.
    #[error("this passkey is not registered here")]
    UnknownPasskey,
    /// Registered already (by this or another account).
    #[error("this passkey is registered already")]
    Registered,
    /// CBOR outside what WebAuthn uses.
    #[error(transparent)]
    Cbor(#[from] CborError),
}

/// Which ceremony client data belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ceremony {
    /// `navigator.credentials.create`: registering.
    Create,
    /// `navigator.credentials.get`: signing in.
    Get,
}

impl Ceremony {
    fn client_type(self) -> &'static str {
        match self {
            Self::Create => "webauthn.create",
            Self::Get => "webauthn.get",
        }
    }
}

/// The fields of `clientDataJSON` polo reads.
#[derive(Debug, Clone, Deserialize)]
pub struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    /// The challenge, base64url without padding.
    pub challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: bool,
}

/// Reads `clientDataJSON` (to find the challenge it answers).
///
/// # Errors
/// [`WebAuthnError::ClientData`].
pub fn client_data(json: &[u8]) -> Result<ClientData, WebAuthnError> {
    serde_json::from_slice(json).map_err(|e| WebAuthnError::ClientData(e.to_string()))
}

/// Checks client data against the ceremony and this server's origin. (Its
/// challenge is checked by finding it among the challenges this server
/// gave: see [`super::authenticate`].)
///
/// # Errors
/// [`WebAuthnError::WrongType`], [`WebAuthnError::Origin`].
pub fn check_client_data(data: &ClientData, ceremony: Ceremony, origin: &str) -> Result<(), WebAuthnError> {
    if data.kind != ceremony.client_type() {
        return Err(WebAuthnError::WrongType { found: data.kind.clone(), expected: ceremony.client_type() });
    }
    if data.origin != origin || data.cross_origin {
        let found = if data.cross_origin { format!("{} (in a frame)", data.origin) } else { data.origin.clone() };
        return Err(WebAuthnError::Origin { found, expected: origin.to_owned() });
    }
    Ok(())
}

/// A credential's public key, as its COSE key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// ES256: the uncompressed point (0x04, x, y).
    Es256(Vec<u8>),
    /// Ed25519: the 32-byte key.
    Ed25519(Vec<u8>),
    /// RS256: modulus and exponent, big-endian.
    Rs256 {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
}

fn bytes_of<'v>(key: &'v Value, label: i128, len: Option<usize>, what: &str) -> Result<&'v [u8], WebAuthnError> {
    let bytes = key.int_key(label).and_then(Value::as_bytes).ok_or_else(|| WebAuthnError::Key(format!("no {what}")))?;
    if len.is_some_and(|l| l != bytes.len()) {
        return Err(WebAuthnError::Key(format!("{what} of {} bytes", bytes.len())));
    }
    Ok(bytes)
}

impl PublicKey {
    /// The key of a COSE_Key map (RFC 9053).
    ///
    /// # Errors
    /// [`WebAuthnError::Key`] for another algorithm or curve, or a malformed key.
    pub fn from_cose(key: &Value) -> Result<Self, WebAuthnError> {
        let kty = key.int_key(1).and_then(Value::as_int);
        let alg = key.int_key(3).and_then(Value::as_int);
        let crv = key.int_key(-1).and_then(Value::as_int);
        match (kty, alg) {
            (Some(2), Some(a)) if a == i128::from(ES256) => {
                if crv != Some(1) {
                    return Err(WebAuthnError::Key("ES256 on another curve than P-256".into()));
                }
                let (x, y) = (bytes_of(key, -2, Some(32), "x")?, bytes_of(key, -3, Some(32), "y")?);
                Ok(Self::Es256([&[0x04][..], x, y].concat()))
            }
            (Some(1), Some(a)) if a == i128::from(EDDSA) => {
                if crv != Some(6) {
                    return Err(WebAuthnError::Key("EdDSA on another curve than Ed25519".into()));
                }
                Ok(Self::Ed25519(bytes_of(key, -2, Some(32), "x")?.to_vec()))
            }
            (Some(3), Some(a)) if a == i128::from(RS256) => {
                let n = bytes_of(key, -1, None, "modulus")?;
                if n.len() < 256 {
                    return Err(WebAuthnError::Key(format!("an RSA key of {} bits (2048 at least)", n.len() * 8)));
                }
                Ok(Self::Rs256 { n: n.to_vec(), e: bytes_of(key, -2, None, "exponent")?.to_vec() })
            }
            (kty, alg) => Err(WebAuthnError::Key(format!(
                "key type {kty:?} with algorithm {alg:?}; polo accepts ES256, EdDSA (Ed25519) and RS256"
            ))),
        }
    }

    /// The COSE algorithm.
    #[must_use]
    pub fn algorithm(&self) -> i64 {
        match self {
            Self::Es256(_) => ES256,
            Self::Ed25519(_) => EDDSA,
            Self::Rs256 { .. } => RS256,
        }
    }

    /// Checks `signature` over `message`.
    ///
    /// # Errors
    /// [`WebAuthnError::Signature`].
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), WebAuthnError> {
        let checked = match self {
            Self::Es256(point) => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_ASN1, point).verify(message, sig)
            }
            Self::Ed25519(key) => UnparsedPublicKey::new(&signature::ED25519, key).verify(message, sig),
            Self::Rs256 { n, e } => {
                RsaPublicKeyComponents { n, e }.verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            }
        };
        checked.map_err(|_| WebAuthnError::Signature)
    }
}

/// A credential made at registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestedCredential {
    /// The authenticator model's id (zero for most platform passkeys).
    pub aaguid: [u8; 16],
    /// The credential id.
    pub id: Vec<u8>,
    /// The COSE key, as sent (kept as it is).
    pub cose_key: Vec<u8>,
    /// The key it holds.
    pub key: PublicKey,
}

/// Authenticator data (§6.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthData {
    /// SHA-256 of the relying party id the authenticator used.
    pub rp_id_hash: [u8; 32],
    /// `FLAG_*` bits.
    pub flags: u8,
    /// The signature counter (0 for authenticators without one).
    pub sign_count: u32,
    /// Present at registration.
    pub credential: Option<AttestedCredential>,
}

impl AuthData {
    /// Reads authenticator data.
    ///
    /// # Errors
    /// [`WebAuthnError::AuthData`], [`WebAuthnError::Key`], [`WebAuthnError::Cbor`].
    pub fn parse(bytes: &[u8]) -> Result<Self, WebAuthnError> {
        if bytes.len() < 37 {
            return Err(WebAuthnError::AuthData("shorter than 37 bytes"));
        }
        let mut rp_id_hash = [0u8; 32];
        rp_id_hash.copy_from_slice(&bytes[..32]);
        let flags = bytes[32];
        let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
        let mut rest = &bytes[37..];
        let credential = if flags & FLAG_AT != 0 {
            if rest.len() < 18 {
                return Err(WebAuthnError::AuthData("attested credential data cut short"));
            }
            let mut aaguid = [0u8; 16];
            aaguid.copy_from_slice(&rest[..16]);
            let len = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
            if len > 1023 || rest.len() < 18 + len {
                return Err(WebAuthnError::AuthData("credential id longer than 1023 bytes or cut short"));
            }
            let id = rest[18..18 + len].to_vec();
            rest = &rest[18 + len..];
            let (cose, used) = cbor::decode_prefix(rest)?;
            let key = PublicKey::from_cose(&cose)?;
            let cose_key = rest[..used].to_vec();
            rest = &rest[used..];
            Some(AttestedCredential { aaguid, id, cose_key, key })
        } else {
            None
        };
        if flags & FLAG_ED != 0 {
            let (extensions, used) = cbor::decode_prefix(rest)?;
            if !matches!(extensions, Value::Map(_)) {
                return Err(WebAuthnError::AuthData("extensions that are not a map"));
            }
            rest = &rest[used..];
        }
        if !rest.is_empty() {
            return Err(WebAuthnError::AuthData("bytes after the data its flags announce"));
        }
        Ok(Self { rp_id_hash, flags, sign_count, credential })
    }

    /// Checks the relying party and the flags: presence always, verification when `verified`.
    ///
    /// # Errors
    /// [`WebAuthnError::RelyingParty`], [`WebAuthnError::NotPresent`], [`WebAuthnError::NotVerified`].
    pub fn check(&self, rp_id: &str, verified: bool) -> Result<(), WebAuthnError> {
        if !constant_time_eq(&self.rp_id_hash, &sha256(rp_id.as_bytes())) {
            return Err(WebAuthnError::RelyingParty);
        }
        if self.flags & FLAG_UP == 0 {
            return Err(WebAuthnError::NotPresent);
        }
        if verified && self.flags & FLAG_UV == 0 {
            return Err(WebAuthnError::NotVerified);
        }
        Ok(())
    }
}

/// What a registration's attestation object holds, checked.
#[derive(Debug, Clone)]
pub struct Attested {
    /// Its authenticator data.
    pub auth_data: AuthData,
    /// The new credential.
    pub credential: AttestedCredential,
    /// `none` or `packed`.
    pub format: &'static str,
}

/// Reads an attestation object and checks its statement (see the module
/// docs for what is accepted) against `client_data_json`.
///
/// # Errors
/// [`WebAuthnError`].
pub fn attestation(object: &[u8], client_data_json: &[u8]) -> Result<Attested, WebAuthnError> {
    let object = cbor::decode(object)?;
    let fmt = match object.text_key("fmt") {
        Some(Value::Text(t)) => t.as_str(),
        _ => return Err(WebAuthnError::Attestation("no format".into())),
    };
    let statement = object.text_key("attStmt").ok_or_else(|| WebAuthnError::Attestation("no statement".into()))?;
    let raw = object
        .text_key("authData")
        .and_then(Value::as_bytes)
        .ok_or(WebAuthnError::AuthData("missing from the attestation object"))?;
    let auth_data = AuthData::parse(raw)?;
    let credential =
        auth_data.credential.clone().ok_or(WebAuthnError::AuthData("no attested credential at registration"))?;
    let format = match fmt {
        "none" => {
            if statement != &Value::Map(Vec::new()) {
                return Err(WebAuthnError::Attestation("format none with a statement".into()));
            }
            "none"
        }
        "packed" => {
            if statement.text_key("x5c").is_some() || statement.text_key("ecdaaKeyId").is_some() {
                return Err(WebAuthnError::Attestation(
                    "packed with a certificate; polo accepts only self attestation (it asks for none)".into(),
                ));
            }
            let alg = statement.text_key("alg").and_then(Value::as_int);
            if alg != Some(i128::from(credential.key.algorithm())) {
                return Err(WebAuthnError::Attestation(format!(
                    "self attestation with algorithm {alg:?}, not the key's {}",
                    credential.key.algorithm()
                )));
            }
            let sig = statement
                .text_key("sig")
                .and_then(Value::as_bytes)
                .ok_or_else(|| WebAuthnError::Attestation("packed without a signature".into()))?;
            credential.key.verify(&signed_data(raw, client_data_json), sig)?;
            "packed"
        }
        other => {
            return Err(WebAuthnError::Attestation(format!(
                "format {other:?}; polo accepts none and packed self attestation"
            )));
        }
    };
    Ok(Attested { auth_data, credential, format })
}

/// What attestation and assertion signatures cover: the authenticator data
/// and the SHA-256 of the client data.
#[must_use]
pub fn signed_data(auth_data: &[u8], client_data_json: &[u8]) -> Vec<u8> {
    [auth_data, &sha256(client_data_json)[..]].concat()
}

/// The counter rule (§7.2 step 21): when either side counts, the new value
/// must be larger than the stored one.
///
/// # Errors
/// [`WebAuthnError::Counter`].
pub fn check_counter(stored: u32, given: u32) -> Result<(), WebAuthnError> {
    if (stored != 0 || given != 0) && given <= stored {
        return Err(WebAuthnError::Counter { stored, given });
    }
    Ok(())
}

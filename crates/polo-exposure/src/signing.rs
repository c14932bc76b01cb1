//! Signed status codes: a compact payload (subject, status, valid-until,
//! issued) signed with the instance's Ed25519 key, so that a door, an app
//! or the verifier page can check a code offline with the public key alone.
//!
//! A code is `PX1.<payload>.<signature>`: the payload is JSON
//! `{"u":user,"s":"clear"|"exposed","v":valid_until_ms,"t":issued_ms}` and
//! both parts are unpadded base64url. The signature covers the payload's
//! bytes. The format is versioned by its prefix; a verifier refuses other
//! prefixes. The web verifier checks the same bytes with WebCrypto.
//!
//! The key pair is made once per instance, on first use, and kept as a
//! store record ([`crate::model::KEY`], PKCS#8); several nodes creating it at
//! once keep the first one stored (`RecordWrite::Insert`) and all sign with
//! it. Ed25519 comes from `ring`, which the build has anyway for TLS.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use polo_domain::Timestamp;
use polo_store::{Record, RecordWrite, Store};
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::model::{KEY, Status};
use crate::{ExposureError, ExposureResult};

/// The prefix of a code of this format.
pub const CODE_PREFIX: &str = "PX1";

/// What a code states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The subject (user id).
    #[serde(rename = "u")]
    pub user: i64,
    /// The status.
    #[serde(rename = "s")]
    pub status: Status,
    /// Valid until (ms).
    #[serde(rename = "v")]
    pub valid_until: i64,
    /// Issued (ms).
    #[serde(rename = "t")]
    pub issued: i64,
}

/// Why a code does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not `PX1.<payload>.<signature>`.
    #[error("not a polo status code (expected {CODE_PREFIX}.<payload>.<signature>)")]
    Malformed,
    /// The signature is not the instance's.
    #[error("the signature does not match this instance's key")]
    BadSignature,
}

/// The instance's signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("public_key", &B64.encode(self.public_key())).finish()
    }
}

impl Signer {
    /// The stored key, made and stored first if there is none.
    ///
    /// # Errors
    /// Store failures, or a stored key that does not decode.
    pub fn load_or_create(store: &dyn Store, now: Timestamp) -> ExposureResult<Self> {
        if store.record(KEY, "signing")?.is_none() {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| ExposureError::Invalid("the system's random source failed".to_owned()))?;
            store.write_records(&[RecordWrite::Insert(Record {
                kind: KEY.to_owned(),
                key: "signing".to_owned(),
                user: None,
                at: now,
                body: B64.encode(pkcs8.as_ref()),
            })])?;
        }
        // Read back: a node that stored one first wins.
        let record = store.record(KEY, "signing")?.ok_or_else(|| ExposureError::NotFound("signing key".to_owned()))?;
        let corrupt =
            |why: &str| ExposureError::Corrupt { kind: KEY.to_owned(), key: "signing".to_owned(), why: why.to_owned() };
        let der = B64.decode(record.body.trim()).map_err(|_| corrupt("not base64url"))?;
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| corrupt("not an Ed25519 PKCS#8 key"))?;
        Ok(Self { pair })
    }

    /// The raw 32-byte public key.
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The public key as unpadded base64url, as the API serves it.
    #[must_use]
    pub fn public_key_text(&self) -> String {
        B64.encode(self.public_key())
    }

    /// The signed code of `claim`.
    #[must_use]
    pub fn sign(&self, claim: &Claim) -> String {
        // Serialising a plain struct cannot fail.
        let payload = serde_json::to_vec(claim).unwrap_or_default();
        let signature = self.pair.sign(&payload);
        format!("{CODE_PREFIX}.{}.{}", B64.encode(&payload), B64.encode(signature.as_ref()))
    }
}

/// Checks `code` against `public_key` (raw 32 bytes) and returns what it
/// states. Whether it is still valid is the caller's question (compare
/// [`Claim::valid_until`] with the time).
///
/// # Errors
/// [`CodeError`] when it is not a code or not signed by the key.
pub fn verify(public_key: &[u8], code: &str) -> Result<Claim, CodeError> {
    let mut parts = code.trim().split('.');
    let (Some(CODE_PREFIX), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(CodeError::Malformed);
    };
    let payload = B64.decode(payload).map_err(|_| CodeError::Malformed)?;
    let signature = B64.decode(signature).map_err(|_| CodeError::Malformed)?;
    UnparsedPublicKey::new(&ED25519, public_key).verify(&payload, &signature).map_err(|_| CodeError::BadSignature)?;
    serde_json::from_slice(&payload).map_err(|_| CodeError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_verify_with_the_stored_key_only() {
        let store = polo_store_sqlite::SqliteStore::open_in_memory().unwrap();
        let signer = Signer::load_or_create(&store, Timestamp(1)).unwrap();
        let again = Signer::load_or_create(&store, Timestamp(2)).unwrap();
        assert_eq!(signer.public_key(), again.public_key(), "made once, then read");
        assert_eq!(signer.public_key().len(), 32);
        let claim =
            Claim { user: 7, status: Status::Exposed, valid_until: 1_700_000_000_000, issued: 1_699_000_000_000 };
        let code = signer.sign(&claim);
        assert!(code.starts_with("PX1.") && code.len() < 200, "{code}");
        assert_eq!(verify(signer.public_key(), &code), Ok(claim));

        let other = polo_store_sqlite::SqliteStore::open_in_memory().unwrap();
        let stranger = Signer::load_or_create(&other, Timestamp(1)).unwrap();
        assert_eq!(verify(stranger.public_key(), &code), Err(CodeError::BadSignature));
        // A changed payload with the old signature.
        let forged = Claim { status: Status::Clear, ..claim };
        let forged_payload = B64.encode(serde_json::to_vec(&forged).unwrap());
        let signature = code.rsplit('.').next().unwrap();
        assert_eq!(
            verify(signer.public_key(), &format!("PX1.{forged_payload}.{signature}")),
            Err(CodeError::BadSignature)
        );
        for bad in ["", "PX1", "PX2.a.b", "PX1.!!.b", "PX1.a.b.c"] {
            assert_eq!(verify(signer.public_key(), bad), Err(CodeError::Malformed), "{bad}");
        }
    }
}

//! Random secrets (device tokens, session cookies, CSRF tokens) and the
//! SHA-256 they are stored and looked up by.
//!
//! A secret is 32 bytes from the operating system's CSPRNG, encoded
//! base64url without padding (43 characters) so it travels unescaped in
//! headers, cookies and URLs. Device tokens carry a `polo_` prefix so they
//! are recognisable in a config file and by secret scanners. The store keeps
//! only SHA-256 of the exact text a client presents: 256 random bits need no
//! salt or slow hash, and a lookup stays one indexed read.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// The prefix of every device token.
pub const TOKEN_PREFIX: &str = "polo_";

/// A fresh 256-bit secret, base64url without padding.
#[must_use]
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new device token and the hash to store for it. Show the token once.
#[must_use]
pub fn new_token() -> (String, [u8; 32]) {
    let token = format!("{TOKEN_PREFIX}{}", random_secret());
    let hash = sha256(token.as_bytes());
    (token, hash)
}

/// Whether `text` has the shape of a token polo issued.
#[must_use]
pub fn looks_like_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX).is_some_and(|rest| {
        rest.len() == 43 && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Compares two secrets in time independent of where they differ.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hash_to_what_is_stored() {
        let (a, ha) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(looks_like_token(&a), "{a}");
        assert_eq!(a.len(), 48);
        assert_eq!(sha256(a.as_bytes()), ha);
        assert!(!looks_like_token("polo_short"));
        assert!(!looks_like_token(&a[5..]));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}

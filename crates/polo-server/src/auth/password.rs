//! Password hashing with Argon2id (the crate's recommended defaults).
//!
//! Only PHC strings are stored; the plain password never leaves this module
//! and [`super::Authenticator`]'s verification cache.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The password is too short to be worth protecting.
    #[error("the password must be at least {min} characters long")]
    TooShort {
        /// The minimum length.
        min: usize,
    },
    /// The hashing library failed.
    #[error("could not hash the password: {0}")]
    Hash(String),
}

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Hashes a password into an Argon2id PHC string.
///
/// # Errors
/// [`PasswordError::TooShort`] below [`MIN_PASSWORD_LEN`] characters.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort { min: MIN_PASSWORD_LEN });
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Checks a password against a stored PHC string; malformed hashes never verify.
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong horse", &a));
        assert!(!verify_password("x", "not a hash"));
        assert!(matches!(hash_password("short"), Err(PasswordError::TooShort { .. })));
    }
}

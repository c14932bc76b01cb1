//! Verifying an ID token (a JWS in compact form) against the provider's
//! JWKS, with `ring`, which the build already has for TLS.
//!
//! Only asymmetric algorithms are accepted (RS*, PS*, ES256, ES384, EdDSA):
//! `none` and the HMAC family are refused, so neither an unsigned token nor
//! one "signed" with a public key as HMAC secret gets through. The key is
//! picked by `kid` when the header names one, and must match the algorithm's
//! key type. Claims are checked by [`super::claims`], not here.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// Why an ID token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or not JSON.
    #[error("the ID token is malformed: {0}")]
    Malformed(&'static str),
    /// An algorithm polo does not accept.
    #[error("the ID token's algorithm {0:?} is not accepted")]
    Algorithm(String),
    /// No key of the provider's JWKS fits the header.
    #[error("no key of the provider fits the ID token (kid {0:?})")]
    NoKey(Option<String>),
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    Signature,
}

/// One key of a JWKS.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// The key id.
    #[serde(default)]
    pub kid: Option<String>,
    /// `sig` or `enc`.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// The algorithm the key is for, if stated.
    #[serde(default)]
    pub alg: Option<String>,
    /// RSA modulus.
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent.
    #[serde(default)]
    pub e: Option<String>,
    /// EC/OKP curve.
    #[serde(default)]
    pub crv: Option<String>,
    /// EC x / OKP public key.
    #[serde(default)]
    pub x: Option<String>,
    /// EC y.
    #[serde(default)]
    pub y: Option<String>,
}

/// A JWK set.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

/// What a verified token carries: its header's key id and its claims.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The claims, as JSON.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

fn b64(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD.decode(part).map_err(|_| JwtError::Malformed("a part is not base64url"))
}

/// The key type an algorithm needs, or `None` when it is not accepted.
fn key_type(alg: &str) -> Option<&'static str> {
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => Some("RSA"),
        "ES256" | "ES384" => Some("EC"),
        "EdDSA" => Some("OKP"),
        _ => None,
    }
}

/// Whether the header names no kid, or `jwk`'s kid.
fn fits(jwk: &Jwk, alg: &str, kid: Option<&str>) -> bool {
    key_type(alg) == Some(jwk.kty.as_str())
        && jwk.use_.as_deref().is_none_or(|u| u == "sig")
        && jwk.alg.as_deref().is_none_or(|a| a == alg)
        && kid.is_none_or(|k| jwk.kid.as_deref() == Some(k))
}

fn verify_with(jwk: &Jwk, alg: &str, message: &[u8], sig: &[u8]) -> Result<(), JwtError> {
    let field = |v: &Option<String>| v.as_deref().ok_or(JwtError::Malformed("a key lacks a member")).and_then(b64);
    let rsa = |params: &'static signature::RsaParameters| -> Result<(), JwtError> {
        let (n, e) = (field(&jwk.n)?, field(&jwk.e)?);
        RsaPublicKeyComponents { n: &n, e: &e }.verify(params, message, sig).map_err(|_| JwtError::Signature)
    };
    let ec = |crv: &str, params: &'static signature::EcdsaVerificationAlgorithm| -> Result<(), JwtError> {
        if jwk.crv.as_deref() != Some(crv) {
            return Err(JwtError::Signature);
        }
        let mut point = vec![4u8];
        point.extend(field(&jwk.x)?);
        point.extend(field(&jwk.y)?);
        UnparsedPublicKey::new(params, point).verify(message, sig).map_err(|_| JwtError::Signature)
    };
    match alg {
        "RS256" => rsa(&signature::RSA_PKCS1_2048_8192_SHA256),
        "RS384" => rsa(&signature::RSA_PKCS1_2048_8192_SHA384),
        "RS512" => rsa(&signature::RSA_PKCS1_2048_8192_SHA512),
        "PS256" => rsa(&signature::RSA_PSS_2048_8192_SHA256),
        "PS384" => rsa(&signature::RSA_PSS_2048_8192_SHA384),
        "PS512" => rsa(&signature::RSA_PSS_2048_8192_SHA512),
        "ES256" => ec("P-256", &signature::ECDSA_P256_SHA256_FIXED),
        "ES384" => ec("P-384", &signature::ECDSA_P384_SHA384_FIXED),
        "EdDSA" if jwk.crv.as_deref() == Some("Ed25519") => UnparsedPublicKey::new(&signature::ED25519, field(&jwk.x)?)
            .verify(message, sig)
            .map_err(|_| JwtError::Signature),
        other => Err(JwtError::Algorithm(other.to_owned())),
    }
}

/// The key id a token names, so a caller can refresh the JWKS when it does
/// not know it.
///
/// # Errors
/// [`JwtError::Malformed`].
pub fn header_kid(token: &str) -> Result<Option<String>, JwtError> {
    let header = token.split('.').next().ok_or(JwtError::Malformed("no header"))?;
    let header: Header = serde_json::from_slice(&b64(header)?).map_err(|_| JwtError::Malformed("the header"))?;
    Ok(header.kid)
}

/// Whether `jwks` has a key for the token's header (false: refresh the JWKS and try again).
#[must_use]
pub fn has_key(jwks: &Jwks, token: &str) -> bool {
    let Some(header) = token.split('.').next().and_then(|h| b64(h).ok()) else { return false };
    let Ok(header) = serde_json::from_slice::<Header>(&header) else { return false };
    jwks.keys.iter().any(|k| fits(k, &header.alg, header.kid.as_deref()))
}

/// Verifies `token`'s signature with a fitting key of `jwks` and returns its claims.
///
/// # Errors
/// [`JwtError`] for anything but a well-formed token whose signature verifies.
pub fn verify(jwks: &Jwks, token: &str) -> Result<Verified, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed("not three parts"));
    };
    let header: Header = serde_json::from_slice(&b64(h)?).map_err(|_| JwtError::Malformed("the header"))?;
    if key_type(&header.alg).is_none() {
        return Err(JwtError::Algorithm(header.alg));
    }
    let sig = b64(s)?;
    let message = &token.as_bytes()[..h.len() + 1 + p.len()];
    let mut candidates = jwks.keys.iter().filter(|k| fits(k, &header.alg, header.kid.as_deref())).peekable();
    if candidates.peek().is_none() {
        return Err(JwtError::NoKey(header.kid));
    }
    if !candidates.any(|k| verify_with(k, &header.alg, message, &sig).is_ok()) {
        return Err(JwtError::Signature);
    }
    let claims =
        serde_json::from_slice(&b64(p)?).map_err(|_| JwtError::Malformed("the claims are not a JSON object"))?;
    Ok(Verified { claims })
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    use super::*;

    fn enc(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn p256() -> (EcdsaKeyPair, Jwk) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref();
        let jwk = Jwk {
            kty: "EC".into(),
            kid: Some("k1".into()),
            use_: Some("sig".into()),
            alg: None,
            n: None,
            e: None,
            crv: Some("P-256".into()),
            x: Some(enc(&public[1..33])),
            y: Some(enc(&public[33..])),
        };
        (pair, jwk)
    }

    fn es256(pair: &EcdsaKeyPair, header: &str, claims: &str) -> String {
        let signing_input = format!("{}.{}", enc(header.as_bytes()), enc(claims.as_bytes()));
        let sig = pair.sign(&SystemRandom::new(), signing_input.as_bytes()).unwrap();
        format!("{signing_input}.{}", enc(sig.as_ref()))
    }

    #[test]
    fn es256_verifies_and_tampering_does_not() {
        let (pair, jwk) = p256();
        let jwks = Jwks { keys: vec![jwk] };
        let token = es256(&pair, r#"{"alg":"ES256","kid":"k1"}"#, r#"{"sub":"alice"}"#);
        assert!(has_key(&jwks, &token));
        assert_eq!(verify(&jwks, &token).unwrap().claims["sub"], "alice");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = enc(br#"{"sub":"mallory"}"#);
        parts[1] = &forged;
        assert_eq!(verify(&jwks, &parts.join(".")).unwrap_err(), JwtError::Signature);
        let other_kid = es256(&pair, r#"{"alg":"ES256","kid":"k2"}"#, "{}");
        assert!(!has_key(&jwks, &other_kid));
        assert_eq!(verify(&jwks, &other_kid).unwrap_err(), JwtError::NoKey(Some("k2".into())));
    }

    #[test]
    fn none_and_hmac_are_refused() {
        let (_, jwk) = p256();
        let jwks = Jwks { keys: vec![jwk] };
        let none = format!("{}.{}.", enc(br#"{"alg":"none"}"#), enc(br#"{"sub":"x"}"#));
        assert_eq!(verify(&jwks, &none).unwrap_err(), JwtError::Algorithm("none".into()));
        let hs = format!("{}.{}.{}", enc(br#"{"alg":"HS256"}"#), enc(b"{}"), enc(b"sig"));
        assert_eq!(verify(&jwks, &hs).unwrap_err(), JwtError::Algorithm("HS256".into()));
        assert!(matches!(verify(&jwks, "a.b"), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn ed25519_verifies() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let jwk = Jwk {
            kty: "OKP".into(),
            kid: None,
            use_: None,
            alg: Some("EdDSA".into()),
            n: None,
            e: None,
            crv: Some("Ed25519".into()),
            x: Some(enc(pair.public_key().as_ref())),
            y: None,
        };
        let input = format!("{}.{}", enc(br#"{"alg":"EdDSA"}"#), enc(br#"{"sub":"bob"}"#));
        let token = format!("{input}.{}", enc(pair.sign(input.as_bytes()).as_ref()));
        let jwks = Jwks { keys: vec![jwk] };
        assert_eq!(verify(&jwks, &token).unwrap().claims["sub"], "bob");
        assert_eq!(header_kid(&token).unwrap(), None);
    }
}

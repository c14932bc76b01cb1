//! The ID token's claims (OpenID Connect Core §3.1.3.7) and who they say
//! the user is.
//!
//! The token must come from the configured issuer, be meant for polo (its
//! `aud`, and `azp` when there are several audiences), be unexpired, and
//! carry the nonce polo sent with this very login (compared in constant
//! time), which binds the token to the browser's login attempt.
//! Userinfo claims may add to the token's (providers like `oidc-provider`
//! put only `sub` in the token), but only when their `sub` is the same.

use serde_json::{Map, Value};

use crate::auth::secret::constant_time_eq;

/// How far clocks may disagree, in seconds.
pub const CLOCK_SKEW_S: i64 = 120;

/// Why claims were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    /// A required claim is missing or has the wrong type.
    #[error("the ID token has no valid {0} claim")]
    Missing(&'static str),
    /// `iss` is another issuer.
    #[error("the ID token comes from issuer {0:?}, not the configured one")]
    Issuer(String),
    /// polo is not the audience.
    #[error("the ID token is not meant for this client")]
    Audience,
    /// Expired, or issued in the future.
    #[error("the ID token has expired or is not valid yet")]
    Time,
    /// The nonce is not the one of this login.
    #[error("the ID token's nonce does not match this login")]
    Nonce,
    /// Userinfo is about someone else.
    #[error("the userinfo answer is about another subject")]
    UserinfoSubject,
}

/// Who the provider says signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The issuer.
    pub issuer: String,
    /// The subject: stable and unique within the issuer.
    pub subject: String,
    /// The e-mail address, when the provider vouches for it (`email_verified` not false).
    pub email: Option<String>,
    /// A name to suggest for a new account.
    pub preferred_username: Option<String>,
    /// The groups claim's values.
    pub groups: Vec<String>,
}

/// Checks the ID token's claims for this login.
///
/// # Errors
/// [`ClaimsError`] naming the first check that failed.
pub fn check_id_token(
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now_s: i64,
) -> Result<(), ClaimsError> {
    let iss = claims.get("iss").and_then(Value::as_str).ok_or(ClaimsError::Missing("iss"))?;
    if iss != issuer {
        return Err(ClaimsError::Issuer(iss.to_owned()));
    }
    claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(ClaimsError::Missing("sub"))?;
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(ClaimsError::Missing("aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(ClaimsError::Audience);
    }
    let azp = claims.get("azp").and_then(Value::as_str);
    if (audiences.len() > 1 || azp.is_some()) && azp != Some(client_id) {
        return Err(ClaimsError::Audience);
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(ClaimsError::Missing("exp"))?;
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or(ClaimsError::Missing("iat"))?;
    if exp + CLOCK_SKEW_S < now_s || iat - CLOCK_SKEW_S > now_s {
        return Err(ClaimsError::Time);
    }
    let sent = claims.get("nonce").and_then(Value::as_str).ok_or(ClaimsError::Missing("nonce"))?;
    if !constant_time_eq(sent.as_bytes(), nonce.as_bytes()) {
        return Err(ClaimsError::Nonce);
    }
    Ok(())
}

/// Adds userinfo claims the token lacks (the token's win).
///
/// # Errors
/// [`ClaimsError::UserinfoSubject`] when userinfo names another `sub`.
pub fn merge_userinfo(claims: &mut Map<String, Value>, userinfo: Map<String, Value>) -> Result<(), ClaimsError> {
    if userinfo.get("sub") != claims.get("sub") {
        return Err(ClaimsError::UserinfoSubject);
    }
    for (key, value) in userinfo {
        claims.entry(key).or_insert(value);
    }
    Ok(())
}

/// The identity in checked claims; `groups_claim` names the groups' claim
/// (a list of strings, or one string).
#[must_use]
pub fn identity(claims: &Map<String, Value>, issuer: &str, groups_claim: &str) -> Identity {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
    let verified = claims.get("email_verified").and_then(Value::as_bool) != Some(false);
    let groups = match claims.get(groups_claim) {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    Identity {
        issuer: issuer.to_owned(),
        subject: text("sub").unwrap_or_default().to_owned(),
        email: text("email").filter(|_| verified).map(str::to_ascii_lowercase),
        preferred_username: text("preferred_username").map(str::to_owned),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn good() -> Value {
        json!({"iss": "https://id.example", "sub": "u1", "aud": "polo", "exp": 1_000, "iat": 900, "nonce": "n"})
    }

    #[test]
    fn each_check_refuses_what_it_is_for() {
        let ok = |v: Value| check_id_token(&claims(v), "https://id.example", "polo", "n", 950);
        assert_eq!(ok(good()), Ok(()));
        let with = |key: &str, value: Value| {
            let mut v = good();
            v[key] = value;
            ok(v)
        };
        assert_eq!(with("iss", json!("https://evil.example")), Err(ClaimsError::Issuer("https://evil.example".into())));
        assert_eq!(with("aud", json!("other")), Err(ClaimsError::Audience));
        assert_eq!(with("aud", json!(["polo", "other"])), Err(ClaimsError::Audience), "several audiences need azp");
        let mut v = good();
        v["aud"] = json!(["polo", "other"]);
        v["azp"] = json!("polo");
        assert_eq!(ok(v), Ok(()));
        assert_eq!(with("exp", json!(700)), Err(ClaimsError::Time));
        assert_eq!(with("iat", json!(2_000)), Err(ClaimsError::Time));
        assert_eq!(with("nonce", json!("m")), Err(ClaimsError::Nonce));
        assert_eq!(with("sub", json!("")), Err(ClaimsError::Missing("sub")));
        let mut v = good();
        v.as_object_mut().unwrap().remove("nonce");
        assert_eq!(ok(v), Err(ClaimsError::Missing("nonce")));
    }

    #[test]
    fn userinfo_adds_claims_of_the_same_subject_only() {
        let mut c = claims(good());
        merge_userinfo(&mut c, claims(json!({"sub": "u1", "email": "A@Example.org", "groups": ["staff"]}))).unwrap();
        let id = identity(&c, "https://id.example", "groups");
        assert_eq!(id.email.as_deref(), Some("a@example.org"));
        assert_eq!(id.groups, ["staff"]);
        assert_eq!(merge_userinfo(&mut c, claims(json!({"sub": "u2"}))), Err(ClaimsError::UserinfoSubject));
        let unverified =
            claims(json!({"sub": "u", "email": "x@example.org", "email_verified": false, "roles": "admin"}));
        let id = identity(&unverified, "i", "roles");
        assert_eq!((id.email, id.groups), (None, vec!["admin".to_owned()]));
    }
}

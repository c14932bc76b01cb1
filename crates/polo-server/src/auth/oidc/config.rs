//! The `[oidc]` table of `polo.toml`, defined once here: `polo-cli`
//! deserialises the table straight into [`OidcConfig`], and
//! [`OidcSettings::from_config`] validates it at start-up, so a typo stops
//! `polo serve` with a message naming the key instead of breaking sign-in
//! later.

use reqwest::Url;
use serde::Deserialize;

/// A bad `[oidc]` value; the message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("oidc.{key}: {reason}")]
pub struct OidcConfigError {
    /// The key, without the `oidc.` prefix.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn bad(key: &'static str, reason: impl Into<String>) -> OidcConfigError {
    OidcConfigError { key, reason: reason.into() }
}

/// The `[oidc]` table as written. Every key is documented in `docs/accounts.md`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// The client id polo is registered under.
    pub client_id: Option<String>,
    /// The client secret.
    pub client_secret: Option<String>,
    /// polo's callback as registered with the provider: `https://HOST/api/v1/auth/oidc/callback`.
    pub redirect_uri: Option<String>,
    /// Scopes to ask for (default `openid email profile`); must contain `openid`.
    pub scopes: Option<Vec<String>>,
    /// The login page's button text (default `Sign in with SSO`).
    pub button_label: Option<String>,
    /// Create an account at the first sign-in of someone without one (default false).
    pub create_accounts: Option<bool>,
    /// Only e-mail addresses of these domains get an account created.
    pub allowed_domains: Option<Vec<String>>,
    /// Only members of one of these groups (in `groups_claim`) get an account created.
    pub allowed_groups: Option<Vec<String>>,
    /// The claim that lists a user's groups (default `groups`).
    pub groups_claim: Option<String>,
    /// Members of one of these groups are administrators; when set, the role follows the claim at
    /// every OIDC sign-in.
    pub admin_groups: Option<Vec<String>>,
    /// Members of one of these groups get the `health-authority` role; when set, the role follows
    /// the claim at every OIDC sign-in.
    pub health_authority_groups: Option<Vec<String>>,
    /// Whether password login stays on (default true); false needs OIDC.
    pub password_login: Option<bool>,
}

/// Validated OIDC settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// The issuer, without a trailing `/`.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret (never logged: [`OidcSettings`]'s `Debug` is derived,
    /// so it is kept in a wrapper that hides it).
    pub client_secret: Secret,
    /// The callback URL.
    pub redirect_uri: String,
    /// The scopes, `openid` among them.
    pub scopes: Vec<String>,
    /// The button text.
    pub button_label: String,
    /// Whether accounts are created at first sign-in.
    pub create_accounts: bool,
    /// Allowed e-mail domains, lower case (empty: any, unless groups are set).
    pub allowed_domains: Vec<String>,
    /// Allowed groups (empty: any, unless domains are set).
    pub allowed_groups: Vec<String>,
    /// The groups claim.
    pub groups_claim: String,
    /// Groups whose members are administrators (`None`: the role is not managed by OIDC).
    pub admin_groups: Option<Vec<String>>,
    /// Groups whose members are health authorities (`None`: not managed by OIDC).
    pub health_authority_groups: Option<Vec<String>>,
    /// Whether password login stays on.
    pub password_login: bool,
}

/// A secret that `Debug` does not print.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Default scopes.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "email", "profile"];
/// Default button text.
pub const DEFAULT_BUTTON_LABEL: &str = "Sign in with SSO";

fn required(key: &'static str, value: Option<String>) -> Result<String, OidcConfigError> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(bad(key, "is required when [oidc] is present")),
    }
}

/// `http` is only for a provider on this machine (tests, a local
/// development provider); anything reachable over a network needs `https`.
pub(crate) fn check_url(key: &'static str, text: &str) -> Result<Url, OidcConfigError> {
    let url = Url::parse(text).map_err(|e| bad(key, format!("{text:?} is not a URL: {e}")))?;
    let Some(host) = url.host_str().filter(|h| !h.is_empty()) else {
        return Err(bad(key, format!("{text:?} has no host")));
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host.eq_ignore_ascii_case("localhost") || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(bad(key, format!("{text:?} must use https (http only on localhost)"))),
        other => return Err(bad(key, format!("{text:?}: the scheme must be https, not {other}"))),
    }
    if url.fragment().is_some() {
        return Err(bad(key, format!("{text:?} must not have a #fragment")));
    }
    Ok(url)
}

fn clean_list(key: &'static str, values: Option<Vec<String>>, lower: bool) -> Result<Vec<String>, OidcConfigError> {
    let mut out = Vec::new();
    for value in values.unwrap_or_default() {
        let v = value.trim();
        if v.is_empty() {
            return Err(bad(key, "has an empty entry"));
        }
        out.push(if lower { v.to_ascii_lowercase() } else { v.to_owned() });
    }
    Ok(out)
}

impl OidcSettings {
    /// Validates `[oidc]`.
    ///
    /// # Errors
    /// [`OidcConfigError`] naming the first bad key.
    pub fn from_config(config: OidcConfig) -> Result<Self, OidcConfigError> {
        let issuer = required("issuer", config.issuer)?;
        check_url("issuer", &issuer)?;
        if issuer.contains('?') {
            return Err(bad("issuer", "must not have a query"));
        }
        let client_id = required("client_id", config.client_id)?;
        let client_secret = required("client_secret", config.client_secret)?;
        let redirect_uri = required("redirect_uri", config.redirect_uri)?;
        let url = check_url("redirect_uri", &redirect_uri)?;
        if !url.path().ends_with("/api/v1/auth/oidc/callback") {
            return Err(bad("redirect_uri", "must end in /api/v1/auth/oidc/callback, polo's callback route"));
        }
        let scopes = match config.scopes {
            None => DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            Some(list) => clean_list("scopes", Some(list), false)?,
        };
        if let Some(s) = scopes.iter().find(|s| s.contains(char::is_whitespace)) {
            return Err(bad("scopes", format!("{s:?} has white space; give each scope as its own entry")));
        }
        if !scopes.iter().any(|s| s == "openid") {
            return Err(bad("scopes", "must contain openid"));
        }
        let button_label = config.button_label.map_or_else(|| DEFAULT_BUTTON_LABEL.to_owned(), |l| l.trim().to_owned());
        if button_label.is_empty() || button_label.chars().count() > 64 || button_label.chars().any(char::is_control) {
            return Err(bad("button_label", "must be 1 to 64 printable characters"));
        }
        let allowed_domains = clean_list("allowed_domains", config.allowed_domains, true)?;
        if let Some(d) = allowed_domains.iter().find(|d| d.contains('@') || !d.contains('.')) {
            return Err(bad("allowed_domains", format!("{d:?} is not a domain like example.org")));
        }
        let groups_claim = config.groups_claim.map_or_else(|| "groups".to_owned(), |c| c.trim().to_owned());
        if groups_claim.is_empty() {
            return Err(bad("groups_claim", "must not be empty"));
        }
        let admin_groups = config.admin_groups.map(|g| clean_list("admin_groups", Some(g), false)).transpose()?;
        let health_authority_groups = config
            .health_authority_groups
            .map(|g| clean_list("health_authority_groups", Some(g), false))
            .transpose()?;
        Ok(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            client_id,
            client_secret: Secret(client_secret),
            redirect_uri,
            scopes,
            button_label,
            create_accounts: config.create_accounts.unwrap_or(false),
            allowed_domains,
            allowed_groups: clean_list("allowed_groups", config.allowed_groups, false)?,
            groups_claim,
            admin_groups,
            health_authority_groups,
            password_login: config.password_login.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> OidcConfig {
        OidcConfig {
            issuer: Some("https://id.example/realms/polo/".into()),
            client_id: Some("polo".into()),
            client_secret: Some("s3cret".into()),
            redirect_uri: Some("https://polo.example/api/v1/auth/oidc/callback".into()),
            ..OidcConfig::default()
        }
    }

    #[test]
    fn defaults_fill_in_and_the_secret_is_not_printed() {
        let s = OidcSettings::from_config(base()).unwrap();
        assert_eq!(s.issuer, "https://id.example/realms/polo");
        assert_eq!(s.scopes, ["openid", "email", "profile"]);
        assert_eq!(s.button_label, DEFAULT_BUTTON_LABEL);
        assert!(s.password_login && !s.create_accounts && s.admin_groups.is_none());
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(OidcConfig, &str)> = vec![
            (OidcConfig { issuer: None, ..base() }, "oidc.issuer: is required"),
            (
                OidcConfig { issuer: Some("http://id.example".into()), ..base() },
                "oidc.issuer: \"http://id.example\" must use https",
            ),
            (OidcConfig { issuer: Some("not a url".into()), ..base() }, "oidc.issuer:"),
            (OidcConfig { client_secret: Some(" ".into()), ..base() }, "oidc.client_secret: is required"),
            (
                OidcConfig { redirect_uri: Some("https://polo.example/cb".into()), ..base() },
                "oidc.redirect_uri: must end in",
            ),
            (OidcConfig { scopes: Some(vec!["email".into()]), ..base() }, "oidc.scopes: must contain openid"),
            (
                OidcConfig { scopes: Some(vec!["openid email".into()]), ..base() },
                "oidc.scopes: \"openid email\" has white space",
            ),
            (OidcConfig { allowed_domains: Some(vec!["@example.org".into()]), ..base() }, "oidc.allowed_domains:"),
            (OidcConfig { button_label: Some(String::new()), ..base() }, "oidc.button_label:"),
        ];
        for (config, want) in cases {
            let e = OidcSettings::from_config(config).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
        let local = OidcConfig { issuer: Some("http://127.0.0.1:9000".into()), ..base() };
        assert!(OidcSettings::from_config(local).is_ok(), "http on loopback is allowed");
    }
}

//! Talking to the OpenID provider: discovery, its keys, the token endpoint
//! and userinfo.
//!
//! Discovery happens on first use, not at start-up, so polo starts (and
//! password login works) while the provider is down; the metadata is kept
//! for [`METADATA_TTL`], and the keys are fetched again when a token names
//! a key polo does not know (the provider rotated them).

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use super::config::OidcSettings;
use super::jwt::Jwks;

/// How long discovery and keys are kept.
pub const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The longest polo waits for the provider.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The provider did not answer as OpenID Connect says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the OpenID provider: {0}")]
pub struct ProviderError(pub String);

/// What discovery tells (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where the browser is sent.
    pub authorization_endpoint: String,
    /// Where the code is exchanged.
    pub token_endpoint: String,
    /// Claims for an access token.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The signing keys.
    pub jwks_uri: String,
    /// How the client may authenticate at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct TokenReply {
    id_token: Option<String>,
    access_token: Option<String>,
}

#[derive(Debug)]
struct Cached {
    metadata: Metadata,
    jwks: Jwks,
    at: Instant,
}

/// The provider's endpoints and keys, fetched over `client`.
#[derive(Debug)]
pub struct Provider {
    client: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

/// The tokens of one login.
#[derive(Debug)]
pub struct Tokens {
    /// The ID token (compact JWS).
    pub id_token: String,
    /// The access token, for userinfo.
    pub access_token: Option<String>,
}

fn err(what: impl std::fmt::Display) -> ProviderError {
    ProviderError(what.to_string())
}

impl Provider {
    /// A provider client.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new() -> Result<Self, ProviderError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| err(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, cached: Mutex::new(None) })
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, what: &str) -> Result<T, ProviderError> {
        let reply = self.client.get(url).send().await.map_err(|e| err(format!("{what} at {url}: {e}")))?;
        if !reply.status().is_success() {
            return Err(err(format!("{what} at {url} answered {}", reply.status())));
        }
        let bytes = reply.bytes().await.map_err(|e| err(format!("{what} at {url}: {e}")))?;
        serde_json::from_slice(&bytes).map_err(|e| err(format!("{what} at {url} is not the expected JSON: {e}")))
    }

    async fn fetch(&self, settings: &OidcSettings) -> Result<Cached, ProviderError> {
        let url = format!("{}/.well-known/openid-configuration", settings.issuer);
        let metadata: Metadata = self.get_json(&url, "discovery").await?;
        if metadata.issuer.trim_end_matches('/') != settings.issuer {
            return Err(err(format!(
                "discovery names issuer {:?}, but oidc.issuer is {:?}",
                metadata.issuer, settings.issuer
            )));
        }
        for (name, value) in [
            ("authorization_endpoint", &metadata.authorization_endpoint),
            ("token_endpoint", &metadata.token_endpoint),
            ("jwks_uri", &metadata.jwks_uri),
        ] {
            super::config::check_url("issuer", value).map_err(|e| err(format!("discovery's {name}: {}", e.reason)))?;
        }
        let jwks = self.get_json(&metadata.jwks_uri, "the key set").await?;
        Ok(Cached { metadata, jwks, at: Instant::now() })
    }

    /// The provider's metadata (discovered, or kept).
    ///
    /// # Errors
    /// [`ProviderError`] when discovery fails.
    pub async fn metadata(&self, settings: &OidcSettings) -> Result<Metadata, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| c.at.elapsed() < METADATA_TTL) {
            return Ok(c.metadata.clone());
        }
        let fresh = self.fetch(settings).await?;
        let metadata = fresh.metadata.clone();
        *cached = Some(fresh);
        Ok(metadata)
    }

    /// The keys to verify `id_token` with: fetched again once when none fits.
    ///
    /// # Errors
    /// [`ProviderError`] when discovery or the key set fails.
    pub async fn keys_for(&self, settings: &OidcSettings, id_token: &str) -> Result<Jwks, ProviderError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) =
            cached.as_ref().filter(|c| c.at.elapsed() < METADATA_TTL && super::jwt::has_key(&c.jwks, id_token))
        {
            return Ok(c.jwks.clone());
        }
        let fresh = self.fetch(settings).await?;
        let jwks = fresh.jwks.clone();
        *cached = Some(fresh);
        Ok(jwks)
    }

    /// Exchanges the authorization code (with the PKCE verifier).
    ///
    /// # Errors
    /// [`ProviderError`] when the provider refuses or answers nonsense.
    pub async fn exchange(
        &self,
        settings: &OidcSettings,
        metadata: &Metadata,
        code: &str,
        verifier: &str,
    ) -> Result<Tokens, ProviderError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", settings.redirect_uri.as_str()),
            ("code_verifier", verifier),
        ];
        // client_secret_basic unless the provider only takes client_secret_post.
        let methods = metadata.token_endpoint_auth_methods_supported.as_deref().unwrap_or_default();
        let post_only = !methods.is_empty()
            && !methods.iter().any(|m| m == "client_secret_basic")
            && methods.iter().any(|m| m == "client_secret_post");
        let mut request = self.client.post(&metadata.token_endpoint);
        if post_only {
            form.push(("client_id", settings.client_id.as_str()));
            form.push(("client_secret", settings.client_secret.0.as_str()));
        } else {
            // RFC 6749 §2.3.1: both are form-urlencoded before Basic.
            let id: String = form_urlencoded(&settings.client_id);
            let secret: String = form_urlencoded(&settings.client_secret.0);
            request = request.basic_auth(id, Some(secret));
        }
        let body = serde_urlencoded::to_string(&form).map_err(err)?;
        let reply = request
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| err(format!("the token endpoint: {e}")))?;
        let status = reply.status();
        let text = reply.text().await.map_err(|e| err(format!("the token endpoint: {e}")))?;
        if !status.is_success() {
            // The error body is the provider's `{error, error_description}`: no secrets in it.
            let detail = serde_json::from_str::<Map<String, Value>>(&text)
                .ok()
                .and_then(|m| m.get("error").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default();
            return Err(err(format!("the token endpoint refused the code ({status} {detail})")));
        }
        let tokens: TokenReply =
            serde_json::from_str(&text).map_err(|e| err(format!("the token endpoint's answer: {e}")))?;
        let id_token = tokens.id_token.ok_or_else(|| err("the token endpoint sent no id_token"))?;
        Ok(Tokens { id_token, access_token: tokens.access_token })
    }

    /// The userinfo claims, when the provider has the endpoint and gave an access token.
    ///
    /// # Errors
    /// [`ProviderError`] when userinfo fails.
    pub async fn userinfo(
        &self,
        metadata: &Metadata,
        access_token: Option<&str>,
    ) -> Result<Option<Map<String, Value>>, ProviderError> {
        let (Some(url), Some(token)) = (metadata.userinfo_endpoint.as_deref(), access_token) else {
            return Ok(None);
        };
        let reply = self
            .client
            .get(url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| err(format!("userinfo: {e}")))?;
        if !reply.status().is_success() {
            return Err(err(format!("userinfo answered {}", reply.status())));
        }
        let bytes = reply.bytes().await.map_err(|e| err(format!("userinfo: {e}")))?;
        serde_json::from_slice(&bytes).map(Some).map_err(|e| err(format!("userinfo is not a JSON object: {e}")))
    }
}

fn form_urlencoded(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).map(|s| s[1..].to_owned()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_are_form_encoded_for_basic() {
        assert_eq!(form_urlencoded("a b:c/é"), "a+b%3Ac%2F%C3%A9");
        assert_eq!(form_urlencoded("plain"), "plain");
    }
}

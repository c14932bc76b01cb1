//! Sign-in with an OpenID Connect provider: the authorization code flow
//! with PKCE (S256), a nonce and a browser-bound state.
//!
//! Why no OIDC crate: `openidconnect` brings `oauth2`, the `rsa` crate
//! (whose timing advisory RUSTSEC-2023-0071 has no fix), three elliptic
//! curve crates, `chrono` and `serde_with` into a build that runs on two
//! cores. What polo needs of it is small and sits on what the build has:
//! `reqwest` for discovery, the token endpoint and userinfo, and `ring` (the
//! TLS stack's) for the signature. Each check is its own module with its
//! own tests: [`config`] (the `[oidc]` table), [`provider`] (discovery,
//! keys, code exchange), [`jwt`] (signatures), [`claims`] (issuer,
//! audience, time, nonce), [`flow`] (state, PKCE verifier, browser
//! binding) and [`accounts`] (linking, creating accounts, roles).
//!
//! The routes are in [`routes`]: `GET /api/v1/auth/oidc/login` sends the
//! browser to the provider, `GET /api/v1/auth/oidc/callback` finishes,
//! `GET|POST|DELETE /api/v1/me/oidc` shows, starts and removes the link of
//! the logged-in account.

pub mod accounts;
pub mod claims;
pub mod config;
pub mod flow;
pub mod jwt;
pub mod provider;
pub(crate) mod routes;

use polo_domain::Timestamp;
use polo_store::Store;

pub use self::config::{OidcConfig, OidcConfigError, OidcSettings};
use self::flow::{Flow, FlowError, Purpose};
use self::provider::{Provider, ProviderError};

/// Why a sign-in through the provider failed. The message is shown to the
/// user on the login page, so it says what to do and holds no secret.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The attempt is unknown, expired or of another browser.
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The provider answered with an error (`?error=` on the callback).
    #[error("the provider refused the sign-in: {0}")]
    Refused(String),
    /// The provider could not be reached or answered nonsense.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The ID token's signature.
    #[error(transparent)]
    Token(#[from] jwt::JwtError),
    /// The ID token's claims.
    #[error(transparent)]
    Claims(#[from] claims::ClaimsError),
    /// Who signed in may not use polo (no link, not allowed to sign up, linked elsewhere).
    #[error("{0}")]
    Denied(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] polo_store::StoreError),
    /// A blocking task ended abnormally.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The configured provider: settings and the client that talks to it.
#[derive(Debug)]
pub struct Oidc {
    /// The validated `[oidc]` settings.
    pub settings: OidcSettings,
    provider: Provider,
}

/// Where to send the browser, and the cookie that binds the attempt to it.
#[derive(Debug)]
pub struct Redirect {
    /// The provider's authorization URL with every parameter.
    pub url: String,
    /// The `polo_oidc` cookie's value.
    pub browser_cookie: String,
}

impl Oidc {
    /// The provider of `settings` (nothing is fetched until the first sign-in).
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(settings: OidcSettings) -> Result<Self, ProviderError> {
        Ok(Self { settings, provider: Provider::new()? })
    }

    /// Starts an attempt: stores it and returns the provider's URL.
    ///
    /// # Errors
    /// [`OidcError::Provider`] when discovery fails, [`OidcError::Store`].
    pub async fn begin(&self, store: std::sync::Arc<dyn Store>, purpose: Purpose) -> Result<Redirect, OidcError> {
        let metadata = self.provider.metadata(&self.settings).await?;
        let started = tokio::task::spawn_blocking(move || flow::start(&*store, purpose, crate::audit::now()))
            .await
            .map_err(|e| OidcError::Internal(e.to_string()))??;
        let scope = self.settings.scopes.join(" ");
        let query = serde_urlencoded::to_string([
            ("response_type", "code"),
            ("client_id", self.settings.client_id.as_str()),
            ("redirect_uri", self.settings.redirect_uri.as_str()),
            ("scope", scope.as_str()),
            ("state", started.state.as_str()),
            ("nonce", started.nonce.as_str()),
            ("code_challenge", started.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .map_err(|e| OidcError::Internal(e.to_string()))?;
        let separator = if metadata.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok(Redirect {
            url: format!("{}{separator}{query}", metadata.authorization_endpoint),
            browser_cookie: started.browser_cookie,
        })
    }

    /// Takes the attempt the callback names.
    ///
    /// # Errors
    /// [`OidcError::Flow`], [`OidcError::Store`].
    pub async fn take(
        &self,
        store: std::sync::Arc<dyn Store>,
        state: String,
        cookie: Option<String>,
    ) -> Result<Flow, OidcError> {
        let now = crate::audit::now();
        let taken = tokio::task::spawn_blocking(move || flow::take(&*store, &state, cookie.as_deref(), now))
            .await
            .map_err(|e| OidcError::Internal(e.to_string()))??;
        Ok(taken?)
    }

    /// Exchanges the code and checks what comes back: the identity of who signed in.
    ///
    /// # Errors
    /// [`OidcError`] for every failed check.
    pub async fn finish(&self, flow: &Flow, code: &str, now: Timestamp) -> Result<claims::Identity, OidcError> {
        let settings = &self.settings;
        let metadata = self.provider.metadata(settings).await?;
        let tokens = self.provider.exchange(settings, &metadata, code, &flow.verifier).await?;
        let keys = self.provider.keys_for(settings, &tokens.id_token).await?;
        let mut verified = jwt::verify(&keys, &tokens.id_token)?.claims;
        claims::check_id_token(&verified, &metadata.issuer, &settings.client_id, &flow.nonce, now.0 / 1000)?;
        if let Some(info) = self.provider.userinfo(&metadata, tokens.access_token.as_deref()).await? {
            claims::merge_userinfo(&mut verified, info)?;
        }
        Ok(claims::identity(&verified, &settings.issuer, &settings.groups_claim))
    }
}

//! Who is calling: passwords, device tokens, web sessions, and the axum
//! extractors handlers use to require them.
//!
//! # Credentials a request may carry
//!
//! * **Session cookie** `polo_session` (the web app): looked up by its
//!   SHA-256. Unsafe methods must echo the session's CSRF token in
//!   `X-CSRF-Token`, because browsers attach cookies to cross-site requests.
//! * **`Authorization: Bearer <token>`**: a device token, by its SHA-256.
//! * **`Authorization: Basic base64(user:secret)`**, the secret being the
//!   password or a device token of that user (OwnTracks, scripts).
//! * **`Authorization: Basic <token>:`** literally, not base64-encoded:
//!   what Overland's OwnTracks mode sends.
//!
//! An `Authorization` header wins over the cookie, and requests
//! authenticated by it are exempt from the CSRF check (a cross-site page
//! cannot set that header).
//!
//! # Cost
//!
//! Argon2 takes ~50 ms of CPU by design, and Basic auth sends the password
//! with every request, so a successful verification is remembered for
//! [`VERIFIED_TTL`]: keyed by the user and a keyed SHA-256 of the password
//! (the key is random per process), valid only while the user's stored hash
//! is unchanged, in a bounded map. Argon2 itself runs on the blocking pool.
//!
//! # Guessing
//!
//! Wrong passwords are rate limited per (client address, user name) and per
//! client address with exponential back-off ([`Backoff`]), never per user
//! name alone, so nobody can lock a user out from elsewhere. Unknown device
//! tokens count per address on their own: password failures never block a
//! device token. A blocked request gets 429 `rate_limited` with
//! `Retry-After` before any password is checked. The client address is the
//! one [`crate::client`] settled on (behind a `--trusted-proxy`, the
//! forwarded one).
//!
//! # Administrators
//!
//! [`AdminCaller`] is the only way a handler gets the admin role, and it is
//! refused to clients outside the admin networks (`--admin-network`) before
//! any credential is looked at: every admin route is admin-network-only by
//! construction, whichever router it sits in. When an administrator has
//! required two factors of administrators (the `require_admin_2fa` instance
//! setting), it is also refused to administrators without one ([`totp`]).
//!
//! # Second factor and single sign-on
//!
//! An account with TOTP ([`totp`]) or a passkey ([`webauthn`]) logs in with
//! the password and a code or the passkey; its password alone is refused in
//! Basic. A wrong code or passkey counts like a wrong password, and a right
//! password clears the back-off only together with a right second factor. A
//! passkey with user verification also signs in alone, instead of the
//! password. [`oidc`] signs people in through a provider.
//!
//! Device tokens are meant for devices: without scopes a token ingests as
//! its device and reads its own latest position, nothing more; every other
//! route needs a scope the token was made with ([`scope`]). No token changes
//! the password or creates users ([`Caller::require_password_grade`]), and
//! what a token makes (tokens, shares, grants) is revoked with it, so a
//! revoked token cannot have left a successor behind.

pub(crate) mod limiter;
pub mod oidc;
mod password;
pub mod scope;
pub(crate) mod secret;
pub mod seen;
pub(crate) mod sessions;
mod token_cache;
pub mod totp;
pub mod webauthn;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polo_domain::{Timestamp, UserId};
use polo_store::{Device, Store, Token, TokenScope, TokenScopes, User};

pub use self::limiter::Backoff;
use self::limiter::RateLimiter;
pub use self::password::{MIN_PASSWORD_LEN, PasswordError, hash_password, verify_password};
pub use self::secret::{TOKEN_PREFIX, looks_like_token, new_token, random_secret, sha256};
pub use self::token_cache::TOKEN_CACHE_TTL;
use self::token_cache::TokenCache;
use crate::AppState;
use crate::client::Client;
use crate::error::ApiError;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "polo_session";
/// The header unsafe cookie-authenticated requests must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a successful password verification is remembered.
pub const VERIFIED_TTL: Duration = Duration::from_secs(600);
/// The most remembered verifications.
const VERIFIED_MAX: usize = 4096;

/// How a caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// The `polo_session` cookie.
    Session,
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Authorization: Basic` with the user's password.
    BasicPassword,
    /// `Authorization: Basic` with a device token (base64 or the literal `<token>:` form).
    BasicToken,
}

impl AuthMethod {
    /// The name used in API responses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Bearer => "bearer",
            Self::BasicPassword => "basic_password",
            Self::BasicToken => "basic_token",
        }
    }

    /// Whether a device token was used.
    #[must_use]
    pub fn is_token(self) -> bool {
        matches!(self, Self::Bearer | Self::BasicToken)
    }
}

#[derive(Debug, Clone)]
struct SessionRef {
    hash: [u8; 32],
    csrf_token: String,
}

/// The device token a caller authenticated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerToken {
    /// The token's id: what the caller makes is recorded with it.
    pub id: i64,
    /// What it may do beyond ingesting as its device.
    pub scopes: TokenScopes,
}

/// An authenticated caller. Handlers scope every read and write to
/// `user.id`; `device` and `token` are set when a device token was used.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// The device whose token authenticated the request.
    pub device: Option<Device>,
    /// The token, with its scopes.
    pub token: Option<CallerToken>,
    /// How the caller authenticated.
    pub via: AuthMethod,
    session: Option<SessionRef>,
}

impl Caller {
    /// The session's CSRF token, for cookie-authenticated callers.
    #[must_use]
    pub fn csrf_token(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.csrf_token.as_str())
    }

    /// The stored hash of the caller's session cookie.
    #[must_use]
    pub fn session_hash(&self) -> Option<&[u8; 32]> {
        self.session.as_ref().map(|s| &s.hash)
    }

    /// A caller with a device token: its device and the token's id and scopes.
    fn with_token(token: Token, user: User, via: AuthMethod) -> Self {
        let scoped = CallerToken { id: token.id, scopes: token.scopes };
        Self { user, device: Some(token.device), token: Some(scoped), via, session: None }
    }

    /// A caller with the password (or a session): not limited by scopes.
    fn with_password(user: User, via: AuthMethod, session: Option<SessionRef>) -> Self {
        Self { user, device: None, token: None, via, session }
    }

    /// Whether the caller may do what `scope` covers: always with the
    /// password or a session, with a device token when it has the scope.
    #[must_use]
    pub fn has_scope(&self, scope: TokenScope) -> bool {
        self.token.is_none_or(|t| t.scopes.contains(scope))
    }

    /// The scopes whatever the caller makes may have: a token's own, or
    /// every scope for the password and sessions.
    #[must_use]
    pub fn grantable_scopes(&self) -> TokenScopes {
        self.token.map_or_else(TokenScopes::all, |t| t.scopes)
    }

    /// The id of the device token the caller used, to record on what it
    /// makes (revoking the token revokes those).
    #[must_use]
    pub fn maker(&self) -> Option<i64> {
        self.token.map(|t| t.id)
    }

    /// Refuses device tokens: for actions that need the user's own login.
    ///
    /// # Errors
    /// 403 `forbidden` for token-authenticated callers.
    pub fn require_password_grade(&self) -> Result<(), ApiError> {
        if self.via.is_token() {
            return Err(ApiError::forbidden("a device token cannot do this; log in with the password"));
        }
        Ok(())
    }
}

/// [`Caller`], or nobody: for routes that also serve anonymous requests.
/// Wrong credentials are still refused.
#[derive(Debug, Clone)]
pub struct OptionalCaller(pub Option<Caller>);

/// A [`Caller`] with the admin role, from inside the admin networks (403
/// `forbidden` otherwise). Every admin-only handler takes this extractor.
#[derive(Debug, Clone)]
pub struct AdminCaller(pub Caller);

/// A new login: the cookie value to set (shown only here) and the session.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The user.
    pub user: User,
    /// The cookie value.
    pub cookie_value: String,
    /// The CSRF token the web app must echo.
    pub csrf_token: String,
}

/// The second factor a login gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// The account has none.
    None,
    /// The authenticator app's code.
    Totp,
    /// A passkey.
    Passkey,
    /// A recovery code, used up; `left` remain.
    Recovery {
        /// Unused recovery codes.
        left: usize,
    },
}

/// What a login gives besides the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// Nothing.
    None,
    /// The authenticator app's code, or a recovery code.
    Code(String),
    /// A passkey's answer to a sign-in challenge.
    Passkey(webauthn::Assertion),
}

/// Whether `user` must give a second factor after the password: TOTP is on,
/// or they registered a passkey.
///
/// # Errors
/// Store failures.
pub fn second_factor_on(store: &dyn Store, user: UserId) -> polo_store::StoreResult<bool> {
    Ok(totp::enabled(store, user)? || webauthn::has_passkey(store, user)?)
}

/// What an `Authorization` header says.
#[derive(Debug, PartialEq, Eq)]
enum Credentials {
    Token {
        token: String,
        via: AuthMethod,
    },
    Password {
        user: String,
        password: String,
    },
    /// `user:token` in Basic: the token must belong to `user`.
    UserToken {
        user: String,
        token: String,
    },
}

fn parse_authorization(value: &HeaderValue) -> Result<Credentials, ApiError> {
    let malformed = || ApiError::unauthorized("the Authorization header is malformed");
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, rest) = text.split_once(' ').ok_or_else(malformed)?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(malformed());
        }
        return Ok(Credentials::Token { token: rest.to_owned(), via: AuthMethod::Bearer });
    }
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(ApiError::unauthorized(format!(
            "unsupported authorization scheme {scheme:?}; use Bearer or Basic"
        )));
    }
    // Overland's OwnTracks mode: `Basic <token>:`, not base64 (':' is no base64 character).
    let literal = rest.contains(':');
    let pair = if literal {
        rest.to_owned()
    } else {
        let bytes = STANDARD.decode(rest).map_err(|_| malformed())?;
        String::from_utf8(bytes).map_err(|_| malformed())?
    };
    let (user, secret) = pair.split_once(':').ok_or_else(malformed)?;
    match (user, secret) {
        ("", "") => Err(malformed()),
        // A token alone, as username with an empty password or the other way round.
        (token, "") | ("", token) => Ok(Credentials::Token { token: token.to_owned(), via: AuthMethod::BasicToken }),
        (user, secret) if looks_like_token(secret) => {
            Ok(Credentials::UserToken { user: user.to_owned(), token: secret.to_owned() })
        }
        // Passwords only travel base64-encoded, as RFC 7617 says.
        _ if literal => Err(malformed()),
        (user, password) => Ok(Credentials::Password { user: user.to_owned(), password: password.to_owned() }),
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, SESSION_COOKIE)
}

/// The value of the cookie called `wanted`, if the request sent a non-empty one.
#[must_use]
pub fn cookie<'h>(headers: &'h HeaderMap, wanted: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == wanted)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The client's address ([`Client`]): the TCP peer, or behind a trusted
/// proxy the address it forwarded; `None` when the server recorded none.
#[must_use]
pub fn client_ip(parts: &Parts) -> Option<IpAddr> {
    Client::of(&parts.extensions).ip
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, polo_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Remembered successful password verifications.
struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

impl VerifiedCache {
    fn new() -> Self {
        let mut key = [0u8; 32];
        key.copy_from_slice(&sha256(random_secret().as_bytes()));
        Self { key, entries: Mutex::new(HashMap::new()) }
    }

    fn digest(&self, user: UserId, password: &str) -> [u8; 32] {
        let mut data = Vec::with_capacity(40 + password.len());
        data.extend_from_slice(&self.key);
        data.extend_from_slice(&user.0.to_le_bytes());
        data.extend_from_slice(password.as_bytes());
        sha256(&data)
    }

    fn hit(&self, user: &User, password: &str) -> bool {
        let digest = self.digest(user.id, password);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(&digest).is_some_and(|(phc, at)| *phc == user.password_hash && at.elapsed() < VERIFIED_TTL)
    }

    fn insert(&self, user: &User, password: &str) {
        let digest = self.digest(user.id, password);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= VERIFIED_MAX {
            entries.retain(|_, (_, at)| at.elapsed() < VERIFIED_TTL);
            if entries.len() >= VERIFIED_MAX {
                let oldest = entries.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(digest, (user.password_hash.clone(), Instant::now()));
    }
}

/// Resolves credentials to a [`Caller`]; owns the verification cache and
/// the failure rate limiter. One per server, in [`AppState::auth`].
pub struct Authenticator {
    store: Arc<dyn Store>,
    secure_cookies: bool,
    /// Off when `[oidc] password_login = false`: passwords are refused everywhere.
    password_login: bool,
    verified: VerifiedCache,
    tokens: TokenCache,
    limiter: RateLimiter,
    /// When and from where sessions and tokens were last used.
    seen: seen::Seen,
    /// A PHC string to verify against for unknown users, so a wrong user
    /// name takes as long as a wrong password. Made on first use.
    dummy_hash: OnceLock<String>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("secure_cookies", &self.secure_cookies).finish_non_exhaustive()
    }
}

impl Authenticator {
    /// An authenticator over `store` with the default back-off and cookies
    /// without the `Secure` attribute.
    #[must_use]
    pub fn new(store: Arc<dyn Store>) -> Self {
        let limiter = RateLimiter::new(Backoff::default()).shared_through(&store);
        Self {
            store,
            secure_cookies: false,
            password_login: true,
            verified: VerifiedCache::new(),
            tokens: TokenCache::default(),
            limiter,
            seen: seen::Seen::default(),
            dummy_hash: OnceLock::new(),
        }
    }

    /// Marks the session cookie `Secure` for every request. Without it the
    /// cookie is `Secure` for requests that came over HTTPS ([`Client::https`]:
    /// polo's own TLS, or a trusted proxy's `X-Forwarded-Proto: https`).
    #[must_use]
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        self.secure_cookies = secure;
        self
    }

    /// Turns password login off (or on again): with OIDC as the only way in,
    /// the login form and Basic passwords are refused. Device tokens work.
    #[must_use]
    pub fn with_password_login(mut self, enabled: bool) -> Self {
        self.password_login = enabled;
        self
    }

    /// Whether passwords are accepted.
    #[must_use]
    pub fn password_login_enabled(&self) -> bool {
        self.password_login
    }

    /// Replaces the back-off policy.
    #[must_use]
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.limiter = RateLimiter::new(backoff).shared_through(&self.store);
        self
    }

    /// Authenticates a request: `Ok(None)` when it carries no credentials
    /// (or a session cookie that is unknown or expired).
    ///
    /// # Errors
    /// 401 for wrong or malformed credentials, 429 while rate limited, 403
    /// `csrf_failed` for an unsafe cookie-authenticated request without the
    /// right `X-CSRF-Token`, 503 when the store fails.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Option<Caller>, ApiError> {
        let ip = client_ip(parts);
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            return self.authorization(parse_authorization(value)?, ip).await.map(Some);
        }
        let Some(cookie) = session_cookie(&parts.headers) else { return Ok(None) };
        let hash = sha256(cookie.as_bytes());
        let store = self.store.clone();
        let Some((session, user)) = blocking(move || store.session_by_hash(&hash, now())).await? else {
            return Ok(None);
        };
        if is_unsafe(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).map(HeaderValue::as_bytes).unwrap_or_default();
            if !secret::constant_time_eq(sent, session.csrf_token.as_bytes()) {
                return Err(ApiError::csrf_failed());
            }
        }
        self.seen.session_used(&self.store, &hash, now(), ip);
        let session = SessionRef { hash, csrf_token: session.csrf_token };
        Ok(Some(Caller::with_password(user, AuthMethod::Session, Some(session))))
    }

    async fn authorization(&self, credentials: Credentials, ip: Option<IpAddr>) -> Result<Caller, ApiError> {
        match credentials {
            Credentials::Token { token, via } => {
                self.limiter.check_token(ip).map_err(ApiError::rate_limited)?;
                match self.lookup_token(&token, ip).await? {
                    Some((token, user)) => Ok(Caller::with_token(token, user, via)),
                    None => {
                        self.limiter.token_failure_everywhere(ip).await;
                        Err(ApiError::unauthorized("unknown or revoked token"))
                    }
                }
            }
            Credentials::UserToken { user: name, token } => {
                // A device token: password failures for this name do not hold it up.
                self.limiter.check_token(ip).map_err(ApiError::rate_limited)?;
                match self.lookup_token(&token, ip).await? {
                    Some((token, user)) if user.name == name => {
                        Ok(Caller::with_token(token, user, AuthMethod::BasicToken))
                    }
                    // Not a token of this user: it may still be the password.
                    _ => self.basic_password(&name, &token, ip).await,
                }
            }
            Credentials::Password { user, password } => self.basic_password(&user, &password, ip).await,
        }
    }

    /// The password in Basic: refused for accounts with a second factor,
    /// which Basic has no room for (they use device tokens).
    async fn basic_password(&self, name: &str, password: &str, ip: Option<IpAddr>) -> Result<Caller, ApiError> {
        let user = self.password_login(name, password, ip).await?;
        let (store, id) = (self.store.clone(), user.id);
        if blocking(move || second_factor_on(&*store, id)).await? {
            return Err(ApiError::unauthorized(
                "this account uses two-factor authentication, so its password alone does not sign in here; \
                 use a device token",
            ));
        }
        Ok(Caller::with_password(user, AuthMethod::BasicPassword, None))
    }

    /// Authenticates a device token that arrived outside the `Authorization`
    /// header: Overland's `?token=`, or a Traccar-style client whose device
    /// identifier is set to the token. `Ok(None)` for an unknown token (the
    /// failure still counts towards the back-off).
    ///
    /// # Errors
    /// 429 while rate limited, 503 when the store fails.
    pub async fn authenticate_token(&self, token: &str, ip: Option<IpAddr>) -> Result<Option<Caller>, ApiError> {
        self.limiter.check_token(ip).map_err(ApiError::rate_limited)?;
        match self.lookup_token(token, ip).await? {
            Some((token, user)) => Ok(Some(Caller::with_token(token, user, AuthMethod::Bearer))),
            None => {
                self.limiter.token_failure_everywhere(ip).await;
                Ok(None)
            }
        }
    }

    /// The token's owner, from the cache or the store. A token not in the
    /// cache may be a guess: the failures every node counted for the address
    /// are checked first (a known token costs no such query).
    async fn lookup_token(&self, token: &str, ip: Option<IpAddr>) -> Result<Option<(Token, User)>, ApiError> {
        let found = self.resolve_token(token, ip).await?;
        if let Some((token, user)) = &found {
            self.seen.token_used(&self.store, user.id, token.id, now(), ip);
        }
        Ok(found)
    }

    async fn resolve_token(&self, token: &str, ip: Option<IpAddr>) -> Result<Option<(Token, User)>, ApiError> {
        let hash = sha256(token.as_bytes());
        if let Some(found) = self.tokens.get(&hash) {
            return Ok(Some(found));
        }
        self.limiter.check_token_everywhere(ip).await.map_err(ApiError::rate_limited)?;
        let store = self.store.clone();
        let found = blocking(move || store.token_by_hash(&hash)).await?;
        if let Some((token, user)) = &found {
            self.tokens.insert(hash, token.clone(), user.clone());
        }
        Ok(found)
    }

    /// Forgets resolved tokens, so a revocation takes effect at once.
    pub fn forget_tokens(&self) {
        self.tokens.clear();
    }

    /// Checks a user name and password (rate limited, cached).
    ///
    /// # Errors
    /// 401 for a wrong name or password, 429 while rate limited, 503 when
    /// the store fails.
    pub async fn password_login(&self, name: &str, password: &str, ip: Option<IpAddr>) -> Result<User, ApiError> {
        let user = self.password_check(name, password, ip).await?;
        self.limiter.password_success_everywhere(ip, name).await;
        Ok(user)
    }

    /// [`Authenticator::password_login`] without clearing the failures on
    /// success: the login form does that only after the second factor, so
    /// someone who knows the password cannot guess codes without back-off.
    async fn password_check(&self, name: &str, password: &str, ip: Option<IpAddr>) -> Result<User, ApiError> {
        if !self.password_login {
            return Err(ApiError::forbidden(
                "password login is turned off here; sign in through the identity provider",
            ));
        }
        self.limiter.check_password_everywhere(ip, name).await.map_err(ApiError::rate_limited)?;
        let store = self.store.clone();
        let owned = name.to_owned();
        let user = blocking(move || store.user_by_name(&owned)).await?;
        let ok = match &user {
            Some(user) => self.verify(user, password).await?,
            None => {
                let dummy = self.dummy_hash().await?;
                let password = password.to_owned();
                tokio::task::spawn_blocking(move || verify_password(&password, &dummy)).await?;
                false
            }
        };
        match user {
            Some(user) if ok => Ok(user),
            _ => {
                self.limiter.password_failure_everywhere(ip, name).await;
                Err(ApiError::unauthorized("wrong user name or password"))
            }
        }
    }

    /// Re-checks the password of an authenticated user (changing the
    /// password); failures count like failed logins.
    ///
    /// # Errors
    /// 403 `forbidden` for a wrong password, 429 while rate limited.
    pub async fn confirm_password(&self, user: &User, password: &str, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.limiter.check_password_everywhere(ip, &user.name).await.map_err(ApiError::rate_limited)?;
        if self.verify(user, password).await? {
            return Ok(());
        }
        self.limiter.password_failure_everywhere(ip, &user.name).await;
        Err(ApiError::forbidden("the current password is wrong"))
    }

    async fn verify(&self, user: &User, password: &str) -> Result<bool, ApiError> {
        if self.verified.hit(user, password) {
            return Ok(true);
        }
        let (pw, phc) = (password.to_owned(), user.password_hash.clone());
        let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc)).await?;
        if ok {
            self.verified.insert(user, password);
        }
        Ok(ok)
    }

    async fn dummy_hash(&self) -> Result<String, ApiError> {
        if let Some(hash) = self.dummy_hash.get() {
            return Ok(hash.clone());
        }
        let hash = tokio::task::spawn_blocking(|| hash_password(&random_secret()))
            .await?
            .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(self.dummy_hash.get_or_init(|| hash).clone())
    }

    /// Logs a user in: checks the password, then the second factor when the
    /// account has one (`proof`: the app's code, a recovery code or a
    /// passkey), and stores a new session. A wrong code or passkey counts
    /// like a wrong password.
    ///
    /// # Errors
    /// As [`Authenticator::password_login`]; 401 `two_factor_required` without a
    /// proof for an account that needs one, 401 `unauthorized` for a wrong one.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        proof: Proof,
        ip: Option<IpAddr>,
    ) -> Result<(NewSession, SecondFactor), ApiError> {
        let user = self.password_check(name, password, ip).await?;
        let (store, id) = (self.store.clone(), user.id);
        let factor = if blocking(move || second_factor_on(&*store, id)).await? {
            match proof {
                Proof::None => return Err(ApiError::two_factor_required()),
                Proof::Code(code) => match self.second_factor(&user, &code, ip).await? {
                    totp::Checked::Totp => SecondFactor::Totp,
                    totp::Checked::Recovery(left) => SecondFactor::Recovery { left },
                    totp::Checked::Wrong => return Err(ApiError::unauthorized("wrong two-factor code")),
                },
                Proof::Passkey(assertion) => {
                    self.limiter.check_password_everywhere(ip, &user.name).await.map_err(ApiError::rate_limited)?;
                    let (store, usage) = (self.store.clone(), webauthn::Use::SecondFactor(user.id));
                    let checked = blocking(move || webauthn::authenticate(&*store, &assertion, usage, now())).await?;
                    if let Err(e) = checked {
                        self.limiter.password_failure_everywhere(ip, &user.name).await;
                        return Err(ApiError::unauthorized(format!("passkey: {e}")));
                    }
                    SecondFactor::Passkey
                }
            }
        } else {
            SecondFactor::None
        };
        self.limiter.password_success_everywhere(ip, name).await;
        Ok((self.start_session(user, ip, "password").await?, factor))
    }

    /// Signs in with a passkey alone (it must have verified the user): the
    /// new session and the passkey. Refused passkeys count towards the
    /// back-off of the client's address.
    ///
    /// # Errors
    /// 403 when password login is turned off (the identity provider signs
    /// people in), 401 with the reason for a refused passkey, 429 while rate
    /// limited, 503 when the store fails.
    pub async fn passkey_login(
        &self,
        assertion: webauthn::Assertion,
        ip: Option<IpAddr>,
    ) -> Result<(NewSession, webauthn::StoredPasskey), ApiError> {
        if !self.password_login {
            return Err(ApiError::forbidden(
                "passkey sign-in is turned off with password login here; sign in through the identity provider",
            ));
        }
        self.limiter.check_address_everywhere(ip).await.map_err(ApiError::rate_limited)?;
        let store = self.store.clone();
        let checked =
            blocking(move || match webauthn::authenticate(&*store, &assertion, webauthn::Use::Alone, now())? {
                Ok(passkey) => {
                    let user = store.user_by_id(passkey.user)?;
                    Ok(Ok((passkey, user)))
                }
                Err(e) => Ok(Err(e)),
            })
            .await?;
        match checked {
            Ok((passkey, Some(user))) => Ok((self.start_session(user, ip, "passkey").await?, passkey)),
            Ok((_, None)) => Err(ApiError::unauthorized("this passkey's account is gone")),
            Err(e) => {
                self.limiter.address_failure_everywhere(ip).await;
                Err(ApiError::unauthorized(format!("passkey: {e}")))
            }
        }
    }

    /// Checks `user`'s second factor, rate limited like passwords: a wrong
    /// code counts as a failed login of the user from `ip`.
    ///
    /// # Errors
    /// 429 while rate limited, 503 when the store fails.
    pub async fn second_factor(&self, user: &User, code: &str, ip: Option<IpAddr>) -> Result<totp::Checked, ApiError> {
        self.limiter.check_password_everywhere(ip, &user.name).await.map_err(ApiError::rate_limited)?;
        let (store, id, code) = (self.store.clone(), user.id, code.to_owned());
        let checked = blocking(move || totp::check(&*store, id, &code, now())).await?;
        if checked == totp::Checked::Wrong {
            self.limiter.password_failure_everywhere(ip, &user.name).await;
        }
        Ok(checked)
    }

    /// Stores a new session for `user`, who proved who they are from `ip`
    /// by `method` (`password`, `oidc`: shown on the sessions page).
    ///
    /// # Errors
    /// 503 when the store fails.
    pub async fn start_session(
        &self,
        user: User,
        ip: Option<IpAddr>,
        method: &'static str,
    ) -> Result<NewSession, ApiError> {
        let (cookie_value, csrf_token) = (random_secret(), random_secret());
        let hash = sha256(cookie_value.as_bytes());
        let expires = Timestamp(now().0.saturating_add(SESSION_TTL.as_millis() as i64));
        let (store, csrf, id) = (self.store.clone(), csrf_token.clone(), user.id);
        blocking(move || {
            store.delete_expired_sessions(now())?;
            store.create_session(&hash, id, &csrf, expires)?;
            seen::session_started(&*store, id, &hash, expires, now(), ip, method)
        })
        .await?;
        Ok(NewSession { user, cookie_value, csrf_token })
    }

    /// The `Set-Cookie` value for a new session, for `client`: `Secure` when
    /// it came over HTTPS (polo's own TLS, or a trusted proxy's
    /// `X-Forwarded-Proto: https`) or when secure cookies were asked for.
    #[must_use]
    pub fn session_set_cookie(&self, value: &str, client: &Client) -> HeaderValue {
        self.cookie(value, SESSION_TTL.as_secs(), client)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    #[must_use]
    pub fn session_clear_cookie(&self, client: &Client) -> HeaderValue {
        self.cookie("", 0, client)
    }

    fn cookie(&self, value: &str, max_age: u64, client: &Client) -> HeaderValue {
        self.set_cookie(SESSION_COOKIE, value, "/", max_age, client)
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` as for the
    /// session cookie. `value` must be base64url (secrets are) or empty.
    #[must_use]
    pub fn set_cookie(&self, name: &str, value: &str, path: &str, max_age: u64, client: &Client) -> HeaderValue {
        let secure = if self.secure_cookies || client.https { "; Secure" } else { "" };
        let text = format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={max_age}{secure}");
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("polo_session=; Max-Age=0"))
    }
}

/// The client's address (from `ConnectInfo`), for handlers that rate limit.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

async fn resolve(parts: &mut Parts, state: &AppState) -> Result<Option<Caller>, ApiError> {
    if let Some(caller) = parts.extensions.get::<Caller>() {
        return Ok(Some(caller.clone()));
    }
    let caller = state.auth.authenticate(parts).await?;
    if let Some(caller) = &caller {
        parts.extensions.insert(caller.clone());
    }
    Ok(caller)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    /// Device tokens are held to their scopes here, by the route that
    /// matched ([`scope::ROUTE_ACCESS`]).
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller =
            resolve(parts, state).await?.ok_or_else(|| ApiError::unauthorized("log in or send credentials"))?;
        if let Some(token) = caller.token {
            scope::check_route(parts, token.scopes)?;
        }
        Ok(caller)
    }
}

/// A [`Caller`] that may also give a device token in the URL (`?token=`):
/// browsers cannot set headers on a WebSocket or an `EventSource`, so the
/// streams take it there. Credentials in the headers win; the token is held
/// to its scopes on the matched route like any other (and the access log
/// never records query strings).
#[derive(Debug, Clone)]
pub struct StreamCaller(pub Caller);

impl FromRequestParts<AppState> for StreamCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(caller) = resolve(parts, state).await? {
            if let Some(token) = caller.token {
                scope::check_route(parts, token.scopes)?;
            }
            return Ok(Self(caller));
        }
        let url_token = parts.uri.query().and_then(|query| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .ok()?
                .into_iter()
                .find_map(|(name, value)| (name == "token").then_some(value))
        });
        let Some(token) = url_token else {
            return Err(ApiError::unauthorized("log in or send credentials (a device token may be given as ?token=)"));
        };
        let Some(caller) = state.auth.authenticate_token(&token, client_ip(parts)).await? else {
            return Err(ApiError::unauthorized("the token in ?token= is not a valid device token"));
        };
        if let Some(token) = caller.token {
            scope::check_route(parts, token.scopes)?;
        }
        parts.extensions.insert(caller.clone());
        Ok(Self(caller))
    }
}

impl FromRequestParts<AppState> for OptionalCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        resolve(parts, state).await.map(OptionalCaller)
    }
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    /// Outside the admin networks: 403 before credentials are looked at.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Client::of(&parts.extensions).require_admin_network()?;
        let caller = Caller::from_request_parts(parts, state).await?;
        if !caller.user.is_admin {
            return Err(ApiError::forbidden("this needs the admin role"));
        }
        let (store, id) = (state.store.clone(), caller.user.id);
        if blocking(move || Ok(totp::required_for_admins(&*store)? && !second_factor_on(&*store, id)?)).await? {
            return Err(ApiError::forbidden(
                "this instance requires administrators to use two-factor authentication: turn it on for your \
                 account first, or register a passkey (Account page, or POST /api/v1/me/2fa)",
            ));
        }
        Ok(AdminCaller(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Result<Credentials, ApiError> {
        parse_authorization(&HeaderValue::from_str(value).unwrap())
    }

    #[test]
    fn authorization_headers() {
        let (token, _) = new_token();
        assert_eq!(
            parse(&format!("Bearer {token}")).unwrap(),
            Credentials::Token { token: token.clone(), via: AuthMethod::Bearer }
        );
        // Overland's literal form and its base64 twin.
        for value in [format!("Basic {token}:"), format!("Basic {}", STANDARD.encode(format!("{token}:")))] {
            assert_eq!(
                parse(&value).unwrap(),
                Credentials::Token { token: token.clone(), via: AuthMethod::BasicToken }
            );
        }
        assert_eq!(
            parse(&format!("basic {}", STANDARD.encode("alice:pass:word"))).unwrap(),
            Credentials::Password { user: "alice".into(), password: "pass:word".into() }
        );
        assert_eq!(
            parse(&format!("Basic {}", STANDARD.encode(format!("alice:{token}")))).unwrap(),
            Credentials::UserToken { user: "alice".into(), token: token.clone() }
        );
        for bad in ["Basic", "Basic !!!", "Basic Og==", "Digest x", "Bearer ", "Basic bm9jb2xvbg==", "Basic alice:pw"] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, "unauthorized", "{bad}");
        }
    }

    #[test]
    fn cookies_and_methods() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("theme=dark; polo_session=abc"));
        assert_eq!(session_cookie(&headers), Some("abc"));
        headers.clear();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1"));
        headers.append(header::COOKIE, HeaderValue::from_static("polo_session=\"xyz\""));
        assert_eq!(session_cookie(&headers), Some("xyz"));
        headers.clear();
        headers.append(header::COOKIE, HeaderValue::from_static("polo_session="));
        assert_eq!(session_cookie(&headers), None);
        assert!(is_unsafe(&Method::POST) && is_unsafe(&Method::DELETE) && is_unsafe(&Method::PATCH));
        assert!(!is_unsafe(&Method::GET) && !is_unsafe(&Method::HEAD));
    }
}

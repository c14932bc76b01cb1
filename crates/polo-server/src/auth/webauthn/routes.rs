//! The passkey routes: registering, listing and removing the account's
//! passkeys, and signing in with one.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/me/passkeys` | caller, no token | `{passkeys: [...]}` |
//! | `POST /api/v1/me/passkeys/options` | caller, no token | the options for `navigator.credentials.create` |
//! | `POST /api/v1/me/passkeys` `{name, credential}` | caller, no token | the new passkey |
//! | `DELETE /api/v1/me/passkeys/{id}` | caller, no token | 204 |
//! | `POST /api/v1/session/passkey/options` | anyone | the options for `navigator.credentials.get` |
//! | `POST /api/v1/session/passkey` `{credential}` | anyone | a session, as `POST /api/v1/session` |
//!
//! The options are WebAuthn's own JSON forms
//! (`PublicKeyCredentialCreationOptionsJSON`, `…RequestOptionsJSON`), and
//! the credentials the forms of `PublicKeyCredential.toJSON()`, binary
//! values base64url, so a browser's answer is sent as it is. Sign-in asks
//! for no user name: passkeys are registered as discoverable credentials
//! and name their account themselves (the user handle). The second factor
//! after the password uses the same options and goes to
//! `POST /api/v1/session` as `passkey`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Assertion, Purpose, Registration, RelyingParty, StoredPasskey, WebAuthnError, verify};
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::client::Client;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, Forbidden, JsonBodyErrors, NotFound};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(creation_options))
        .routes(routes!(remove))
        .routes(routes!(request_options))
        .routes(routes!(login))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> polo_store::StoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// base64url as browsers write it: padded or not; unused bits of the last
/// character are ignored, so every string of the schema's shape (the
/// `pattern` of the binary members: no padding, not one character too many)
/// decodes.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

fn b64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    LENIENT.decode(text).map_err(|_| ApiError::bad_request(format!("{field}: expected base64url")))
}

/// The relying party of this request: the host it was sent to.
fn relying_party(headers: &HeaderMap, uri: &Uri, client: &Client) -> Result<RelyingParty, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(axum::http::uri::Authority::as_str))
        .unwrap_or("");
    RelyingParty::from_host(host, client.https).map_err(ApiError::bad_request)
}

/// How long the browser waits for the authenticator (ms).
const TIMEOUT_MS: u64 = 120_000;

/// A passkey of yours.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PasskeyView {
    /// The credential id (base64url): what `DELETE` takes.
    #[schema(example = "mVwq3Rr8mJk0mH2YgkSOPg")]
    id: String,
    /// The name you gave it.
    name: String,
    /// The COSE algorithm of its key: -7 ES256, -8 EdDSA, -257 RS256.
    algorithm: Option<i64>,
    /// It may be synced to your other devices (backup eligible).
    synced: bool,
    /// The authenticator model (AAGUID, hex; zeros when it does not say).
    aaguid: String,
    /// When it was registered (RFC 3339).
    created: String,
    /// Its last sign-in.
    last_used: Option<String>,
}

impl From<&StoredPasskey> for PasskeyView {
    fn from(p: &StoredPasskey) -> Self {
        Self {
            id: p.id.clone(),
            name: p.passkey.name.clone(),
            algorithm: p.algorithm(),
            synced: p.passkey.synced,
            aaguid: p.passkey.aaguid.clone(),
            created: polo_domain::Timestamp(p.passkey.created_ms).to_string(),
            last_used: p.passkey.last_used_ms.map(|ms| polo_domain::Timestamp(ms).to_string()),
        }
    }
}

/// Your passkeys.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PasskeysView {
    /// In id order.
    passkeys: Vec<PasskeyView>,
}

/// Your passkeys: registered, usable as the second factor or to sign in alone.
#[utoipa::path(
    get,
    path = "/api/v1/me/passkeys",
    tag = "account",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = PasskeysView), Forbidden, AuthErrors)
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<PasskeysView>, ApiError> {
    caller.require_password_grade()?;
    let (store, id) = (state.store.clone(), caller.user.id);
    let passkeys = blocking(move || super::list(&*store, id)).await?;
    Ok(Json(PasskeysView { passkeys: passkeys.iter().map(PasskeyView::from).collect() }))
}

/// `{type: "public-key", alg}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CredentialParameter {
    /// Always `public-key`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// A COSE algorithm.
    alg: i64,
}

/// `{type: "public-key", id}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CredentialDescriptor {
    /// Always `public-key`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The credential id, base64url.
    id: String,
}

/// The relying party: this server, by the host name you reached it at.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RpEntity {
    /// The host name.
    #[schema(example = "polo.example.org")]
    id: String,
    /// The instance's name.
    name: String,
}

/// The account the passkey is for.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserEntity {
    /// The user handle, base64url: the account's id.
    id: String,
    /// The user name.
    name: String,
    /// The user name, as authenticators show it.
    display_name: String,
}

/// What the authenticator should be.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AuthenticatorSelection {
    /// `required`: a discoverable credential, so sign-in needs no user name.
    resident_key: &'static str,
    /// `true`, the older spelling of the same.
    require_resident_key: bool,
    /// `preferred`.
    user_verification: &'static str,
}

/// `PublicKeyCredentialCreationOptionsJSON`: what `navigator.credentials.create({publicKey})` takes,
/// binary values base64url.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreationOptions {
    /// Single use; answer within `timeout` ms.
    challenge: String,
    rp: RpEntity,
    user: UserEntity,
    /// ES256, EdDSA, RS256.
    pub_key_cred_params: Vec<CredentialParameter>,
    /// Milliseconds.
    timeout: u64,
    /// Your passkeys already registered (an authenticator holding one makes no second).
    exclude_credentials: Vec<CredentialDescriptor>,
    authenticator_selection: AuthenticatorSelection,
    /// `none`: polo checks no attestation certificates.
    attestation: &'static str,
}

/// Starts registering a passkey: the options for `navigator.credentials.create`. The challenge is
/// for this account and this host name only.
#[utoipa::path(
    post,
    path = "/api/v1/me/passkeys/options",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    responses(
        (status = 200, body = CreationOptions),
        (status = 400, description = "`bad_request`: polo was reached by an IP address, which browsers refuse for \
            passkeys", body = crate::error::ErrorBody),
        Forbidden, CsrfFailed, AuthErrors
    )
)]
async fn creation_options(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<CreationOptions>, ApiError> {
    caller.require_password_grade()?;
    let rp = relying_party(&headers, &uri, &client)?;
    let (store, id, at) = (state.store.clone(), caller.user.id, rp.clone());
    let (challenge, existing) = blocking(move || {
        let challenge = super::start(&*store, Purpose::Register(id.0), &at, audit::now())?;
        Ok((challenge, super::list(&*store, id)?))
    })
    .await?;
    let (site, _, _) = crate::site::effective(&state).await?;
    let param = |alg| CredentialParameter { kind: "public-key", alg };
    Ok(Json(CreationOptions {
        challenge,
        rp: RpEntity { id: rp.id, name: site.instance_name },
        user: UserEntity {
            id: URL_SAFE_NO_PAD.encode(super::user_handle(caller.user.id)),
            name: caller.user.name.clone(),
            display_name: caller.user.name.clone(),
        },
        pub_key_cred_params: vec![param(verify::ES256), param(verify::EDDSA), param(verify::RS256)],
        timeout: TIMEOUT_MS,
        exclude_credentials: existing
            .into_iter()
            .map(|p| CredentialDescriptor { kind: "public-key", id: p.id })
            .collect(),
        authenticator_selection: AuthenticatorSelection {
            resident_key: "required",
            require_resident_key: true,
            user_verification: "preferred",
        },
        attestation: "none",
    }))
}

/// `AuthenticatorAttestationResponseJSON`'s members polo reads.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct AttestationResponse {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    client_data_json: String,
    /// base64url.
    #[serde(rename = "attestationObject")]
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    attestation_object: String,
}

/// `RegistrationResponseJSON` (`credential.toJSON()` after `create`); other members are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RegistrationCredential {
    response: AttestationResponse,
}

/// A new passkey.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RegisterBody {
    /// A name to tell it by: 1 to 64 printable characters.
    #[schema(example = "Phone")]
    name: String,
    credential: RegistrationCredential,
}

fn refused(e: &WebAuthnError) -> ApiError {
    match e {
        WebAuthnError::Registered => ApiError::conflict(e.to_string()),
        _ => ApiError::forbidden(format!("passkey: {e}")),
    }
}

/// Registers a passkey: the browser's answer to the challenge of `POST /api/v1/me/passkeys/options`.
/// From now on the password alone no longer signs in (the passkey or a TOTP code is asked too).
#[utoipa::path(
    post,
    path = "/api/v1/me/passkeys",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = RegisterBody,
    responses(
        (status = 201, body = PasskeyView),
        (status = 409, description = "`conflict`: this passkey is registered already", body = crate::error::ErrorBody),
        JsonBodyErrors, Forbidden, CsrfFailed, AuthErrors
    )
)]
async fn register(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    body: Result<Json<RegisterBody>, JsonRejection>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let Json(body) = body?;
    caller.require_password_grade()?;
    let name = body.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > super::MAX_NAME || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("name: 1 to 64 printable characters"));
    }
    let client_data = b64("credential.response.clientDataJSON", &body.credential.response.client_data_json)?;
    let object = b64("credential.response.attestationObject", &body.credential.response.attestation_object)?;
    let (store, id, label) = (state.store.clone(), caller.user.id, name.clone());
    let made = blocking(move || {
        let answer = Registration { client_data_json: &client_data, attestation_object: &object };
        super::register(&*store, id, &label, answer, audit::now())
    })
    .await?;
    let passkey = made.map_err(|e| refused(&e))?;
    let event = Event::new(&caller.user.name, "auth.passkey.register", Some(caller.user.id))
        .with("passkey", passkey.id.clone())
        .with("name", name);
    audit::record(&state.store, event, client.ip).await;
    Ok((StatusCode::CREATED, Json(PasskeyView::from(&passkey))))
}

/// Removes one of your passkeys.
#[utoipa::path(
    delete,
    path = "/api/v1/me/passkeys/{id}",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The passkey's id from `GET /api/v1/me/passkeys`")),
    responses((status = 204, description = "Removed"), BadRequest, NotFound, Forbidden, CsrfFailed, AuthErrors)
)]
async fn remove(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::bad_request("id: expected a passkey id"))?;
    caller.require_password_grade()?;
    let (store, user, key) = (state.store.clone(), caller.user.id, id.clone());
    let Some(removed) = blocking(move || super::remove(&*store, user, &key)).await? else {
        return Err(ApiError::not_found("no such passkey of yours"));
    };
    let event = Event::new(&caller.user.name, "auth.passkey.remove", Some(caller.user.id))
        .with("passkey", id)
        .with("name", removed.passkey.name);
    audit::record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}

/// `PublicKeyCredentialRequestOptionsJSON`: what `navigator.credentials.get({publicKey})` takes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestOptions {
    /// Single use; answer within `timeout` ms.
    challenge: String,
    /// The host name.
    rp_id: String,
    /// Milliseconds.
    timeout: u64,
    /// `required`, as signing in with the passkey alone needs; as the second factor after the
    /// password, presence is enough and the web app asks for `discouraged`.
    user_verification: &'static str,
    /// Empty: the passkey names its account.
    allow_credentials: Vec<CredentialDescriptor>,
}

/// Starts a sign-in with a passkey: the options for `navigator.credentials.get`, alone or as the
/// second factor after the password.
#[utoipa::path(
    post,
    path = "/api/v1/session/passkey/options",
    tag = "account",
    responses(
        (status = 200, body = RequestOptions),
        (status = 400, description = "`bad_request`: polo was reached by an IP address, which browsers refuse for \
            passkeys", body = crate::error::ErrorBody),
        (status = 503, description = "`unavailable`: temporary trouble; retry later", body = crate::error::ErrorBody),
    )
)]
async fn request_options(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<RequestOptions>, ApiError> {
    let rp = relying_party(&headers, &uri, &client)?;
    let (store, at) = (state.store.clone(), rp.clone());
    let challenge = blocking(move || super::start(&*store, Purpose::Login, &at, audit::now())).await?;
    Ok(Json(RequestOptions {
        challenge,
        rp_id: rp.id,
        timeout: TIMEOUT_MS,
        user_verification: "required",
        allow_credentials: Vec::new(),
    }))
}

/// `AuthenticatorAssertionResponseJSON`'s members polo reads.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct AssertionResponse {
    /// base64url.
    #[serde(rename = "clientDataJSON")]
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    client_data_json: String,
    /// base64url.
    #[serde(rename = "authenticatorData")]
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    authenticator_data: String,
    /// base64url.
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    signature: String,
    /// base64url; absent or null when the authenticator gave none.
    #[serde(rename = "userHandle", default)]
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    user_handle: Option<String>,
}

/// `AuthenticationResponseJSON` (`credential.toJSON()` after `get`); other members are ignored.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub(crate) struct AssertionBody {
    /// The credential id, base64url.
    #[schema(pattern = "^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2,3})?$")]
    id: String,
    response: AssertionResponse,
}

impl AssertionBody {
    /// The assertion, decoded.
    pub(crate) fn into_assertion(self) -> Result<Assertion, ApiError> {
        let r = self.response;
        Ok(Assertion {
            credential_id: self.id.trim_end_matches('=').to_owned(),
            client_data_json: b64("passkey.response.clientDataJSON", &r.client_data_json)?,
            authenticator_data: b64("passkey.response.authenticatorData", &r.authenticator_data)?,
            signature: b64("passkey.response.signature", &r.signature)?,
            user_handle: r.user_handle.map(|h| b64("passkey.response.userHandle", &h)).transpose()?,
        })
    }
}

/// A sign-in with a passkey alone.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PasskeyLoginBody {
    /// The browser's answer to the challenge of `POST /api/v1/session/passkey/options`.
    credential: AssertionBody,
}

/// Signs in with a passkey instead of the password: sets the `polo_session` cookie like
/// `POST /api/v1/session`. The passkey must have verified the user (PIN, fingerprint, face), which
/// makes it two factors: no TOTP code is asked. Refused with 403 when password login is turned off.
#[utoipa::path(
    post,
    path = "/api/v1/session/passkey",
    tag = "account",
    request_body = PasskeyLoginBody,
    responses(
        (status = 200, description = "Signed in", body = crate::account::LoginReply,
            headers(("Set-Cookie" = String, description = "`polo_session=…; HttpOnly; SameSite=Lax; Path=/`"))),
        JsonBodyErrors,
        (status = 403, description = "`forbidden`: password login (and so passkey sign-in) is turned off",
            body = crate::error::ErrorBody),
        AuthErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<PasskeyLoginBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let assertion = body.credential.into_assertion()?;
    let credential = assertion.credential_id.clone();
    let (session, passkey) = match state.auth.passkey_login(assertion, client.ip).await {
        Ok(done) => done,
        Err(e) => {
            if e.code == "unauthorized" {
                let event = Event::new("(passkey)", "auth.login_failed", None)
                    .with("method", "passkey")
                    .with("passkey", credential)
                    .with("reason", e.message.clone());
                audit::record(&state.store, event, client.ip).await;
            }
            return Err(e);
        }
    };
    let event = Event::new(&session.user.name, "auth.login", Some(session.user.id))
        .with("method", "passkey")
        .with("passkey", passkey.id);
    audit::record(&state.store, event, client.ip).await;
    crate::account::login_reply(&state, &client, session).await
}

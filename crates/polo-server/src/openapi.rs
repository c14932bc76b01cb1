//! The OpenAPI 3.1 document of the HTTP API, and the pages that show it.
//!
//! The document is generated from the code, not written beside it: each
//! handler carries a `#[utoipa::path]` annotation, its request and response
//! types derive `ToSchema`/`IntoParams`, and the routers are
//! `utoipa_axum::OpenApiRouter`s, which register a handler's route and its
//! operation in one step. A route therefore cannot be served without being
//! documented, and the end-to-end tests (schemathesis, the authorisation
//! matrix) walk the document to reach every route.
//!
//! `GET /api/openapi.json` serves the document and `/api/docs/` Swagger UI,
//! whose assets are compiled into the binary (the `utoipa-swagger-ui-vendored`
//! crate): the page works offline and under the front door's
//! `script-src 'self'` policy.

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::openapi::OpenApi as OpenApiDocument;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::AppState;
use crate::auth::SESSION_COOKIE;
use crate::error::{ApiError, ErrorBody, ErrorCode};

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";
/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/api/docs";

/// Security scheme: `Authorization: Bearer <device token>`.
pub const BEARER: &str = "bearer";
/// Security scheme: `Authorization: Basic` with the password or a device token.
pub const BASIC: &str = "basic";
/// Security scheme: the `polo_session` cookie from `POST /api/v1/session`.
pub const SESSION: &str = "session";
/// Security scheme: the session's CSRF token, required with [`SESSION`] on unsafe methods.
pub const CSRF: &str = "csrf";
/// Security scheme: a device token in the `token` query parameter (tracker apps without headers).
pub const TOKEN_PARAM: &str = "token_param";
/// Security scheme: a device token as the OsmAnd device identifier `id`.
pub const DEVICE_ID_TOKEN: &str = "device_id_token";

/// The document's root: what the handlers' annotations do not say.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "polo",
        description = "Self-hosted location history: live ingest from tracker apps, imports, and queries.\n\n\
            Everything under `/api` is scoped to the authenticated user: another user's devices, tokens, \
            points and import jobs are never visible and answer `404` like things that do not exist.\n\n\
            Every error is `{\"code\", \"message\"}` (`ErrorBody`) with a stable `code` (`ErrorCode`); \
            branch on the code, not on the message.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    paths(crate::metrics::metrics_handler),
    components(schemas(ErrorBody, ErrorCode)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "health", description = "Probes and metrics"),
        (name = "ingest", description = "Live ingest from tracker apps and scripts"),
        (name = "query", description = "Reading points, last locations and intervals back"),
        (name = "account", description = "Logging in, the caller's account, devices, tokens and users"),
        (name = "imports", description = "Uploading files to import in the background"),
        (name = "timeline", description = "Stays and legs computed from the points"),
        (name = "map", description = "Map levels of detail: track overviews of any range, heatmap and fog-of-war tiles"),
        (name = "replication", description = "The change feed and apply routes replication peers use, and the replications this server runs"),
        (name = "sharing", description = "Public share links, friends (location grants between users) and live positions"),
        (name = "web", description = "What the web app needs before login, and instance settings that change at runtime"),
        (name = "groups", description = "Groups (a family, a team): members, admins, invitation links; zones can belong to a group (docs/accounts.md#groups)"),
        (name = "zones", description = "Zones, the event log they fill, and webhooks that carry the events out (docs/zones.md)"),
        (name = "exposure", description = "Exposure checks: settings, the health authority's cases, proposals and audit log, each user's signed status, and verifying codes (docs/exposure.md)"),
        (name = "photos", description = "Your photo library: photos and videos by time and place, and their thumbnails (docs/photos.md)"),
    )
)]
pub(crate) struct ApiDoc;

/// Adds the security schemes the operations refer to.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApiDocument) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("polo device token")
            .description(Some(
                "A device token (`polo_…`), made with `POST /api/v1/devices/{id}/tokens` or `polo token create`. \
                 Without scopes it ingests as its device and reads that device's latest position; an operation \
                 that needs more lists the scope here and in `x-token-scope` (the same holds for a token in \
                 Basic, `?token=` or the OsmAnd `id`).",
            ))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
        let replication = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("polo replication token")
            .description(Some("A replication token, made with `polo replication-token create`: it reads the change feed and applies pages, and nothing else."))
            .build();
        components.add_security_scheme("replication", SecurityScheme::Http(replication));
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "The user name with the password or a device token. Overland's literal, unencoded \
             `Basic <token>:` is accepted too."
                .to_owned(),
        );
        components.add_security_scheme(BASIC, SecurityScheme::Http(basic));
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The web login from `POST /api/v1/session`. Unsafe methods also need `X-CSRF-Token`.",
            ))),
        );
        components.add_security_scheme(
            CSRF,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's `csrf_token`, required with the session cookie on POST and DELETE.",
            ))),
        );
        components.add_security_scheme(
            TOKEN_PARAM,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "token",
                "A device token in the URL, for tracker apps that cannot send headers.",
            ))),
        );
        components.add_security_scheme(
            DEVICE_ID_TOKEN,
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "id",
                "OsmAnd protocol only: a device token as the device identifier (Traccar Client has no \
                 other place for it).",
            ))),
        );
    }
}

/// The document for `paths` (the routers' operations) under [`ApiDoc`].
pub(crate) fn document(paths: OpenApiDocument) -> OpenApiDocument {
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    crate::auth::scope::document_scopes(&mut doc);
    doc
}

/// `GET /api/openapi.json` and Swagger UI under `/api/docs/`.
///
/// The document is served as the JSON it was serialized to once, here: its
/// structures hold about 5 MB of heap, which an idle server would otherwise
/// keep (and clone for every request) for a file of about 160 KB.
pub(crate) fn routes(document: OpenApiDocument) -> Router<AppState> {
    let json: Result<Bytes, String> = serde_json::to_vec(&document).map(Bytes::from).map_err(|e| e.to_string());
    drop(document);
    let serve_document = get(move || {
        let json = json.clone();
        async move {
            match json {
                Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
                Err(e) => {
                    ApiError::internal(format!("the OpenAPI document could not be serialized: {e}")).into_response()
                }
            }
        }
    });
    Router::from(SwaggerUi::new(DOCS_PATH).config(Config::new([OPENAPI_PATH]))).route(OPENAPI_PATH, serve_document)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    fn spec() -> Value {
        serde_json::to_value(crate::openapi()).unwrap()
    }

    fn operations(spec: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                out.push((method.to_uppercase(), path.clone(), operation.clone()));
            }
        }
        out
    }

    /// Routes anyone may call: the probes, metrics (guarded by network), logging in, the web app's
    /// configuration and public share links (guarded by their token).
    const PUBLIC: [&str; 16] = [
        "GET /healthz",
        "GET /api/v1/auth/oidc/login",
        "GET /api/v1/auth/oidc/callback",
        "GET /readyz",
        "GET /metrics",
        "POST /api/v1/session",
        "POST /api/v1/session/passkey/options",
        "POST /api/v1/session/passkey",
        "GET /api/v1/config",
        "GET /api/v1/public/shares/{token}",
        "GET /api/v1/public/shares/{token}/points",
        "GET /api/v1/public/shares/{token}/timeline",
        "GET /api/v1/public/shares/{token}/track",
        "GET /api/v1/public/shares/{token}/live",
        "GET /api/v1/exposure/public-key",
        "POST /api/v1/exposure/verify",
    ];

    #[test]
    fn every_operation_is_tagged_secured_and_answers_errors_in_the_shared_shape() {
        let spec = spec();
        assert_eq!(spec["openapi"], "3.1.0");
        let schemes = spec["components"]["securitySchemes"].as_object().unwrap();
        let ops = operations(&spec);
        assert!(ops.len() >= 27, "{} operations", ops.len());
        for (method, path, op) in &ops {
            let name = format!("{method} {path}");
            assert_eq!(op["tags"].as_array().map(Vec::len), Some(1), "{name}: one tag");
            assert!(op["summary"].is_string() || op["description"].is_string(), "{name}: documented");
            let security = op["security"].as_array();
            if PUBLIC.contains(&name.as_str()) {
                assert!(security.is_none(), "{name} is public");
            } else {
                let security = security.unwrap_or_else(|| panic!("{name} has no security"));
                for requirement in security {
                    for scheme in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(scheme), "{name}: unknown scheme {scheme}");
                    }
                }
                assert!(op["responses"]["401"].is_object(), "{name} documents 401");
                // The session cookie needs the CSRF header on unsafe methods.
                if method != "GET" {
                    for requirement in security {
                        let keys: Vec<&String> = requirement.as_object().unwrap().keys().collect();
                        assert!(!keys.contains(&&SESSION.to_owned()) || keys.contains(&&CSRF.to_owned()), "{name}");
                    }
                }
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                let error = status.starts_with('4') || status.starts_with('5');
                if error && !path.starts_with("/api/overland") && path != "/readyz" {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{name} {status}");
                }
            }
        }
    }

    #[test]
    fn the_error_codes_are_the_ones_the_server_uses() {
        let spec = spec();
        let listed: Vec<&str> = spec["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(Value::as_str)
            .collect();
        let all: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed.iter().collect::<std::collections::BTreeSet<_>>(), all.iter().collect());
        use crate::error::ApiError;
        let made = [
            ApiError::unauthorized(""),
            ApiError::two_factor_required(),
            ApiError::forbidden(""),
            ApiError::csrf_failed(),
            ApiError::not_found(""),
            ApiError::share_not_found(),
            ApiError::exposure_disabled(),
            ApiError::bad_request(""),
            ApiError::payload_too_large(""),
            ApiError::rate_limited(std::time::Duration::from_secs(1)),
            ApiError::conflict(""),
            ApiError::unavailable(""),
            ApiError::internal(""),
        ];
        for (error, code) in made.iter().zip(ErrorCode::ALL) {
            assert_eq!(error.code, code.as_str());
        }
    }

    async fn call(method: &str, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
        let store: std::sync::Arc<dyn polo_store::Store> =
            std::sync::Arc::new(polo_store_sqlite::SqliteStore::open_in_memory().unwrap());
        let router = crate::router(AppState::new(store).unwrap());
        let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn axum_s_own_errors_get_the_shared_shape() {
        let (status, headers, body) = call("PATCH", "/api/v1/devices").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "bad_request", "{body}");
        let allow = headers[header::ALLOW].to_str().unwrap();
        assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
        assert!(body["message"].as_str().unwrap().contains("Allow"), "{body}");
        let (status, _, body) = call("GET", "/api/no/such/route").await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
        let (status, _, body) = call("GET", "/api/openapi.json").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body["paths"]["/api/v1/points"]["get"].is_object() && body["paths"]["/api/v1/points"]["post"].is_object()
        );
    }
}

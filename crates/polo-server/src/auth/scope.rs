//! What a device token may call: one table, [`ROUTE_ACCESS`], for every
//! route of the API.
//!
//! A device token without scopes is a phone's credential: it ingests as its
//! device, reads its own latest position and gets the OwnTracks friends
//! reply. Everything else needs a [`TokenScope`] chosen when the token was
//! made (see `polo_store::scope`). Passwords and sessions are not limited
//! by scopes.
//!
//! Why a table and not a check in each handler: one place to read (and to
//! review) who may do what, the same place the OpenAPI document takes each
//! operation's `x-token-scope` from ([`crate::openapi`]), and a unit test
//! that fails when a documented route has no row. The [`Caller`] extractor
//! applies the row of the route that matched (axum's `MatchedPath`), so a
//! route without a row refuses every device token: it fails closed.
//!
//! [`Caller`]: super::Caller

use axum::extract::MatchedPath;
use axum::http::Method;
use axum::http::request::Parts;
use polo_store::{TokenScope, TokenScopes};

use crate::error::ApiError;

/// How far device tokens may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAccess {
    /// Anyone, no credentials needed (probes, logging in, public links, the
    /// web app's configuration).
    Public,
    /// Every device token, scopes or not: ingest as its device, its own
    /// latest position, the caller itself.
    Device,
    /// Device tokens with this scope.
    Scope(TokenScope),
    /// No device token, whatever its scopes: the password or a session only
    /// (changing the password, making users).
    NoToken,
    /// Replication tokens only (a role of their own); device tokens never.
    Replication,
}

impl TokenAccess {
    /// The name the OpenAPI document shows (`x-token-scope`): `public`,
    /// `device`, a scope's name, `none` or `replication`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Device => "device",
            Self::Scope(scope) => scope.name(),
            Self::NoToken => "none",
            Self::Replication => "replication",
        }
    }

    /// Whether a device token with `scopes` may call the route.
    #[must_use]
    pub fn admits(self, scopes: TokenScopes) -> bool {
        match self {
            Self::Public | Self::Device => true,
            Self::Scope(scope) => scopes.contains(scope),
            Self::NoToken | Self::Replication => false,
        }
    }
}

use TokenAccess::{Device, NoToken, Public, Replication, Scope};
use TokenScope::{Admin, Devices, Friends, Read, Share, Write};

/// Every route of the API (`METHOD`, path template as in the OpenAPI
/// document) and what a device token needs to call it.
pub const ROUTE_ACCESS: &[(&str, &str, TokenAccess)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/metrics", Public),
    ("GET", "/api/v1/config", Public),
    ("POST", "/api/v1/session", Public),
    ("GET", "/api/v1/auth/oidc/login", Public),
    ("GET", "/api/v1/auth/oidc/callback", Public),
    ("POST", "/api/v1/session/passkey/options", Public),
    ("POST", "/api/v1/session/passkey", Public),
    ("GET", "/api/v1/public/shares/{token}", Public),
    ("GET", "/api/v1/public/shares/{token}/points", Public),
    ("GET", "/api/v1/public/shares/{token}/timeline", Public),
    ("GET", "/api/v1/public/shares/{token}/track", Public),
    ("GET", "/api/v1/public/shares/{token}/live", Public),
    ("GET", "/api/v1/exposure/public-key", Public),
    ("POST", "/api/v1/exposure/verify", Public),
    // A phone's own business.
    ("POST", "/api/owntracks", Device),
    ("POST", "/api/overland", Device),
    ("GET", "/api/osmand", Device),
    ("POST", "/api/osmand", Device),
    ("POST", "/api/v1/points", Device),
    ("GET", "/api/v1/me", Device),
    // A phone shows its user's own status.
    ("GET", "/api/v1/exposure/status", Device),
    ("DELETE", "/api/v1/session", Device),
    // Without `read`, only the token's own device (the handler narrows it).
    ("GET", "/api/v1/locations/last", Device),
    // The history and everything computed from it.
    ("GET", "/api/v1/points", Scope(Read)),
    ("GET", "/api/v1/export", Scope(Read)),
    ("GET", "/api/v1/intervals", Scope(Read)),
    ("GET", "/api/v1/devices", Scope(Read)),
    ("GET", "/api/v1/tokens", Scope(Read)),
    ("GET", "/api/v1/timeline/day", Scope(Read)),
    ("GET", "/api/v1/timeline/entries", Scope(Read)),
    ("GET", "/api/v1/timeline/trips", Scope(Read)),
    ("GET", "/api/v1/timeline/settings", Scope(Read)),
    ("GET", "/api/v1/timeline/progress", Scope(Read)),
    ("GET", "/api/v1/retention", Scope(Read)),
    ("GET", "/api/v1/zones", Scope(Read)),
    ("GET", "/api/v1/zones/{id}", Scope(Read)),
    ("GET", "/api/v1/events", Scope(Read)),
    ("GET", "/api/v1/stream", Scope(Read)),
    ("GET", "/api/v1/webhooks", Scope(Read)),
    ("GET", "/api/v1/webhooks/{id}/deliveries", Scope(Read)),
    ("GET", "/api/v1/places", Scope(Read)),
    ("GET", "/api/v1/stats", Scope(Read)),
    ("GET", "/api/v1/map/overview", Scope(Read)),
    ("GET", "/api/v1/map/heatmap/{z}/{x}/{y}", Scope(Read)),
    ("GET", "/api/v1/map/fog/{z}/{x}/{y}", Scope(Read)),
    ("GET", "/api/v1/imports", Scope(Read)),
    ("GET", "/api/v1/imports/{id}", Scope(Read)),
    ("GET", "/api/v1/imports/{id}/rejects", Scope(Read)),
    ("GET", "/api/v1/live", Scope(Read)),
    ("GET", "/api/v1/together", Scope(Read)),
    ("GET", "/api/v1/together/{friend}", Scope(Read)),
    // Changing the data.
    ("POST", "/api/v1/imports", Scope(Write)),
    ("PUT", "/api/v1/timeline/legs/mode", Scope(Write)),
    ("PUT", "/api/v1/points/flag", Scope(Write)),
    ("POST", "/api/v1/points/delete", Scope(Write)),
    ("POST", "/api/v1/points/restore", Scope(Write)),
    ("PUT", "/api/v1/timeline/visits", Scope(Write)),
    ("PUT", "/api/v1/retention", Scope(Write)),
    ("POST", "/api/v1/zones", Scope(Write)),
    ("PUT", "/api/v1/zones/{id}", Scope(Write)),
    ("DELETE", "/api/v1/zones/{id}", Scope(Write)),
    // A webhook sends your events out of polo, as a share link shows your points.
    ("POST", "/api/v1/webhooks", Scope(Share)),
    ("DELETE", "/api/v1/webhooks/{id}", Scope(Share)),
    ("PATCH", "/api/v1/webhooks/{id}", Scope(Share)),
    ("PUT", "/api/v1/timeline/settings", Scope(Write)),
    ("PATCH", "/api/v1/places/{id}", Scope(Write)),
    ("POST", "/api/v1/places/{id}/merge", Scope(Write)),
    // Public links.
    ("GET", "/api/v1/shares", Scope(Share)),
    ("POST", "/api/v1/shares", Scope(Share)),
    ("DELETE", "/api/v1/shares/{id}", Scope(Share)),
    // Location grants.
    ("GET", "/api/v1/friends", Scope(Friends)),
    ("POST", "/api/v1/friends", Scope(Friends)),
    ("DELETE", "/api/v1/friends/{user}", Scope(Friends)),
    ("GET", "/api/v1/photos", Scope(Read)),
    ("GET", "/api/v1/photos/{id}/thumbnail", Scope(Read)),
    ("GET", "/api/v1/photos/proposals", Scope(Read)),
    // Applying a position writes a sidecar beside the original; undoing removes it.
    ("POST", "/api/v1/photos/proposals/apply", Scope(Write)),
    ("POST", "/api/v1/photos/proposals/undo", Scope(Write)),
    ("GET", "/api/v1/nearby", Scope(Friends)),
    ("PUT", "/api/v1/nearby", Scope(Friends)),
    // Groups: who is in them is about people, as location grants are.
    ("GET", "/api/v1/groups", Scope(Friends)),
    ("POST", "/api/v1/groups", Scope(Friends)),
    ("GET", "/api/v1/groups/{id}", Scope(Friends)),
    ("PUT", "/api/v1/groups/{id}", Scope(Friends)),
    ("DELETE", "/api/v1/groups/{id}", Scope(Friends)),
    ("PUT", "/api/v1/groups/{id}/members/{user}/admin", Scope(Friends)),
    ("DELETE", "/api/v1/groups/{id}/members/{user}/admin", Scope(Friends)),
    ("DELETE", "/api/v1/groups/{id}/members/{user}", Scope(Friends)),
    ("POST", "/api/v1/groups/{id}/leave", Scope(Friends)),
    ("GET", "/api/v1/groups/{id}/invitations", Scope(Friends)),
    ("POST", "/api/v1/groups/{id}/invitations", Scope(Friends)),
    ("DELETE", "/api/v1/groups/{id}/invitations/{invitation}", Scope(Friends)),
    // An invitation is opened by a person, logged in, never by a device.
    ("GET", "/api/v1/groups/join/{token}", NoToken),
    ("POST", "/api/v1/groups/join/{token}", NoToken),
    // Devices and their credentials.
    ("POST", "/api/v1/devices", Scope(Devices)),
    ("POST", "/api/v1/devices/{id}/tokens", Scope(Devices)),
    ("PUT", "/api/v1/devices/{id}/encryption-key", Scope(Devices)),
    ("PUT", "/api/v1/devices/{id}/label", Scope(Devices)),
    ("DELETE", "/api/v1/devices/{id}/encryption-key", Scope(Devices)),
    ("DELETE", "/api/v1/tokens/{id}", Scope(Devices)),
    // An administrator's.
    ("GET", "/api/v1/users", Scope(Admin)),
    ("GET", "/api/v1/admin/settings", Scope(Admin)),
    ("PUT", "/api/v1/admin/settings", Scope(Admin)),
    ("GET", "/api/v1/replication/tasks", Scope(Admin)),
    ("POST", "/api/v1/replication/tasks/{name}/{action}", Scope(Admin)),
    ("GET", "/api/v1/admin/exposure", Scope(Admin)),
    ("PUT", "/api/v1/admin/exposure", Scope(Admin)),
    ("POST", "/api/v1/users", NoToken),
    ("PUT", "/api/v1/users/{name}/role", NoToken),
    // The health authority's: other people's encounters, never with a device token.
    ("GET", "/api/v1/exposure/cases", NoToken),
    ("POST", "/api/v1/exposure/cases", NoToken),
    ("POST", "/api/v1/exposure/cases/{id}/withdraw", NoToken),
    ("GET", "/api/v1/exposure/cases/{id}/contacts", NoToken),
    ("GET", "/api/v1/exposure/proposals", NoToken),
    ("POST", "/api/v1/exposure/proposals/{case}/{user}/decision", NoToken),
    ("GET", "/api/v1/exposure/audit", NoToken),
    ("GET", "/api/v1/exposure/windows", NoToken),
    ("POST", "/api/v1/me/password", NoToken),
    // Sign-in settings are the account holder's, never a device's.
    ("GET", "/api/v1/me/oidc", NoToken),
    ("POST", "/api/v1/me/oidc", NoToken),
    ("DELETE", "/api/v1/me/oidc", NoToken),
    ("GET", "/api/v1/me/2fa", NoToken),
    ("POST", "/api/v1/me/2fa", NoToken),
    ("POST", "/api/v1/me/2fa/confirm", NoToken),
    ("POST", "/api/v1/me/2fa/disable", NoToken),
    ("GET", "/api/v1/me/passkeys", NoToken),
    ("POST", "/api/v1/me/passkeys", NoToken),
    ("POST", "/api/v1/me/passkeys/options", NoToken),
    ("DELETE", "/api/v1/me/passkeys/{id}", NoToken),
    ("GET", "/api/v1/me/sessions", NoToken),
    ("DELETE", "/api/v1/me/sessions/{id}", NoToken),
    ("GET", "/api/v1/admin/audit", Scope(Admin)),
    ("POST", "/api/v1/me/delete", NoToken),
    ("DELETE", "/api/v1/users/{name}", NoToken),
    ("GET", "/api/v1/replication/info", Replication),
    ("GET", "/api/v1/replication/changes", Replication),
    ("GET", "/api/v1/replication/checkpoint", Replication),
    ("POST", "/api/v1/replication/apply", Replication),
];

/// The row of `method` `path` (`HEAD` is `GET`'s), if there is one.
#[must_use]
pub fn route_access(method: &Method, path: &str) -> Option<TokenAccess> {
    let method = if *method == Method::HEAD { "GET" } else { method.as_str() };
    ROUTE_ACCESS.iter().find(|(m, p, _)| *m == method && *p == path).map(|(_, _, access)| *access)
}

/// Refuses a device token with `scopes` on the route `parts` matched,
/// unless its row admits it; a route without a row admits no token.
///
/// # Errors
/// 403 `forbidden` naming the scope the token lacks.
pub(super) fn check_route(parts: &Parts, scopes: TokenScopes) -> Result<(), ApiError> {
    let path = parts.extensions.get::<MatchedPath>().map(MatchedPath::as_str);
    let access = path.and_then(|path| route_access(&parts.method, path));
    match access {
        Some(access) if access.admits(scopes) => Ok(()),
        Some(Scope(scope)) => Err(missing_scope(scope)),
        _ => Err(ApiError::forbidden("a device token cannot do this; log in with the password")),
    }
}

/// The 403 for a token without `scope`.
#[must_use]
pub fn missing_scope(scope: TokenScope) -> ApiError {
    ApiError::forbidden(format!(
        "this device token lacks the {scope:?} scope; make a token with it (`polo token create --scope {scope}`) \
         or log in with the password",
        scope = scope.name()
    ))
}

/// The OpenAPI extension that states each operation's [`TokenAccess`].
pub const SCOPE_EXTENSION: &str = "x-token-scope";

/// States every operation's row in the document: the `x-token-scope`
/// extension (`public`, `device`, a scope, `none` or `replication`), a
/// sentence in the description, and the scope on the operation's `bearer`
/// security requirement, where OpenAPI 3.1 lists the roles a credential
/// needs. An operation without a row is stated as `none`, as it is served.
pub(crate) fn document_scopes(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::extensions::Extensions;
    for (path, item) in &mut doc.paths.paths {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation.as_mut() else { continue };
            let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
            let access = route_access(&method, path).unwrap_or(NoToken);
            let extensions = operation.extensions.get_or_insert_with(Extensions::default);
            extensions.insert(SCOPE_EXTENSION.to_owned(), serde_json::Value::from(access.name()));
            let sentence = match access {
                Public => "Device tokens: no credentials needed.".to_owned(),
                Device => "Device tokens: any token, scopes or not.".to_owned(),
                Scope(scope) => format!("Device tokens: needs the `{}` scope.", scope.name()),
                NoToken => "Device tokens: never; the password or a session only.".to_owned(),
                Replication => "Replication tokens only.".to_owned(),
            };
            operation.description = Some(match operation.description.take() {
                Some(text) if !text.is_empty() => format!("{text}\n\n{sentence}"),
                _ => sentence,
            });
            let Scope(scope) = access else { continue };
            for requirement in operation.security.iter_mut().flatten() {
                let names = serde_json::to_value(&*requirement).unwrap_or_default();
                if names.get(crate::openapi::BEARER).is_some() {
                    *requirement = requirement.clone().add(crate::openapi::BEARER, [scope.name()]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_documented_operation_has_exactly_one_row() {
        let spec = serde_json::to_value(crate::openapi()).unwrap();
        let mut documented = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        let rows: Vec<String> = ROUTE_ACCESS.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
        let table: BTreeSet<String> = rows.iter().cloned().collect();
        assert_eq!(rows.len(), table.len(), "a route has two rows");
        let missing: Vec<_> = documented.difference(&table).collect();
        let stale: Vec<_> = table.difference(&documented).collect();
        assert!(missing.is_empty(), "documented routes without a row in ROUTE_ACCESS: {missing:?}");
        assert!(stale.is_empty(), "rows for routes the document does not have: {stale:?}");
    }

    /// The document states each operation's row, and its bearer requirement names the scope.
    #[test]
    fn every_operation_in_the_document_declares_its_token_scope() {
        let spec = serde_json::to_value(crate::openapi()).unwrap();
        let mut seen = 0;
        for (path, item) in spec["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let name = format!("{} {path}", method.to_uppercase());
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let access = route_access(&method, path).unwrap_or_else(|| panic!("{name} has no row"));
                assert_eq!(operation[SCOPE_EXTENSION], access.name(), "{name}");
                let description = operation["description"].as_str().unwrap_or_default();
                assert!(description.contains("Device tokens:") || description.contains("Replication"), "{name}");
                let bearer: Vec<&serde_json::Value> = operation["security"]
                    .as_array()
                    .map(|all| all.iter().filter_map(|r| r.get(crate::openapi::BEARER)).collect())
                    .unwrap_or_default();
                match access {
                    Scope(scope) => {
                        assert!(!bearer.is_empty(), "{name}: tokens with the scope may call it, so it takes bearer");
                        for scopes in bearer {
                            assert_eq!(scopes, &serde_json::json!([scope.name()]), "{name}");
                        }
                    }
                    NoToken | Replication => assert!(bearer.is_empty(), "{name} takes no device token"),
                    Public | Device => assert!(bearer.iter().all(|s| s.as_array().is_some_and(Vec::is_empty))),
                }
                seen += 1;
            }
        }
        assert_eq!(seen, ROUTE_ACCESS.len());
    }

    #[test]
    fn a_token_without_scopes_is_its_device_only() {
        let none = TokenScopes::NONE;
        assert!(Device.admits(none) && Public.admits(none));
        assert!(!Scope(Read).admits(none) && Scope(Read).admits(none.with(Read)));
        assert!(!NoToken.admits(TokenScopes::all()) && !Replication.admits(TokenScopes::all()));
        assert_eq!(route_access(&Method::HEAD, "/api/v1/points"), Some(Scope(Read)));
        assert_eq!(route_access(&Method::POST, "/api/overland"), Some(Device));
        assert_eq!(route_access(&Method::GET, "/no/such/route"), None);
        assert!(missing_scope(Share).message.contains("--scope share"));
    }
}

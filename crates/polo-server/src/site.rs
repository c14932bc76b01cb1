//! What the web front end needs to know before anyone logs in, and the
//! instance settings an administrator may change while polo runs.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/config` | anyone | `{instance_name, tile_url, tile_attribution, version, registration, exposure}` |
//! | `GET /api/v1/admin/settings` | admin (inside `--admin-network`) | `{instance_name, tile_url, tile_attribution, together_max_distance_m, together_max_gap_s, overridden, defaults}` |
//! | `PUT /api/v1/admin/settings` | admin, no token | the same, after the change |
//!
//! The configuration (`polo serve --instance-name/--tile-url/--tile-attribution`,
//! `[web]` in `polo.toml`, `POLO_*` variables) gives [`SiteDefaults`]; a
//! setting an administrator changes at runtime is kept in the store and
//! wins over the configuration until it is reset (`null`). Only settings
//! that are safe to change without a restart are offered: names, the
//! map's basemap and the thresholds of "who was I with"
//! ([`crate::sharing::together::settings`], whose defaults are polo's, not
//! the configuration's), nothing that affects security or storage.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AdminCaller;
use crate::auth::totp::REQUIRE_ADMIN_SETTING as REQUIRE_ADMIN_2FA;
use crate::error::{AdminForbidden, ApiError, AuthErrors, JsonBodyErrors, json_object};
use crate::sharing::together::settings::{self as together, TogetherSettings};

/// The OpenStreetMap raster tiles.
pub const DEFAULT_TILE_URL: &str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
/// What OpenStreetMap's tile usage policy asks to show.
pub const DEFAULT_TILE_ATTRIBUTION: &str = "© OpenStreetMap contributors";
/// The name the web app shows when none is configured.
pub const DEFAULT_INSTANCE_NAME: &str = "polo";

const INSTANCE_NAME: &str = "instance_name";
const TILE_URL: &str = "tile_url";
const TILE_ATTRIBUTION: &str = "tile_attribution";

/// A setting that cannot be used, naming which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    /// The setting's name.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// The site settings: from the configuration, or the effective ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteDefaults {
    /// The instance's name, shown in the web app's title.
    #[schema(example = "polo")]
    pub instance_name: String,
    /// The basemap's raster tile URL template, with `{z}`, `{x}`, `{y}` (and optionally `{s}`, `{r}`).
    #[schema(example = "https://tile.openstreetmap.org/{z}/{x}/{y}.png")]
    pub tile_url: String,
    /// The attribution the basemap's licence asks for.
    #[schema(example = "© OpenStreetMap contributors")]
    pub tile_attribution: String,
}

impl Default for SiteDefaults {
    fn default() -> Self {
        Self {
            instance_name: DEFAULT_INSTANCE_NAME.to_owned(),
            tile_url: DEFAULT_TILE_URL.to_owned(),
            tile_attribution: DEFAULT_TILE_ATTRIBUTION.to_owned(),
        }
    }
}

impl SiteDefaults {
    /// Validated settings; `None` keeps the default of that setting.
    ///
    /// # Errors
    /// The first unusable value.
    pub fn new(
        instance_name: Option<&str>,
        tile_url: Option<&str>,
        tile_attribution: Option<&str>,
    ) -> Result<Self, SettingError> {
        let mut site = Self::default();
        if let Some(name) = instance_name {
            site.instance_name = validate(INSTANCE_NAME, name)?;
        }
        if let Some(url) = tile_url {
            site.tile_url = validate(TILE_URL, url)?;
        }
        if let Some(text) = tile_attribution {
            site.tile_attribution = validate(TILE_ATTRIBUTION, text)?;
        }
        Ok(site)
    }

    /// These settings with the store's runtime overrides applied.
    fn with_overrides(&self, overrides: &[(String, String)]) -> Self {
        let mut site = self.clone();
        for (key, value) in overrides {
            match key.as_str() {
                INSTANCE_NAME => site.instance_name.clone_from(value),
                TILE_URL => site.tile_url.clone_from(value),
                TILE_ATTRIBUTION => site.tile_attribution.clone_from(value),
                // Written by a newer polo: not ours to interpret.
                _ => {}
            }
        }
        site
    }
}

/// Checks one setting and returns it trimmed.
fn validate(setting: &'static str, value: &str) -> Result<String, SettingError> {
    let bad = |reason: String| SettingError { setting, reason };
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(bad("must not contain control characters".to_owned()));
    }
    match setting {
        INSTANCE_NAME if value.is_empty() || value.chars().count() > 64 => {
            Err(bad(format!("must be 1 to 64 characters, not {}", value.chars().count())))
        }
        TILE_ATTRIBUTION if value.chars().count() > 512 => Err(bad("must be at most 512 characters".to_owned())),
        TILE_URL => {
            if value.len() > 2048 {
                return Err(bad("must be at most 2048 bytes".to_owned()));
            }
            check_tile_origin(value).map_err(bad)?;
            for placeholder in ["{z}", "{x}", "{y}"] {
                if !value.contains(placeholder) {
                    return Err(bad(format!("must contain {placeholder} (e.g. {DEFAULT_TILE_URL})")));
                }
            }
            if value.contains(char::is_whitespace) || value.contains(['"', '<', '>', '\\']) {
                return Err(bad("must not contain spaces, quotes, angle brackets or backslashes".to_owned()));
            }
            Ok(value.to_owned())
        }
        _ => Ok(value.to_owned()),
    }
}

/// A tile URL is an absolute `http(s)://host/…` URL or a path on this
/// server (`/tiles/…`). A protocol-relative `//host/…` would be a path to
/// the eye but loads from any host, and a user name (`https://osm.org@evil/`)
/// hides the real host: both are refused.
fn check_tile_origin(value: &str) -> Result<(), String> {
    let example = DEFAULT_TILE_URL;
    if let Some(rest) = value.strip_prefix("https://").or_else(|| value.strip_prefix("http://")) {
        let host = rest.split('/').next().unwrap_or_default();
        let host_chars = |c: char| c.is_ascii_alphanumeric() || "-._:[]{}".contains(c);
        if host.is_empty() || !host.chars().all(host_chars) {
            return Err(format!(
                "must name a host (letters, digits, -, ., :, [], {{s}}) after the scheme, as in {example}, not {value:?}"
            ));
        }
        return Ok(());
    }
    if value.starts_with("//") {
        return Err(format!("must be an absolute http(s) URL such as {example}, not the protocol-relative {value:?}"));
    }
    if value.starts_with('/') {
        return Ok(());
    }
    Err(format!("must be an absolute http(s) URL such as {example} or a path on this server (/tiles/…), not {value:?}"))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(config)).routes(routes!(get_settings, put_settings))
}

pub(crate) async fn effective(state: &AppState) -> Result<(SiteDefaults, TogetherSettings, Vec<String>), ApiError> {
    let store = state.store.clone();
    let overrides = tokio::task::spawn_blocking(move || store.instance_settings()).await??;
    let known = [INSTANCE_NAME, TILE_URL, TILE_ATTRIBUTION];
    let mut overridden: Vec<String> =
        overrides.iter().map(|(k, _)| k.clone()).filter(|k| known.contains(&k.as_str())).collect();
    overridden.extend(TogetherSettings::overridden(&overrides));
    for key in [REQUIRE_ADMIN_2FA, crate::audit::RETENTION_SETTING] {
        if overrides.iter().any(|(k, _)| k == key) {
            overridden.push(key.to_owned());
        }
    }
    Ok((state.site.with_overrides(&overrides), TogetherSettings::from_instance(&overrides), overridden))
}

/// What the web app needs before anyone logs in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FrontEndConfig {
    #[serde(flatten)]
    site: SiteDefaults,
    /// polo's version.
    #[schema(example = "0.1.0")]
    version: &'static str,
    /// Whether visitors may create their own accounts (never: an administrator adds users).
    registration: bool,
    /// Whether an administrator turned the exposure checks on: the web app shows their pages only
    /// then.
    exposure: bool,
    /// The login page's button for the identity provider (`GET /api/v1/auth/oidc/login`), when
    /// OIDC is configured.
    #[schema(example = "Sign in with Keycloak")]
    oidc_login: Option<String>,
    /// Whether the login page shows the password form (false: OIDC only).
    password_login: bool,
}

/// The instance's name, the basemap, the version and whether exposure checks are on: what the web
/// app needs before anyone logs in.
#[utoipa::path(
    get,
    path = "/api/v1/config",
    tag = "web",
    responses(
        (status = 200, body = FrontEndConfig),
        (status = 503, description = "`unavailable`: the store is unavailable", body = crate::error::ErrorBody),
    )
)]
async fn config(State(state): State<AppState>) -> Result<Json<FrontEndConfig>, ApiError> {
    let store = state.store.clone();
    let stored = tokio::task::spawn_blocking(move || store.instance_settings()).await??;
    let site = state.site.with_overrides(&stored);
    // Settings an administrator could not have stored (they are checked on the way in) count as off.
    let exposure = polo_exposure::settings::Settings::from_instance(&stored).is_ok_and(|s| s.enabled);
    Ok(Json(FrontEndConfig {
        site,
        version: env!("CARGO_PKG_VERSION"),
        registration: false,
        exposure,
        oidc_login: state.oidc.as_ref().map(|o| o.settings.button_label.clone()),
        password_login: state.auth.password_login_enabled(),
    }))
}

/// The runtime settings, which win over the configuration.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingsView {
    #[serde(flatten)]
    effective: SiteDefaults,
    #[serde(flatten)]
    together: TogetherSettings,
    /// Administrators must have two-factor authentication: admin routes refuse them (403) until
    /// they turn it on.
    require_admin_2fa: bool,
    /// Days the security audit log is kept.
    audit_retention_days: u32,
    /// The settings changed at runtime (the others come from the configuration or polo's defaults).
    #[schema(example = json!(["instance_name"]))]
    overridden: Vec<String>,
    /// The values a reset (`null`) returns to: the configuration's, and polo's for the rest.
    defaults: SettingsDefaults,
}

/// What each runtime setting returns to when reset.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SettingsDefaults {
    #[serde(flatten)]
    site: SiteDefaults,
    #[serde(flatten)]
    together: TogetherSettings,
    /// Off.
    require_admin_2fa: bool,
    /// 365.
    audit_retention_days: u32,
}

/// `PUT /api/v1/admin/settings`'s body: only the members present change; `null` returns a setting
/// to the configuration's value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SettingsBody {
    /// 1 to 64 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "Family map", max_length = 64)]
    instance_name: Option<Option<String>>,
    /// An absolute http(s) URL template (or a path on this server, `/…`) with `{z}`, `{x}` and `{y}`;
    /// protocol-relative URLs (`//host/…`) are refused.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "https://tile.openstreetmap.org/{z}/{x}/{y}.png")]
    tile_url: Option<Option<String>>,
    /// At most 512 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, example = "© OpenStreetMap contributors", max_length = 512)]
    tile_attribution: Option<Option<String>>,
    /// "Who was I with": D in metres, 1 to 1000 (default 25).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>, example = 25.0, minimum = 1.0, maximum = 1000.0)]
    together_max_distance_m: Option<Option<f64>>,
    /// "Who was I with": T in whole seconds, 1 to 3600 (default 300).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, example = 300, minimum = 1, maximum = 3600)]
    together_max_gap_s: Option<Option<i64>>,
    /// Whether administrators must use two-factor authentication (default false).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>, example = true)]
    require_admin_2fa: Option<Option<bool>>,
    /// Days the security audit log is kept, 1 to 3650 (default 365).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u32>, example = 365, minimum = 1, maximum = 3650)]
    audit_retention_days: Option<Option<u32>>,
}

/// Tells a member given as `null` (`Some(None)`) from an absent one (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

async fn settings_view(state: &AppState) -> Result<Json<SettingsView>, ApiError> {
    let (effective, together, overridden) = effective(state).await?;
    let store = state.store.clone();
    let (require_admin_2fa, audit_retention_days) = tokio::task::spawn_blocking(move || {
        Ok::<_, polo_store::StoreError>((
            crate::auth::totp::required_for_admins(&*store)?,
            crate::audit::retention_days(&*store)?,
        ))
    })
    .await??;
    let defaults = SettingsDefaults {
        site: (*state.site).clone(),
        together: TogetherSettings::default(),
        require_admin_2fa: false,
        audit_retention_days: crate::audit::DEFAULT_RETENTION_DAYS,
    };
    Ok(Json(SettingsView { effective, together, require_admin_2fa, audit_retention_days, overridden, defaults }))
}

/// The instance settings that may change at runtime (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/settings",
    tag = "web",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = SettingsView), AdminForbidden, AuthErrors)
)]
async fn get_settings(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> Result<Json<SettingsView>, ApiError> {
    settings_view(&state).await
}

/// Changes instance settings at runtime (admins only, not with a device token); they win over the
/// configuration until reset with `null`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/settings",
    tag = "web",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = SettingsBody,
    responses((status = 200, body = SettingsView), JsonBodyErrors, AdminForbidden, AuthErrors)
)]
async fn put_settings(
    State(state): State<AppState>,
    client: crate::client::Client,
    AdminCaller(admin): AdminCaller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<SettingsView>, ApiError> {
    let body: SettingsBody = json_object(body)?;
    admin.require_password_grade()?;
    let mut changes: Vec<(&'static str, Option<String>)> = Vec::new();
    for (key, value) in
        [(INSTANCE_NAME, body.instance_name), (TILE_URL, body.tile_url), (TILE_ATTRIBUTION, body.tile_attribution)]
    {
        match value {
            None => {}
            Some(None) => changes.push((key, None)),
            Some(Some(text)) => {
                let clean = validate(key, &text).map_err(|e| ApiError::bad_request(e.to_string()))?;
                changes.push((key, Some(clean)));
            }
        }
    }
    let refused = |e: SettingError| ApiError::bad_request(e.to_string());
    match body.together_max_distance_m {
        None => {}
        Some(None) => changes.push((together::DISTANCE_KEY, None)),
        Some(Some(d)) => {
            changes.push((together::DISTANCE_KEY, Some(together::check_distance(d).map_err(refused)?.to_string())))
        }
    }
    match body.together_max_gap_s {
        None => {}
        Some(None) => changes.push((together::GAP_KEY, None)),
        Some(Some(t)) => changes.push((together::GAP_KEY, Some(together::check_gap(t).map_err(refused)?.to_string()))),
    }
    match body.require_admin_2fa {
        None => {}
        Some(None | Some(false)) => changes.push((REQUIRE_ADMIN_2FA, None)),
        Some(Some(true)) => changes.push((REQUIRE_ADMIN_2FA, Some("true".to_owned()))),
    }
    match body.audit_retention_days {
        None => {}
        Some(None) => changes.push((crate::audit::RETENTION_SETTING, None)),
        Some(Some(days)) if (1..=crate::audit::MAX_RETENTION_DAYS).contains(&days) => {
            changes.push((crate::audit::RETENTION_SETTING, Some(days.to_string())));
        }
        Some(Some(_)) => {
            return Err(ApiError::bad_request(format!(
                "audit_retention_days: must be 1 to {} days",
                crate::audit::MAX_RETENTION_DAYS
            )));
        }
    }
    let event = crate::audit::Event::new(&admin.user.name, "admin.settings.change", None)
        .with("settings", changes.iter().map(|(k, _)| *k).collect::<Vec<_>>());
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        for (key, value) in changes {
            store.set_instance_setting(key, value.as_deref())?;
        }
        Ok::<_, ApiError>(())
    })
    .await??;
    crate::audit::record(&state.store, event, client.ip).await;
    settings_view(&state).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_validated_with_the_setting_named() {
        let site = SiteDefaults::new(Some(" Family "), Some("https://t.example/{z}/{x}/{y}.png"), None).unwrap();
        assert_eq!(site.instance_name, "Family");
        assert_eq!(site.tile_attribution, DEFAULT_TILE_ATTRIBUTION);
        for (name, url, why) in [
            (Some(""), None, "instance_name: must be 1 to 64"),
            (None, Some("ftp://x/{z}/{x}/{y}"), "tile_url: must be an absolute http(s) URL"),
            (None, Some("//evil.example/{z}/{x}/{y}.png"), "tile_url: must be an absolute http(s) URL such as"),
            (None, Some("https:///evil.example/{z}/{x}/{y}.png"), "tile_url: must name a host"),
            (None, Some("https://tile.osm.org@evil.example/{z}/{x}/{y}.png"), "tile_url: must name a host"),
            (None, Some("https://x/{z}/{x}.png"), "tile_url: must contain {y}"),
            (None, Some("https://x/{z}/{x}/{y}\".png"), "tile_url: must not contain spaces, quotes"),
        ] {
            let e = SiteDefaults::new(name, url, None).unwrap_err();
            assert!(e.to_string().starts_with(why), "{e}");
        }
        assert!(SiteDefaults::new(None, Some("/tiles/{z}/{x}/{y}.png"), Some("")).is_ok(), "a path on this server");
        assert!(SiteDefaults::new(None, Some("https://{s}.tile.example:8443/{z}/{x}/{y}{r}.png"), None).is_ok());
        let e = SiteDefaults::new(None, Some("//evil.example/{z}/{x}/{y}.png"), None).unwrap_err();
        assert!(e.to_string().contains("protocol-relative"), "{e}");
    }

    #[test]
    fn overrides_win_and_unknown_keys_are_ignored() {
        let overrides =
            vec![("instance_name".to_owned(), "Ours".to_owned()), ("from_the_future".to_owned(), "x".to_owned())];
        let site = SiteDefaults::default().with_overrides(&overrides);
        assert_eq!((site.instance_name.as_str(), site.tile_url.as_str()), ("Ours", DEFAULT_TILE_URL));
    }
}

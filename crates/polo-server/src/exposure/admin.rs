//! The administrator's exposure routes: the settings (off until enabled)
//! and who holds the health-authority role.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use polo_exposure::settings::{self, Settings};
use polo_exposure::workflow;
use polo_store::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::authority::blocking;
use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::{AdminForbidden, ApiError, AuthErrors, JsonBodyErrors, NotFound};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings)).routes(routes!(set_role))
}

/// The exposure settings: effective values and the defaults a `null` returns to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ExposureSettingsView {
    /// By name: `enabled`, `max_distance_m`, `max_gap_s`, `window_hours`, `completion_delay_hours`,
    /// `min_minutes`, `min_encounters`, `auto_apply`, `status_validity_days`, `code_validity_hours`,
    /// `retention_days`.
    #[schema(value_type = Object)]
    settings: serde_json::Map<String, serde_json::Value>,
    /// The defaults.
    #[schema(value_type = Object)]
    defaults: serde_json::Map<String, serde_json::Value>,
}

fn settings_view(settings: &Settings) -> Json<ExposureSettingsView> {
    Json(ExposureSettingsView { settings: settings.to_json(), defaults: Settings::default().to_json() })
}

/// `PUT /api/v1/admin/exposure`'s body: any of the settings by name, `null` for the default. Written
/// by hand from `polo_exposure::settings::SETTINGS`, so the document states each setting's type and
/// bounds from the one place they are defined.
struct ExposureSettingsPatch;

impl utoipa::PartialSchema for ExposureSettingsPatch {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        let mut object = ObjectBuilder::new()
            .description(Some("The settings to change, by name; `null` returns one to its default"))
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)));
        for setting in settings::SETTINGS {
            let value = match setting.number_bounds() {
                None => ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::Boolean, Type::Null])),
                Some((min, max, whole)) => {
                    let kind = if whole { Type::Integer } else { Type::Number };
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([kind, Type::Null]))
                        .minimum(Some(min))
                        .maximum(Some(max))
                }
            };
            object = object.property(setting.name, value);
        }
        object.into()
    }
}

impl ToSchema for ExposureSettingsPatch {}

/// The exposure settings (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/admin/exposure",
    tag = "exposure",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = ExposureSettingsView), AdminForbidden, AuthErrors)
)]
async fn get_settings(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
) -> ApiResult<Json<ExposureSettingsView>> {
    let exposure = state.exposure.clone();
    let settings = blocking(move || Ok(exposure.reload()?)).await?;
    Ok(settings_view(&settings))
}

/// Changes exposure settings (admins only, not with a device token): a JSON object of the settings to
/// change, `null` returning one to its default. The feature is off until `{"enabled": true}`.
#[utoipa::path(
    put,
    path = "/api/v1/admin/exposure",
    tag = "exposure",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = ExposureSettingsPatch,
    responses((status = 200, body = ExposureSettingsView), JsonBodyErrors, AdminForbidden, AuthErrors)
)]
async fn put_settings(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> ApiResult<Json<ExposureSettingsView>> {
    let Json(body) = body?;
    admin.require_password_grade()?;
    let patch = body.as_object().ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
    let changes = settings::changes(patch)?;
    let (store, exposure) = (state.store.clone(), state.exposure.clone());
    let name = admin.user.name.clone();
    let settings = blocking(move || {
        for (key, value) in &changes {
            store.set_instance_setting(key, value.as_deref())?;
        }
        let detail = serde_json::Value::Object(patch_to_detail(&changes));
        store.write_records(&[workflow::audit(
            polo_store::clock::now(),
            &name,
            "exposure.settings.change",
            None,
            &detail,
        )])?;
        Ok(exposure.reload()?)
    })
    .await?;
    Ok(settings_view(&settings))
}

fn patch_to_detail(changes: &[(String, Option<String>)]) -> serde_json::Map<String, serde_json::Value> {
    changes
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(serde_json::Value::Null, serde_json::Value::String)))
        .collect()
}

/// `PUT /api/v1/users/{name}/role`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleBody {
    /// `health-authority`, or `null` for no role.
    #[schema(example = "health-authority")]
    role: Option<String>,
}

/// A user's role.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RoleView {
    /// The user.
    user: String,
    /// The role, or `null`.
    role: Option<&'static str>,
}

/// Gives a user the health-authority role, or takes it away (admins only, not with a device token).
#[utoipa::path(
    put,
    path = "/api/v1/users/{name}/role",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("name" = String, Path, description = "The user name")),
    request_body = RoleBody,
    responses((status = 200, body = RoleView), JsonBodyErrors, AdminForbidden, NotFound, AuthErrors)
)]
async fn set_role(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    name: Result<Path<String>, PathRejection>,
    body: Result<Json<RoleBody>, JsonRejection>,
) -> ApiResult<Json<RoleView>> {
    let Path(name) = name?;
    let Json(body) = body?;
    admin.require_password_grade()?;
    let role = body
        .role
        .as_deref()
        .map(|r| {
            Role::from_name(r).ok_or_else(|| {
                ApiError::bad_request(format!("unknown role {r:?}; the roles are health-authority (or null for none)"))
            })
        })
        .transpose()?;
    let store = state.store.clone();
    let actor = admin.user.name.clone();
    blocking(move || {
        let user =
            store.user_by_name(&name)?.ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))?;
        store.set_user_role(user.id, role)?;
        let detail = serde_json::json!({"user": name, "role": role.map(Role::name)});
        store.write_records(&[workflow::audit(
            polo_store::clock::now(),
            &actor,
            "role.set",
            Some(user.id.0),
            &detail,
        )])?;
        Ok(Json(RoleView { user: user.name, role: role.map(Role::name) }))
    })
    .await
}

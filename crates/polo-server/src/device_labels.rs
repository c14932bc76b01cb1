//! What people call their devices, beside the names points arrive under.
//!
//! A device's name is its key: OwnTracks topics, `?device=`, import hints
//! and replication all find a device by it, so renaming one would split its
//! history in two. A *label* is only what the web app shows: "Anna's Pixel"
//! for `google--602738541`. It comes from the user (`PUT
//! /api/v1/devices/{id}/label`) or from an import (Takeout `Settings.json`
//! names the phones behind `Records.json`'s device tags); an import never
//! replaces a label the user chose or one an earlier import set.
//!
//! Labels are store records (`polo_store::records`) keyed by user and
//! device *name*, so a label imported before the device's first point still
//! finds it. Like other records they are local to the instance and do not
//! replicate.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{Record, RecordQuery, RecordWrite, Store, StoreResult};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, CsrfFailed, Forbidden, JsonBodyErrors, NotFound};

/// The record kind.
const KIND: &str = "device.label";

/// Longest label, in characters (as long as a device name may be).
pub(crate) const MAX_LABEL_CHARS: usize = 64;

#[derive(Serialize, Deserialize)]
struct LabelBody {
    label: String,
}

/// Keys sort by user, then device name; a user's prefix ends in `/`, so
/// user 1's labels are not user 12's.
fn prefix(user: UserId) -> String {
    format!("{}/", user.0)
}

fn key(user: UserId, device_name: &str) -> String {
    format!("{}{device_name}", prefix(user))
}

/// Every label of `user`'s devices, by device name.
///
/// # Errors
/// Store failures.
pub fn labels(store: &dyn Store, user: UserId) -> StoreResult<HashMap<String, String>> {
    let records = store.records(&RecordQuery::kind(KIND).prefix(&prefix(user)).user(user))?;
    let user_prefix = prefix(user);
    Ok(records
        .into_iter()
        .filter_map(|record| {
            let name = record.key.strip_prefix(&user_prefix)?.to_owned();
            // A body that does not decode is a label nobody can show: skip it.
            let body: LabelBody = serde_json::from_str(&record.body).ok()?;
            Some((name, body.label))
        })
        .collect())
}

fn put(user: UserId, device_name: &str, label: &str, now: Timestamp) -> Record {
    let body = serde_json::to_string(&LabelBody { label: label.to_owned() }).unwrap_or_default();
    Record { kind: KIND.to_owned(), key: key(user, device_name), user: Some(user), at: now, body }
}

/// Sets (or, with `None`, clears) the label of `user`'s device `device_name`.
///
/// # Errors
/// Store failures.
pub fn set(store: &dyn Store, user: UserId, device_name: &str, label: Option<&str>, now: Timestamp) -> StoreResult<()> {
    let write = match label {
        Some(label) => RecordWrite::Put(put(user, device_name, label, now)),
        None => RecordWrite::Delete { kind: KIND.to_owned(), key: key(user, device_name) },
    };
    store.write_records(&[write])
}

/// Sets the label an import found, unless the device already has one.
///
/// # Errors
/// Store failures.
pub fn set_unless_labelled(
    store: &dyn Store,
    user: UserId,
    device_name: &str,
    label: &str,
    now: Timestamp,
) -> StoreResult<()> {
    store.write_records(&[RecordWrite::Insert(put(user, device_name, label, now))])
}

/// `label` trimmed, or `None` when empty; a 400 when too long or with control characters.
fn checked_label(label: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(label) = label.map(str::trim).filter(|l| !l.is_empty()) else {
        return Ok(None);
    };
    if label.chars().count() > MAX_LABEL_CHARS || label.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "label: at most {MAX_LABEL_CHARS} printable characters (got {})",
            label.chars().count()
        )));
    }
    Ok(Some(label.to_owned()))
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_label))
}

/// `PUT /api/v1/devices/{id}/label`'s body.
#[derive(Deserialize, ToSchema)]
pub(crate) struct DeviceLabelBody {
    /// What to call the device in the app ("Anna's Pixel"): at most 64 characters, no control
    /// characters, stored trimmed. Empty or `null` clears it, and the app shows the device's name.
    #[schema(example = "Anna's Pixel", max_length = 64, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    label: Option<String>,
}

/// A device's label after a change.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceLabelView {
    /// The device's id.
    id: i64,
    /// The device's name, which points keep arriving under.
    #[schema(example = "google--602738541")]
    name: String,
    /// The label; absent when cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Anna's Pixel")]
    label: Option<String>,
}

/// Names a device for the app without renaming it: points keep arriving under its name.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{id}/label",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The device's id")),
    request_body = DeviceLabelBody,
    responses((status = 200, body = DeviceLabelView), JsonBodyErrors, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
async fn put_label(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<DeviceLabelBody>, JsonRejection>,
) -> Result<Json<DeviceLabelView>, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    let label = checked_label(body.label.as_deref())?;
    let (store, user) = (state.store.clone(), caller.user.id);
    tokio::task::spawn_blocking(move || {
        let Some(device) = store.list_devices(user)?.into_iter().find(|d| d.id == DeviceId(id)) else {
            return Err(ApiError::not_found(format!("you have no device {id}")));
        };
        set(store.as_ref(), user, &device.name, label.as_deref(), crate::ingest::routes::now())?;
        Ok(Json(DeviceLabelView { id, name: device.name, label }))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_trimmed_cleared_when_empty_and_refused_when_unprintable() {
        assert_eq!(checked_label(Some("  Anna's Pixel ")).unwrap().as_deref(), Some("Anna's Pixel"));
        assert_eq!(checked_label(Some("   ")).unwrap(), None);
        assert_eq!(checked_label(None).unwrap(), None);
        assert!(checked_label(Some("a\u{7}b")).is_err());
        assert!(checked_label(Some(&"x".repeat(65))).is_err());
        assert!(checked_label(Some(&"x".repeat(64))).is_ok());
    }

    #[test]
    fn keys_keep_users_apart() {
        assert!(!key(UserId(12), "phone").starts_with(&prefix(UserId(1))));
        assert!(key(UserId(1), "phone").starts_with(&prefix(UserId(1))));
    }
}

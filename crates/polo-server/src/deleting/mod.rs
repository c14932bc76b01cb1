//! Deleting and correcting the history: points by range, day, device,
//! selection on the map or all of them (`POST /api/v1/points/delete`), undoing
//! such a delete for a while (`POST /api/v1/points/restore`), and editing or
//! deleting one visit of the timeline (`PUT /api/v1/timeline/visits`).
//!
//! A delete is a tombstone in the store: it replicates, and a re-import of
//! the same file leaves the deleted points out (`polo import
//! --restore-deleted` or `?restore_deleted=true` bring them back). The
//! derived timeline of the affected days is recomputed before the answer.
//! Undo keeps what a delete removed aside in the store for a while ([`undo`]),
//! not a soft delete.
//!
//! A whole account is deleted by its owner or an administrator
//! ([`account`]): that one has no undo.

mod account;
mod points;
pub mod undo;
mod visits;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(points::delete))
        .routes(routes!(points::restore))
        .routes(routes!(visits::edit))
        .routes(routes!(account::delete_me))
        .routes(routes!(account::delete_user))
}

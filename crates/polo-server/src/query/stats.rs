//! `GET /api/v1/stats`: distance, time per mode, countries, towns and
//! places per day, month or year, summed from the stored per-day rows.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use polo_derived::views::{self, Period, PeriodStats};
use polo_timeline::TransportMode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::derived::{blocking, parse_date, render_date};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest};

/// Query parameters of `GET /api/v1/stats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsParams {
    /// First local day, `YYYY-MM-DD`.
    #[param(example = "2024-01-01", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    from: String,
    /// Last local day (inclusive), `YYYY-MM-DD`.
    #[param(example = "2024-12-31", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    to: String,
    /// `day`, `month` (default) or `year`.
    #[param(example = "month")]
    period: Option<String>,
}

/// Per transport mode.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PerMode {
    /// Kilometres travelled.
    km: f64,
    /// Hours moving.
    hours: f64,
}

/// A place among the most visited.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TopPlace {
    /// The place's id.
    id: i64,
    /// Your name for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The name to show (as `Place.title`).
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    /// Days with a visit.
    days: u32,
}

/// The statistics of one period (only days with data).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PeriodView {
    /// First day of the period that had data or was asked for.
    #[schema(example = "2024-05-01")]
    from: String,
    /// Last day with data in the period.
    #[schema(example = "2024-05-31")]
    to: String,
    /// Days with data.
    days_tracked: u32,
    /// Kilometres travelled.
    distance_km: f64,
    /// Hours moving.
    moving_hours: f64,
    /// Hours staying.
    stationary_hours: f64,
    /// Per mode: `walk`, `cycle`, `road`, `rail`, `flight`, `unknown`.
    by_mode: BTreeMap<&'static str, PerMode>,
    /// Days per country (ISO 3166-1 alpha-2).
    days_per_country: BTreeMap<String, u32>,
    /// Towns visited.
    towns: Vec<String>,
    /// Places first visited in this period (ids).
    new_places: Vec<i64>,
    /// The most visited places, by days.
    top_places: Vec<TopPlace>,
}

/// The stats response.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Stats {
    /// `day`, `month` or `year`.
    period: &'static str,
    /// The periods with data, in order.
    periods: Vec<PeriodView>,
}

#[allow(clippy::cast_precision_loss)]
fn hours(ms: i64) -> f64 {
    ms as f64 / 3_600_000.0
}

fn view(stats: PeriodStats, book: &polo_derived::places::PlaceBook) -> PeriodView {
    let by_mode = TransportMode::ALL
        .into_iter()
        .map(|m| {
            (
                m.name(),
                PerMode { km: stats.distance_m_by_mode.get(m) / 1000.0, hours: hours(*stats.moving_ms_by_mode.get(m)) },
            )
        })
        .collect();
    let moving: i64 = TransportMode::ALL.iter().map(|&m| *stats.moving_ms_by_mode.get(m)).sum();
    PeriodView {
        from: render_date(stats.first_day),
        to: render_date(stats.last_day),
        days_tracked: stats.days_tracked,
        distance_km: stats.distance_m / 1000.0,
        moving_hours: hours(moving),
        stationary_hours: hours(stats.stationary_ms),
        by_mode,
        days_per_country: stats.days_per_country,
        towns: stats.towns.into_iter().collect(),
        new_places: stats.new_places,
        top_places: stats
            .top_places
            .into_iter()
            .map(|(id, days)| TopPlace { id, name: book.name(id).map(str::to_owned), title: book.title(id), days })
            .collect(),
    }
}

/// Statistics per day, month or year over a range of local days (at most 100 years).
#[utoipa::path(
    get,
    path = "/api/v1/stats",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(StatsParams),
    responses((status = 200, body = Stats), BadRequest, AuthErrors)
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Json<Stats>, ApiError> {
    let Query(params) = params?;
    let (first, last) = (parse_date("from", &params.from)?, parse_date("to", &params.to)?);
    if last < first {
        return Err(ApiError::bad_request("to must not be before from"));
    }
    let (period, name) = match params.period.as_deref().unwrap_or("month") {
        "day" => (Period::Day, "day"),
        "month" => (Period::Month, "month"),
        "year" => (Period::Year, "year"),
        other => return Err(ApiError::bad_request(format!("period must be day, month or year, not {other:?}"))),
    };
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let (periods, book) = views::stats(&*store, user, first, last, period)?;
        Ok(Json(Stats { period: name, periods: periods.into_iter().map(|p| view(p, &book)).collect() }))
    })
    .await
}

//! "Who was I with": the caller's encounters with friends, issue 18 item 5.
//!
//! | route | answers |
//! |---|---|
//! | `GET /api/v1/together?from=&to=` | per friend: encounters in the range and totals |
//! | `GET /api/v1/together/{friend}?from=&to=` | the same for one friend, and the latest encounter at any time |
//!
//! **Who counts.** An encounter with Anna is shown to you only while Anna
//! lets you see her location *and* you let her see yours: both grants of
//! `/api/v1/friends` exist at the time of the request. Grants have no expiry
//! or scope, so that is the whole rule; withdrawing either grant (or a
//! revoked token taking the grant it made) hides every encounter at once.
//! No one ever sees an encounter with someone who does not share with them,
//! and you never see two friends' encounters with each other.
//!
//! **What is computed.** The two users' points of the range (flagged fixes
//! left out, as every view leaves them out) go through the encounter engine
//! (`polo-encounters`) with the instance's thresholds ([`settings`]: by
//! default 25 m and 5 minutes, an administrator may change them): points of
//! the two within D metres and T of each other are a pair, and pairs within
//! T of each other fold into one encounter. Nothing is stored.
//!
//! **Bounded work.** A range may span at most 366 days (400 beyond); the
//! points become 16-byte samples and the join runs on the blocking pool.
//! The day view asks for its day's encounters with a second call
//! (`/together?from=<day from>&to=<day to>`) rather than carrying them, so the
//! day view itself stays a lookup of stored rows.

mod compute;
pub mod settings;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use polo_domain::{Timestamp, UserId};
use polo_encounters::{Encounter, Params};
use polo_store::{Store, User};
use polo_timeline::LocalDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::compute::{Context, Met};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, NotFound};
use crate::query::derived::{blocking, parse_date, parse_instant};

/// The longest range one request may cover.
const MAX_RANGE_MS: i64 = 366 * DAY_MS;
const DAY_MS: i64 = 86_400_000;

/// Query parameters of the `/api/v1/together` routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeParams {
    /// Start of the range, inclusive: an instant (RFC 3339) or a local day
    /// `YYYY-MM-DD` (its first instant, as the day view has it).
    #[param(example = "2024-01-01")]
    from: String,
    /// End of the range: an instant (RFC 3339, exclusive) or a local day
    /// `YYYY-MM-DD` (included). At most 366 days after `from`.
    #[param(example = "2024-12-31")]
    to: String,
}

/// One encounter. Times are RFC 3339 in UTC, each with the UTC offset that
/// gives your local time then.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TogetherEncounter {
    /// The first of the points that were near each other.
    #[schema(example = "2024-05-01T10:00:00Z")]
    first: String,
    /// Your UTC offset at `first`, minutes east.
    #[serde(skip_serializing_if = "Option::is_none")]
    utc_offset_minutes: Option<i16>,
    /// The last of the points that were near each other.
    #[schema(example = "2024-05-01T10:40:00Z")]
    last: String,
    /// Your UTC offset at `last`, minutes east.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_utc_offset_minutes: Option<i16>,
    /// `last − first` in whole minutes, rounded up, at least 1.
    minutes: u32,
    /// The closest the two of you were, metres.
    min_distance_m: f64,
    /// Pairs of points within the thresholds.
    pairs: u64,
    /// Where: your position when you were closest, latitude in degrees.
    lat: f64,
    /// Longitude in degrees.
    lon: f64,
    /// The name of your stay there, as the day view gives it, else "Near" the town.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Café Luitpold")]
    title: Option<String>,
}

impl From<Met> for TogetherEncounter {
    fn from(m: Met) -> Self {
        Self {
            first: m.first.to_string(),
            utc_offset_minutes: m.first_offset,
            last: m.last.to_string(),
            end_utc_offset_minutes: m.last_offset,
            minutes: m.minutes,
            min_distance_m: m.min_distance_m,
            pairs: m.pairs,
            lat: m.coord.lat(),
            lon: m.coord.lon(),
            title: m.title,
        }
    }
}

/// Your encounters with one friend in the range, and their totals.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FriendTogether {
    /// The friend's user name.
    #[schema(example = "anna")]
    user: String,
    /// Minutes together: the sum of the encounters' minutes.
    minutes: u64,
    /// How many encounters.
    count: usize,
    /// The end of the latest encounter in the range (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_met: Option<String>,
    /// Your UTC offset then, minutes east.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_met_utc_offset_minutes: Option<i16>,
    /// The encounters, oldest first.
    encounters: Vec<TogetherEncounter>,
}

impl FriendTogether {
    fn new(user: String, met: Vec<Met>) -> Self {
        let newest = met.iter().max_by_key(|m| m.last);
        Self {
            user,
            minutes: met.iter().map(|m| u64::from(m.minutes)).sum(),
            count: met.len(),
            last_met: newest.map(|m| m.last.to_string()),
            last_met_utc_offset_minutes: newest.and_then(|m| m.last_offset),
            encounters: met.into_iter().map(TogetherEncounter::from).collect(),
        }
    }
}

/// Your encounters with every friend who shares with you and with whom you share.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Together {
    /// Start of the range (UTC).
    from: String,
    /// End of the range, exclusive (UTC).
    to: String,
    /// D: the farthest two points may be apart, metres.
    max_distance_m: f64,
    /// T: the longest two points may be apart in time, seconds.
    max_gap_s: i64,
    /// Every such friend, by name, also those you did not meet.
    friends: Vec<FriendTogether>,
}

/// Your encounters with one friend.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TogetherWith {
    /// Start of the range (UTC).
    from: String,
    /// End of the range, exclusive (UTC).
    to: String,
    /// D, metres.
    max_distance_m: f64,
    /// T, seconds.
    max_gap_s: i64,
    /// The encounters in the range and their totals.
    friend: FriendTogether,
    /// Your latest encounter at any time, before or after the range too
    /// ("when did I last meet Anna"); `null` when you never met.
    latest: Option<TogetherEncounter>,
}

/// The instance's thresholds, as an administrator set them ([`settings`]).
fn params(store: &dyn Store) -> Result<Params, ApiError> {
    Ok(settings::TogetherSettings::from_instance(&store.instance_settings()?).params())
}

/// One end of a range: an instant, or a local day's first instant
/// (`end`: the next day's), as the day view has the day; with the day.
fn bound(
    store: &dyn Store,
    me: UserId,
    name: &str,
    text: &str,
    end: bool,
) -> Result<(Timestamp, Option<LocalDate>), ApiError> {
    let looks_like_day = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
    if !looks_like_day {
        return Ok((parse_instant(name, text)?, None));
    }
    let date = parse_date(name, text)?;
    let day = polo_derived::views::day(store, me, date, None)?;
    Ok((if end { day.to } else { day.from }, Some(date)))
}

/// `[from, to)` of the request: `to` after `from`, at most 366 days (as
/// days when both ends are days, so a change of UTC offset between them
/// does not count).
fn range(store: &dyn Store, me: UserId, params: &RangeParams) -> Result<(Timestamp, Timestamp), ApiError> {
    let (from, first) = bound(store, me, "from", params.from.trim(), false)?;
    let (to, last) = bound(store, me, "to", params.to.trim(), true)?;
    if to <= from {
        return Err(ApiError::bad_request("to must be after from"));
    }
    let too_long = match (first, last) {
        (Some(first), Some(last)) => last.0 - first.0 + 1 > MAX_RANGE_MS / DAY_MS,
        _ => to.0 - from.0 > MAX_RANGE_MS,
    };
    if too_long {
        return Err(ApiError::bad_request("the range from..to may span at most 366 days; ask for one year at a time"));
    }
    Ok((from, to))
}

fn context(state: &AppState) -> (std::sync::Arc<dyn Store>, std::sync::Arc<polo_derived::Engine>) {
    (state.store.clone(), state.timeline.engine().clone())
}

/// `me`'s encounters with `friend` in `[from, to)`, raw and as shown.
fn friend_encounters(
    ctx: &Context<'_>,
    me: UserId,
    mine: &[polo_encounters::Sample],
    friend: &User,
    (from, to): (Timestamp, Timestamp),
) -> Result<(Vec<Encounter>, FriendTogether), ApiError> {
    let found = compute::with_friend(ctx, mine, friend.id, from, to)?;
    let met = compute::describe(ctx, me, &found)?;
    Ok((found, FriendTogether::new(friend.name.clone(), met)))
}

/// Your encounters with every friend who shares their location with you and
/// with whom you share yours, in a range of at most 366 days: when, how long,
/// how close and where, and per friend the minutes together, the number of
/// encounters and when you last met. Computed from the points on request;
/// nothing is stored.
#[utoipa::path(
    get,
    path = "/api/v1/together",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(RangeParams),
    responses((status = 200, body = Together), BadRequest, AuthErrors)
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Together>, ApiError> {
    let Query(params) = params?;
    let (store, engine) = context(&state);
    let me = caller.user;
    blocking(move || {
        let (from, to) = range(&*store, me.id, &params)?;
        let ctx = Context {
            store: &*store,
            locator: engine.locator(),
            zones: engine.zones(),
            params: self::params(&*store)?,
        };
        let friends = compute::mutual_friends(&*store, &me)?;
        let mut mine = Vec::new();
        if !friends.is_empty() {
            compute::samples(&*store, me.id, from, to, &mut mine)?;
        }
        let mut out = Vec::with_capacity(friends.len());
        for friend in &friends {
            out.push(friend_encounters(&ctx, me.id, &mine, friend, (from, to))?.1);
        }
        Ok(Json(Together {
            from: from.to_string(),
            to: to.to_string(),
            max_distance_m: ctx.params.max_distance_m,
            max_gap_s: ctx.params.max_gap_ms / 1000,
            friends: out,
        }))
    })
    .await
}

/// Your encounters with one friend in a range of at most 366 days, with the
/// totals ("how much time did we spend together this year") and your latest
/// encounter at any time ("when did I last meet Anna"). 404 unless the
/// friend shares their location with you and you share yours with them.
#[utoipa::path(
    get,
    path = "/api/v1/together/{friend}",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("friend" = String, Path, description = "The friend's user name"), RangeParams),
    responses((status = 200, body = TogetherWith), BadRequest, NotFound, AuthErrors)
)]
pub(crate) async fn with(
    State(state): State<AppState>,
    caller: Caller,
    friend: Result<Path<String>, PathRejection>,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<TogetherWith>, ApiError> {
    let Path(name) = friend?;
    let Query(params) = params?;
    let (store, engine) = context(&state);
    let me = caller.user;
    blocking(move || {
        let (from, to) = range(&*store, me.id, &params)?;
        let ctx = Context {
            store: &*store,
            locator: engine.locator(),
            zones: engine.zones(),
            params: self::params(&*store)?,
        };
        // The same answer for a user who does not exist and one who is not a mutual friend.
        let friend = compute::mutual_friends(&*store, &me)?.into_iter().find(|f| f.name == name).ok_or_else(|| {
            ApiError::not_found(format!("{name:?} and you do not both share your location with each other"))
        })?;
        let mut mine = Vec::new();
        compute::samples(&*store, me.id, from, to, &mut mine)?;
        let (found, summary) = friend_encounters(&ctx, me.id, &mine, &friend, (from, to))?;
        drop(mine);
        let newest = found.iter().max_by_key(|e| e.last);
        let latest = match compute::latest(&ctx, me.id, friend.id, newest, to)? {
            Some(e) => compute::describe(&ctx, me.id, &[e])?.pop().map(TogetherEncounter::from),
            None => None,
        };
        Ok(Json(TogetherWith {
            from: from.to_string(),
            to: to.to_string(),
            max_distance_m: ctx.params.max_distance_m,
            max_gap_s: ctx.params.max_gap_ms / 1000,
            friend: summary,
            latest,
        }))
    })
    .await
}

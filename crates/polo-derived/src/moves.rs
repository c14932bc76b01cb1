//! Visit and trip events from the stored timeline: what a device's newest
//! stays and legs say just happened (`visit.start`, `visit.end`,
//! `trip.start`, `trip.end`).
//!
//! They are read from the rows the engine stored, not from inside the
//! engine, and they depend on those rows alone: no state of their own. So
//! deriving them again — after a crash, on another node, after the next
//! recomputation of the same window — gives the same events at the same
//! instants, which the server's event log keeps once by key (kind, device,
//! instant). The server decides which of them are new enough to be sent
//! (`polo-server::zones::moves`).
//!
//! The rules, over a device's stays by start:
//!
//! * A **visit** is a stay long enough to be one ([`StayRow::visit`], the
//!   user's `visit_min_duration_s`); shorter stops are part of a trip.
//! * `visit.start` at the visit's first fix, as soon as the timeline has it
//!   as a visit (the stay the points end in counts once it is long enough).
//! * `visit.end` at its end, once that end is decided: the first fix
//!   outside it (`end > last_seen`, which later points cannot change), or,
//!   for a visit a recording gap cut off, a later stay. The stay the points
//!   end in, or one only an excursion has left so far, has not ended.
//! * `trip.start` at the same instant as `visit.end`: the device set off.
//! * `trip.end` at the start of a visit that follows an ended visit, with
//!   the trip's length along its legs and its main mode, as the trips view
//!   has them.

use polo_domain::{Coord, DeviceId, UserId};
use polo_store::{DerivedScope, Store};
use polo_timeline::TransportMode;

use crate::DerivedResult;
use crate::kinds::{LEG, STAY};
use crate::rows::{LegRow, StayRow, decode};

/// How many of a device's newest stays are read: enough to reach back past
/// a trip's short stops to the visit it started from.
pub const STAYS_READ: usize = 32;
/// How many of its newest legs.
pub const LEGS_READ: usize = 128;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveKind {
    /// A visit ended (listed first of events at one instant).
    VisitEnd,
    /// A trip started where a visit ended.
    TripStart,
    /// A trip ended where a visit starts.
    TripEnd,
    /// A visit started.
    VisitStart,
}

impl MoveKind {
    /// The event log's name: `visit.start`, `visit.end`, `trip.start`, `trip.end`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::VisitStart => "visit.start",
            Self::VisitEnd => "visit.end",
            Self::TripStart => "trip.start",
            Self::TripEnd => "trip.end",
        }
    }
}

/// One visit or trip event.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    /// What.
    pub kind: MoveKind,
    /// When, ms since the epoch.
    pub at: i64,
    /// The visit's place (the visit ended or started; a trip's destination,
    /// or for `trip.start` its origin).
    pub place: Option<i64>,
    /// The visit's centroid.
    pub position: Coord,
    /// `visit.end`: when the visit started, ms.
    pub entered: Option<i64>,
    /// `trip.end`: when the trip started (the previous visit's end), ms.
    pub started: Option<i64>,
    /// `trip.end`: metres along the trip's legs.
    pub distance_m: Option<f64>,
    /// `trip.end`: the mode of the longest share of its distance.
    pub mode: Option<TransportMode>,
}

impl Move {
    fn at_visit(kind: MoveKind, at: i64, visit: &StayRow) -> Self {
        Self {
            kind,
            at,
            place: visit.place,
            position: visit.centroid(),
            entered: None,
            started: None,
            distance_m: None,
            mode: None,
        }
    }

    /// The event's facts as the event log shows them (`detail`), with place
    /// names from `title` (the name a place is shown with).
    #[must_use]
    pub fn detail(&self, title: &dyn Fn(i64) -> Option<String>) -> serde_json::Value {
        let (lat, lon) = (self.position.lat(), self.position.lon());
        let name = self.place.and_then(title);
        let mut detail = serde_json::Map::new();
        let (place_key, name_key) =
            if self.kind == MoveKind::TripStart { ("from_place", "from_place_name") } else { ("place", "place_name") };
        detail.insert(place_key.into(), self.place.into());
        detail.insert(name_key.into(), name.into());
        detail.insert("lat".into(), lat.into());
        detail.insert("lon".into(), lon.into());
        if let Some(entered) = self.entered {
            detail.insert("entered".into(), entered.into());
        }
        if let Some(started) = self.started {
            detail.insert("started".into(), started.into());
        }
        if let Some(distance) = self.distance_m {
            detail.insert("distance_m".into(), ((distance * 10.0).round() / 10.0).into());
        }
        if let Some(mode) = self.mode {
            detail.insert("mode".into(), mode.name().into());
        }
        serde_json::Value::Object(detail)
    }
}

/// Whether `stay`'s end is decided: the first fix outside it, or a later
/// stay after a recording gap cut it off.
fn ended(stay: &StayRow, stays: &[StayRow]) -> bool {
    stay.end > stay.last_seen || stays.iter().any(|s| s.start > stay.start && s.start >= stay.end)
}

/// The mode of the longest share of the legs' distance, as the trips view
/// has it (`polo_timeline::trip`).
fn main_mode(legs: &[&LegRow]) -> Option<TransportMode> {
    let mut by_mode: Vec<(TransportMode, f64)> = Vec::new();
    for leg in legs {
        match by_mode.iter_mut().find(|(mode, _)| *mode == leg.mode) {
            Some(share) => share.1 += leg.distance_m,
            None => by_mode.push((leg.mode, leg.distance_m)),
        }
    }
    by_mode.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)).map(|(mode, _)| mode)
}

/// The events `stays` and `legs` (one device's, each by start) show, in
/// time order (at one instant: a visit's end, the trip's start, a trip's
/// end, the next visit's start).
#[must_use]
pub fn derive(stays: &[StayRow], legs: &[LegRow]) -> Vec<Move> {
    let mut out = Vec::new();
    let visits: Vec<&StayRow> = stays.iter().filter(|s| s.visit).collect();
    for (i, visit) in visits.iter().enumerate() {
        out.push(Move::at_visit(MoveKind::VisitStart, visit.start, visit));
        if let Some(before) = i.checked_sub(1).map(|j| visits[j])
            && ended(before, stays)
        {
            let trip: Vec<&LegRow> =
                legs.iter().filter(|l| l.start >= before.last_seen && l.start < visit.start).collect();
            out.push(Move {
                started: Some(before.end),
                distance_m: Some(trip.iter().map(|l| l.distance_m).sum()),
                mode: main_mode(&trip),
                ..Move::at_visit(MoveKind::TripEnd, visit.start, visit)
            });
        }
        if ended(visit, stays) {
            out.push(Move { entered: Some(visit.start), ..Move::at_visit(MoveKind::VisitEnd, visit.end, visit) });
            out.push(Move::at_visit(MoveKind::TripStart, visit.end, visit));
        }
    }
    out.sort_by_key(|m| (m.at, m.kind));
    out
}

/// The events of `device`'s newest stored stays and legs ([`STAYS_READ`],
/// [`LEGS_READ`]).
///
/// # Errors
/// Store failures and damaged rows.
pub fn newest(store: &dyn Store, user: UserId, device: DeviceId) -> DerivedResult<Vec<Move>> {
    let scope = DerivedScope::Device(device);
    let mut stays: Vec<StayRow> =
        store.derived_before(user, STAY, scope, i64::MAX, STAYS_READ)?.iter().map(decode).collect::<Result<_, _>>()?;
    let mut legs: Vec<LegRow> =
        store.derived_before(user, LEG, scope, i64::MAX, LEGS_READ)?.iter().map(decode).collect::<Result<_, _>>()?;
    stays.reverse();
    legs.reverse();
    Ok(derive(&stays, &legs))
}

#[cfg(test)]
mod tests {
    use polo_timeline::LegSource;

    use super::*;

    const MIN: i64 = 60_000;

    /// A stay from minute `from` (last inside at `last`, ended at `end`).
    fn stay(from: i64, last: i64, end: i64, visit: bool, place: i64) -> StayRow {
        StayRow {
            start: from * MIN,
            end: end * MIN,
            last_seen: last * MIN,
            decided: None,
            lat_e7: 525_200_000,
            lon_e7: 134_050_000,
            points: 10,
            visit,
            place: Some(place),
            offset: None,
            offset_changes: Vec::new(),
        }
    }

    fn leg(from: i64, to: i64, distance_m: f64, mode: TransportMode) -> LegRow {
        LegRow {
            start: from * MIN,
            end: to * MIN,
            points: 5,
            distance_m,
            mean_mps: 1.0,
            median_mps: 1.0,
            p85_mps: 1.0,
            max_mps: 1.0,
            mode,
            source: LegSource::Tracked,
            offset: None,
            offset_changes: Vec::new(),
        }
    }

    fn kinds(moves: &[Move]) -> Vec<(&'static str, i64)> {
        moves.iter().map(|m| (m.kind.name(), m.at / MIN)).collect()
    }

    #[test]
    fn an_open_visit_has_started_and_not_ended() {
        // At home for 20 minutes and still there (the stay the points end in).
        let moves = derive(&[stay(0, 20, 20, true, 1)], &[]);
        assert_eq!(kinds(&moves), [("visit.start", 0)]);
        // Ten minutes is a stop, not a visit: nothing yet.
        assert!(derive(&[stay(0, 10, 10, false, 1)], &[]).is_empty());
    }

    #[test]
    fn a_visit_a_trip_and_the_next_visit() {
        // Home 0–30 (first fix outside at 31), a short stop 40–45, work from 60.
        let stays = [stay(0, 30, 31, true, 1), stay(40, 45, 46, false, 3), stay(60, 90, 90, true, 2)];
        let legs = [leg(30, 40, 2_000.0, TransportMode::Cycle), leg(45, 60, 3_500.0, TransportMode::Road)];
        let moves = derive(&stays, &legs);
        assert_eq!(
            kinds(&moves),
            [("visit.start", 0), ("visit.end", 31), ("trip.start", 31), ("trip.end", 60), ("visit.start", 60)]
        );
        assert_eq!(moves[1].entered, Some(0));
        let end = &moves[3];
        assert_eq!((end.started, end.distance_m, end.mode), (Some(31 * MIN), Some(5_500.0), Some(TransportMode::Road)));
        assert_eq!(end.place, Some(2));
        let detail = end.detail(&|p| (p == 2).then(|| "Work".to_owned()));
        assert_eq!(detail["place_name"], "Work");
        assert_eq!(detail["mode"], "road");
        assert_eq!(detail["distance_m"], 5_500.0);
        let start = moves[2].detail(&|_| None);
        assert_eq!((start["from_place"].as_i64(), start["from_place_name"].is_null()), (Some(1), true));
    }

    #[test]
    fn a_visit_an_excursion_has_left_so_far_or_a_gap_cut_off_ends_only_once_decided() {
        // Still ending at its last fix (an excursion fix after it is pending): not ended.
        let open = [stay(0, 30, 30, true, 1)];
        let legs = [leg(30, 32, 300.0, TransportMode::Walk)];
        assert_eq!(kinds(&derive(&open, &legs)), [("visit.start", 0)]);
        // Cut off by a gap, then a stay elsewhere: ended at its last fix.
        let cut = [stay(0, 30, 30, true, 1), stay(600, 620, 620, true, 2)];
        assert_eq!(
            kinds(&derive(&cut, &[])),
            [("visit.start", 0), ("visit.end", 30), ("trip.start", 30), ("trip.end", 600), ("visit.start", 600)]
        );
    }

    #[test]
    fn deriving_again_gives_the_same_events() {
        let stays = [stay(0, 30, 31, true, 1), stay(60, 90, 90, true, 2)];
        let legs = [leg(31, 60, 1_000.0, TransportMode::Walk)];
        assert_eq!(derive(&stays, &legs), derive(&stays, &legs));
    }
}

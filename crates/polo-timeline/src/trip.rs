//! Trips: everything between two visits, after trackintel's `generate_trips`.
//!
//! Stays and legs, ordered by start, alternate along a track. A stay that
//! lasted longer than the visit threshold is a *visit* (trackintel: an
//! activity); the legs and the shorter stays (waiting for a bus, a red
//! light, buying a coffee to go) between two visits form one trip. A trip is
//! also split where one element ends more than the gap threshold before the
//! next begins (nobody knows what happened in the hole), and a group without
//! any leg is no trip. The visit before a trip is its origin and the visit
//! after it its destination, unless a gap separates them.

use std::ops::Range;

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::StayParams;
use crate::leg::Leg;
use crate::mode::TransportMode;
use crate::stay::Stay;

/// Movement from one visit to the next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trip {
    /// Start of its first element.
    pub start: Timestamp,
    /// End of its last element.
    pub end: Timestamp,
    /// Its legs, as indices into the legs passed to [`group_trips`].
    pub legs: Range<usize>,
    /// The stops within it (stays too short to be visits), as indices into the stays.
    pub stops: Range<usize>,
    /// The visit it left from, an index into the stays; `None` after a gap.
    pub origin: Option<usize>,
    /// The visit it arrived at; `None` before a gap or at the end of the track.
    pub destination: Option<usize>,
    /// Total length of its legs. Metres.
    pub distance_m: f64,
    /// The mode of the longest share of its distance.
    pub main_mode: TransportMode,
}

#[derive(Clone, Copy)]
enum Element {
    Stay(usize),
    Leg(usize),
}

/// Groups a track's stays and legs (as detected, each sorted by time) into trips.
#[must_use]
pub fn group_trips(stays: &[Stay], legs: &[Leg], params: &StayParams) -> Vec<Trip> {
    let elements = merge_by_start(stays, legs);
    let span = |element: Element| match element {
        Element::Stay(i) => (stays[i].start, stays[i].end),
        Element::Leg(i) => (legs[i].start, legs[i].end),
    };
    let is_visit = |element: Element| matches!(element, Element::Stay(i) if stays[i].is_visit(params));
    let gap_between = |a: Element, b: Element| span(b).0.0 - span(a).1.0 > params.gap_threshold_ms();

    let mut trips = Vec::new();
    let mut index = 0;
    while index < elements.len() {
        if is_visit(elements[index]) {
            index += 1;
            continue;
        }
        let first = index;
        index += 1;
        while index < elements.len() && !is_visit(elements[index]) && !gap_between(elements[index - 1], elements[index])
        {
            index += 1;
        }
        let members = &elements[first..index];
        let before = first.checked_sub(1).map(|i| elements[i]);
        let after = elements.get(index).copied();
        let origin = before.filter(|&b| is_visit(b) && !gap_between(b, members[0]));
        let destination = after.filter(|&a| is_visit(a) && !gap_between(members[members.len() - 1], a));
        trips.extend(build_trip(members, stays, legs, origin, destination, span));
    }
    trips
}

fn merge_by_start(stays: &[Stay], legs: &[Leg]) -> Vec<Element> {
    let mut elements = Vec::with_capacity(stays.len() + legs.len());
    let (mut s, mut l) = (0, 0);
    while s < stays.len() || l < legs.len() {
        let take_stay = match (stays.get(s), legs.get(l)) {
            (Some(stay), Some(leg)) => stay.start <= leg.start,
            (Some(_), None) => true,
            _ => false,
        };
        if take_stay {
            elements.push(Element::Stay(s));
            s += 1;
        } else {
            elements.push(Element::Leg(l));
            l += 1;
        }
    }
    elements
}

fn stay_index(element: Element) -> Option<usize> {
    match element {
        Element::Stay(i) => Some(i),
        Element::Leg(_) => None,
    }
}

fn build_trip(
    members: &[Element],
    stays: &[Stay],
    legs: &[Leg],
    origin: Option<Element>,
    destination: Option<Element>,
    span: impl Fn(Element) -> (Timestamp, Timestamp),
) -> Option<Trip> {
    let leg_indices: Vec<usize> =
        members.iter().filter_map(|m| if let Element::Leg(i) = m { Some(*i) } else { None }).collect();
    let (&first_leg, &last_leg) = (leg_indices.first()?, leg_indices.last()?);
    let stop_indices: Vec<usize> = members.iter().copied().filter_map(stay_index).collect();
    let stops = match (stop_indices.first(), stop_indices.last()) {
        (Some(&a), Some(&b)) => a..b + 1,
        _ => {
            // An empty range placed where the stops would be.
            let at = stays.partition_point(|s| s.start < legs[first_leg].start);
            at..at
        }
    };
    let mut by_mode = [0.0; TransportMode::ALL.len()];
    for &i in &leg_indices {
        if let Some(slot) = TransportMode::ALL.iter().position(|m| *m == legs[i].mode) {
            by_mode[slot] += legs[i].distance_m;
        }
    }
    let main_mode = TransportMode::ALL
        .into_iter()
        .zip(by_mode)
        .fold(
            (TransportMode::Unknown, -1.0),
            |best, (mode, metres)| if metres > best.1 { (mode, metres) } else { best },
        )
        .0;
    Some(Trip {
        start: members.iter().map(|&m| span(m).0).min()?,
        end: members.iter().map(|&m| span(m).1).max()?,
        legs: first_leg..last_leg + 1,
        stops,
        origin: origin.and_then(stay_index),
        destination: destination.and_then(stay_index),
        distance_m: leg_indices.iter().map(|&i| legs[i].distance_m).sum(),
        main_mode,
    })
}

#[cfg(test)]
mod tests {
    use polo_domain::Coord;

    use super::*;
    use crate::leg::LegSource;
    use crate::mode::SpeedProfile;

    const MINUTE: i64 = 60_000;

    fn stay(start_min: i64, end_min: i64) -> Stay {
        Stay {
            start: Timestamp(start_min * MINUTE),
            end: Timestamp(end_min * MINUTE),
            last_seen: Timestamp(end_min * MINUTE - 1),
            decided_at: Timestamp(end_min * MINUTE),
            centroid: Coord { lat_e7: 1, lon_e7: 1 },
            points: 0..1,
            point_count: 1,
        }
    }

    fn leg(start_min: i64, end_min: i64, mode: TransportMode, metres: f64) -> Leg {
        Leg {
            start: Timestamp(start_min * MINUTE),
            end: Timestamp(end_min * MINUTE),
            points: 0..2,
            point_count: 2,
            distance_m: metres,
            speed: SpeedProfile::default(),
            mode,
            source: LegSource::Tracked,
        }
    }

    #[test]
    fn legs_and_stops_between_visits_form_one_trip() {
        // home (visit) → walk → wait 6 min (stop) → bus → office (visit)
        let stays = [stay(0, 60), stay(70, 76), stay(100, 600)];
        let legs = [leg(60, 69, TransportMode::Walk, 600.0), leg(76, 99, TransportMode::Road, 9_000.0)];
        let trips = group_trips(&stays, &legs, &StayParams::default());
        assert_eq!(trips.len(), 1);
        let trip = &trips[0];
        assert_eq!((trip.start, trip.end), (Timestamp(60 * MINUTE), Timestamp(99 * MINUTE)));
        assert_eq!((trip.legs.clone(), trip.stops.clone()), (0..2, 1..2));
        assert_eq!((trip.origin, trip.destination), (Some(0), Some(2)));
        assert_eq!(trip.distance_m, 9_600.0);
        assert_eq!(trip.main_mode, TransportMode::Road);
    }

    #[test]
    fn a_gap_splits_a_trip_and_hides_origin_and_destination() {
        let stays = [stay(0, 60), stay(200, 600)];
        // A 30-minute hole between the two legs, and 31 minutes before the office.
        let legs = [leg(60, 70, TransportMode::Walk, 500.0), leg(100, 169, TransportMode::Road, 30_000.0)];
        let trips = group_trips(&stays, &legs, &StayParams::default());
        let ends: Vec<_> = trips.iter().map(|t| (t.legs.clone(), t.origin, t.destination)).collect();
        assert_eq!(ends, [(0..1, Some(0), None), (1..2, None, None)]);
    }

    #[test]
    fn stops_alone_are_no_trip() {
        let stays = [stay(0, 60), stay(60, 66), stay(66, 200)];
        assert!(group_trips(&stays, &[], &StayParams::default()).is_empty());
        assert!(group_trips(&[], &[], &StayParams::default()).is_empty());
    }

    #[test]
    fn consecutive_visits_end_and_start_trips() {
        let stays = [stay(0, 60), stay(70, 100), stay(110, 200)];
        let legs = [leg(60, 69, TransportMode::Walk, 100.0), leg(100, 109, TransportMode::Cycle, 2_000.0)];
        let trips = group_trips(&stays, &legs, &StayParams::default());
        let ends: Vec<_> = trips.iter().map(|t| (t.origin, t.destination)).collect();
        assert_eq!(ends, [(Some(0), Some(1)), (Some(1), Some(2))]);
        assert_eq!(trips[0].stops, 1..1);
    }
}

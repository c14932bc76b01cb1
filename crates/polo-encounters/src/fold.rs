//! Folding point pairs into encounters.
//!
//! A user pair's point pairs, taken in time order, belong to one encounter as
//! long as each starts at most T after the latest point seen so far in that
//! encounter; a longer silence starts a new one. (Single linkage with gap T
//! over the pairs' time spans, each span running from the earlier to the later
//! of its two points.) The result does not depend on the order pairs were
//! found in, so every thread count gives the same encounters: the pairs are
//! sorted completely (ties on time broken by distance and position) first.

use polo_domain::Timestamp;

use crate::sinks::Span;
use crate::{Encounter, PointPair};

/// Folds point pairs (of any users, in any order) into encounters, sorted by
/// `(user_a, user_b, first)`. Pairs whose `a.user > b.user` are folded as if
/// they were the other way round.
#[must_use]
pub fn fold_encounters(pairs: &[PointPair], max_gap_ms: i64) -> Vec<Encounter> {
    let spans = pairs
        .iter()
        .map(|p| {
            let (a, b) = if p.a.user < p.b.user { (p.a, p.b) } else { (p.b, p.a) };
            Span {
                user_a: a.user,
                user_b: b.user,
                start: a.at.0.min(b.at.0),
                end: a.at.0.max(b.at.0),
                distance_m: p.distance_m,
                place: a.coord,
            }
        })
        .collect();
    fold(spans, max_gap_ms)
}

/// Folds spans into encounters.
pub(crate) fn fold(mut spans: Vec<Span>, max_gap_ms: i64) -> Vec<Encounter> {
    // Distances are never negative, so their bits sort as they do.
    spans.sort_unstable_by_key(|s| {
        (s.user_a, s.user_b, s.start, s.end, s.distance_m.to_bits(), s.place.lat_e7, s.place.lon_e7)
    });
    let mut out: Vec<Encounter> = Vec::new();
    let mut open: Option<Encounter> = None;
    for span in spans {
        if let Some(e) = open.as_mut() {
            let same = e.user_a == span.user_a && e.user_b == span.user_b;
            if same && span.start.saturating_sub(e.last.0) <= max_gap_ms {
                e.last = Timestamp(e.last.0.max(span.end));
                if span.distance_m < e.min_distance_m {
                    e.min_distance_m = span.distance_m;
                    e.place = span.place;
                }
                e.pairs += 1;
                continue;
            }
            out.push(close(*e));
        }
        open = Some(Encounter {
            user_a: span.user_a,
            user_b: span.user_b,
            first: Timestamp(span.start),
            last: Timestamp(span.end),
            min_distance_m: span.distance_m,
            place: span.place,
            pairs: 1,
            minutes: 0,
        });
    }
    out.extend(open.map(close));
    out
}

/// Sets the exposure minutes: `last − first` rounded up to whole minutes, at least one.
fn close(mut e: Encounter) -> Encounter {
    e.minutes = minutes(e.first, e.last);
    e
}

/// `last − first` in whole minutes, rounded up, at least 1 (saturating).
#[must_use]
pub(crate) fn minutes(first: Timestamp, last: Timestamp) -> u32 {
    let ms = last.0.saturating_sub(first.0).max(0).unsigned_abs();
    u32::try_from(ms.div_ceil(60_000)).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use polo_domain::{Coord, UserId};

    fn order(e: &Encounter) -> (UserId, UserId, Timestamp, Timestamp) {
        (e.user_a, e.user_b, e.first, e.last)
    }

    fn span(a: i64, b: i64, start: i64, end: i64, d: f64) -> Span {
        #[allow(clippy::cast_possible_truncation)]
        let place = Coord { lat_e7: (d * 1e6) as i32, lon_e7: 1 };
        Span { user_a: UserId(a), user_b: UserId(b), start, end, distance_m: d, place }
    }

    #[test]
    fn pairs_within_t_merge_and_a_silence_splits() {
        let t = 300_000;
        let spans = vec![
            span(1, 2, 0, 60_000, 10.0),
            span(1, 2, 360_000, 400_000, 4.0), // 300 s after the last point: same encounter
            span(1, 2, 1_000_000, 1_000_000, 20.0), // 600 s later: a new one
            span(1, 3, 0, 0, 7.0),
        ];
        let got = fold(spans, t);
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].first, got[0].last, got[0].pairs, got[0].min_distance_m),
            (Timestamp(0), Timestamp(400_000), 2, 4.0)
        );
        assert_eq!(got[0].minutes, 7); // 400 s → 6.67 min, rounded up
        assert_eq!((got[1].first, got[1].pairs, got[1].minutes), (Timestamp(1_000_000), 1, 1));
        assert_eq!((got[2].user_a, got[2].user_b, got[2].minutes), (UserId(1), UserId(3), 1));
        assert!(got.windows(2).all(|w| order(&w[0]) < order(&w[1])));
    }

    #[test]
    fn minutes_round_up_with_a_floor_of_one() {
        assert_eq!(minutes(Timestamp(0), Timestamp(0)), 1);
        assert_eq!(minutes(Timestamp(0), Timestamp(60_000)), 1);
        assert_eq!(minutes(Timestamp(0), Timestamp(60_001)), 2);
        assert_eq!(minutes(Timestamp(i64::MIN), Timestamp(i64::MAX)), u32::MAX);
    }
}

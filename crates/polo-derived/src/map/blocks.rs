//! How one level's track of a day is cut into stored blocks, and put back
//! together.
//!
//! A day's track was one row per level. A phone posting every second keeps
//! nearly all of a day's 86 400 fixes at level 0, so that row grew to
//! hundreds of kilobytes, and every live step (every few seconds) decoded,
//! re-encoded and wrote it whole: the step's cost, and the bytes it wrote
//! to disk, grew with the day. Now a level's track is a run of
//! [`TrackBlock`]s of at most [`BLOCK_POINTS`] points, keyed
//! [`block_key`]`(day, index)`, and a live step rewrites only the last
//! block (plus a new one when that fills up).
//!
//! A segment longer than a block's room goes on in the next block, which
//! then starts with the previous block's last point again
//! ([`TrackBlock::continues`]): each block can be drawn or clipped to a
//! view on its own, and [`join`] (or an overview reading many days) sews
//! the pieces back into the day's segments.

use std::ops::Range;

use super::track::{MapPoint, TrackBlock};

/// The most points a block holds (the repeated first point of a
/// continuing block included): about 8 KiB of encoded track, a day of a
/// phone sampling every minute, a quarter of an hour at 1 Hz.
pub const BLOCK_POINTS: usize = 1_024;

/// Blocks a day's key range has room for. A day of more than
/// `BLOCKS_PER_DAY × BLOCK_POINTS` (four million) kept points at one level
/// grows its last block instead.
pub const BLOCKS_PER_DAY: i64 = 4_096;

/// The key of block `index` of UTC day `day`: the blocks of a day are
/// adjacent and in order, and the days are in order.
#[must_use]
pub fn block_key(day: i64, index: i64) -> i64 {
    day.saturating_mul(BLOCKS_PER_DAY).saturating_add(index)
}

/// The UTC day of a block's key.
#[must_use]
pub fn key_day(key: i64) -> i64 {
    key.div_euclid(BLOCKS_PER_DAY)
}

/// The keys of every block of the days in `days`.
#[must_use]
pub fn day_keys(days: Range<i64>) -> Range<i64> {
    block_key(days.start, 0)..block_key(days.end, 0)
}

/// Cuts a level's segments into blocks of at most [`BLOCK_POINTS`] points.
/// `continues`: the first segment goes on from a block before these (and
/// already starts with its last point). At most `max_blocks` (at least one)
/// are made; the last one takes whatever is left. No segments, no blocks.
#[must_use]
pub fn split(segments: Vec<Vec<MapPoint>>, continues: bool, max_blocks: usize) -> Vec<TrackBlock> {
    let mut blocks = Vec::new();
    let mut block = TrackBlock { continues, segments: Vec::new() };
    let mut size = 0;
    for segment in segments {
        let mut rest = segment;
        loop {
            let room = BLOCK_POINTS - size;
            if rest.len() <= room || blocks.len() + 1 >= max_blocks.max(1) {
                size += rest.len();
                block.segments.push(rest);
                break;
            }
            if room < 2 {
                // Too little room to draw a line: the segment starts in the next block.
                blocks.push(std::mem::take(&mut block));
                size = 0;
                continue;
            }
            // Fill the block; the next one goes on from its last point.
            let carried = rest.split_off(room);
            let last = rest[room - 1];
            block.segments.push(rest);
            blocks.push(std::mem::replace(&mut block, TrackBlock { continues: true, segments: Vec::new() }));
            size = 0;
            rest = Vec::with_capacity(carried.len() + 1);
            rest.push(last);
            rest.extend(carried);
        }
    }
    if !block.segments.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// The day's segments of a level from its blocks, in order: a continuing
/// block's first segment is sewn onto the segment before it.
#[must_use]
pub fn join(blocks: impl IntoIterator<Item = TrackBlock>) -> Vec<Vec<MapPoint>> {
    let mut segments: Vec<Vec<MapPoint>> = Vec::new();
    for block in blocks {
        let mut pieces = block.segments.into_iter().peekable();
        if block.continues
            && let (Some(previous), Some(first)) = (segments.last_mut(), pieces.peek())
            && previous.last() == first.first()
        {
            previous.extend(pieces.next().into_iter().flatten().skip(1));
        }
        segments.extend(pieces);
    }
    segments
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Timestamp};

    use super::*;

    fn line(from: i64, n: usize) -> Vec<MapPoint> {
        (0..n as i64)
            .map(|i| MapPoint {
                time: Timestamp((from + i) * 1_000),
                coord: Coord::from_degrees(50.0 + (from + i) as f64 * 1e-5, 8.0).unwrap(),
            })
            .collect()
    }

    #[test]
    fn keys_keep_days_and_blocks_in_order() {
        assert_eq!(key_day(block_key(19_000, 0)), 19_000);
        assert_eq!(key_day(block_key(19_000, BLOCKS_PER_DAY - 1)), 19_000);
        assert_eq!(key_day(block_key(-3, 5)), -3, "days before 1970 too");
        assert!(block_key(-1, BLOCKS_PER_DAY - 1) < block_key(0, 0));
        assert_eq!(day_keys(10..12), block_key(10, 0)..block_key(12, 0));
        assert!(day_keys(10..12).contains(&block_key(11, BLOCKS_PER_DAY - 1)));
        // The ends of time do not overflow.
        assert!(block_key(i64::MIN / 1_000, 0) < block_key(i64::MAX / 1_000, 0));
    }

    #[test]
    fn segments_split_into_bounded_blocks_and_join_back_exactly() {
        let segments = vec![line(0, 10), line(100, 2_500), line(5_000, 1), line(6_000, BLOCK_POINTS)];
        let blocks = split(segments.clone(), false, usize::MAX);
        assert!(
            blocks.iter().all(|b| b.stored_points() <= BLOCK_POINTS),
            "{:?}",
            blocks.iter().map(TrackBlock::stored_points).collect::<Vec<_>>()
        );
        assert!(!blocks[0].continues);
        assert!(blocks[1].continues && blocks[2].continues, "the long segment goes on twice");
        // Each continuing block starts with the previous one's last point.
        for pair in blocks.windows(2).filter(|w| w[1].continues) {
            assert_eq!(pair[0].segments.last().unwrap().last(), pair[1].segments[0].first());
        }
        assert_eq!(join(blocks.clone()), segments);
        let counted = blocks.iter().fold(super::super::track::LevelCount::default(), |mut total, b| {
            total += b.count();
            total
        });
        assert_eq!(counted.points, segments.iter().map(|s| s.len() as u64).sum::<u64>());
        assert_eq!(counted.segments, segments.len() as u64);
    }

    #[test]
    fn a_nearly_full_block_starts_the_next_segment_afresh() {
        let blocks = split(vec![line(0, BLOCK_POINTS - 1), line(10_000, 5)], false, usize::MAX);
        assert_eq!(blocks.len(), 2);
        assert!(!blocks[1].continues, "a new segment, not a piece of one");
        assert_eq!(blocks[1].segments, vec![line(10_000, 5)]);
    }

    #[test]
    fn the_last_allowed_block_takes_the_rest() {
        let blocks = split(vec![line(0, 3 * BLOCK_POINTS)], true, 2);
        assert_eq!(blocks.len(), 2);
        assert!(blocks[0].continues, "the first block keeps the caller's flag");
        assert_eq!(blocks[1].stored_points(), 2 * BLOCK_POINTS + 1);
        assert_eq!(join(blocks), vec![line(0, 3 * BLOCK_POINTS)]);
        assert!(split(Vec::new(), false, 1).is_empty());
    }
}

//! Heatmap and fog-of-war cells: per device, per day and per month, at one
//! fixed zoom of the web-mercator grid.
//!
//! **Base zoom.** Cells are the tiles of zoom [`BASE_ZOOM`] = 18: about
//! 150 m at the equator and 95 m at 50° N, a city block. That is fine enough
//! for "which streets have I walked" and coarse enough that a month of a
//! commuter's life is a few hundred cells (a few kilobytes). A tile of zoom
//! `z` is answered as a grid of [`GRID`] × [`GRID`] cells (zoom `z + 6`)
//! down to zoom 12; deeper tiles get fewer, bigger-than-pixel cells
//! (`2^(18 - z)` a side), and tiles deeper than 18 are refused.
//!
//! **Order.** Cells are kept sorted by their Morton (Z-order, quadkey)
//! code, which interleaves the bits of column and row. Every tile of zoom
//! `z ≤ 18` is then one contiguous code range, so a tile query reads each
//! month's list up to the end of that range and stops.
//!
//! **What is counted.** The heatmap counts points per cell (time spent,
//! roughly, since phones sample while resting too). Fog of war counts
//! *passes*: every cell a line between consecutive fixes crosses, once per
//! pass however many fixes fell into it (`polo_timeline::tiles::fog_of_war`,
//! Amanatides–Woo), so a motorway sampled every 30 s still leaves an
//! unbroken trail. Lines are not drawn across recording gaps ([`GAP_MS`]);
//! a line from a day's last fix to the next day's first (a night drive)
//! belongs to the earlier day.
//!
//! **Encoding.** A cell list is its length, then per cell the (unsigned,
//! since codes increase) varint delta of its code from the previous one and
//! its count.
//!
//! **Month rows are cut into blocks, at four zooms.** A month's sums are
//! not one row per month (a tile query then decoded every month's whole
//! list up to the tile, 130–210 ms for a fog tile of a busy history) but
//! one row per month, [level](MONTH_ZOOMS) and *block*: the 64 × 64 cells
//! of one tile of zoom `cell zoom − 6`. The key puts the level first, the
//! block's Morton code next and the month last ([`month_row_key`]), so the
//! rows of one block over all months are adjacent, and the blocks inside
//! any tile are one key range: a tile query is one range read per device
//! that returns only rows inside (or, for tiles smaller than a block,
//! around) the tile. Level 0 holds the cells at the base zoom, levels 1 to 3
//! the same counts summed into cells of zoom 16, 14 and 12, the finest a
//! tile of zoom 9–10, 7–8 or ≤ 6 draws (its grid is `z + 6`), so a
//! zoomed-out tile reads a few coarse rows instead of every cell of ten
//! years. Sums of counts into bigger cells are exactly what the finer level
//! would give, so every zoom shows the same numbers as before.

use std::ops::Range;

use polo_domain::Coord;
use polo_store::DerivedKind;
use polo_timeline::tiles::{TileId, fog_of_war, heatmap, tile_of};

use super::codec::{Reader, Writer};
use super::track::{GAP_MS, MapPoint};
use crate::DerivedResult;

/// The zoom whose tiles are the heatmap and fog-of-war cells.
pub const BASE_ZOOM: u8 = 18;

/// Cells a side of a tile's grid, where the base zoom is deep enough.
pub const GRID: u32 = 64;

/// Spreads the 32 bits of `v` to the even bits of a `u64`.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v);
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// The inverse of [`spread`].
fn compact(code: u64) -> u32 {
    let mut x = code & 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    x = (x | (x >> 16)) & 0x0000_0000_ffff_ffff;
    // Masked to 32 bits above.
    #[allow(clippy::cast_possible_truncation)]
    let v = x as u32;
    v
}

/// The Morton code of a cell: column bits at even, row bits at odd positions.
#[must_use]
pub fn morton(x: u32, y: u32) -> u64 {
    spread(x) | (spread(y) << 1)
}

/// Column and row of a Morton code.
#[must_use]
pub fn unmorton(code: u64) -> (u32, u32) {
    (compact(code), compact(code >> 1))
}

/// The base-zoom codes inside tile `z/x/y` (`z ≤ BASE_ZOOM`).
#[must_use]
pub fn tile_codes(z: u8, x: u32, y: u32) -> Range<u64> {
    let shift = 2 * u32::from(BASE_ZOOM - z.min(BASE_ZOOM));
    let first = morton(x, y) << shift;
    first..(first + (1u64 << shift))
}

/// A list of cells with counts, sorted by code, no code twice, no zero count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells(pub Vec<(u64, u32)>);

impl Cells {
    fn from_tiles(tiles: Vec<(TileId, u32)>) -> Self {
        Self::from_unsorted(tiles.into_iter().map(|(tile, n)| (morton(tile.x, tile.y), n)).collect())
    }

    /// Sorts and sums duplicate codes (saturating).
    fn from_unsorted(mut cells: Vec<(u64, u32)>) -> Self {
        cells.sort_unstable_by_key(|&(code, _)| code);
        let mut out: Vec<(u64, u32)> = Vec::with_capacity(cells.len());
        for (code, n) in cells {
            match out.last_mut() {
                Some((last, total)) if *last == code => *total = total.saturating_add(n),
                _ if n > 0 => out.push((code, n)),
                _ => {}
            }
        }
        Self(out)
    }

    /// The sum of several lists.
    #[must_use]
    pub fn merge<'a>(lists: impl IntoIterator<Item = &'a Cells>) -> Self {
        Self::from_unsorted(lists.into_iter().flat_map(|cells| cells.0.iter().copied()).collect())
    }

    /// No cells.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Appends the encoded list.
    pub(crate) fn encode(&self, writer: &mut Writer) {
        writer.usize(self.0.len());
        let mut previous = 0u64;
        for &(code, n) in &self.0 {
            writer.u64(code - previous);
            writer.u64(u64::from(n));
            previous = code;
        }
    }

    /// Reads a list [`Cells::encode`] wrote.
    pub(crate) fn decode(reader: &mut Reader<'_>) -> DerivedResult<Self> {
        let mut cells = Vec::new();
        decode_cells(reader, u64::MAX, |code, n| cells.push((code, n)))?;
        Ok(Self(cells))
    }
}

/// The cell zooms of the month rows' levels, finest first: level `l`
/// holds the month's counts summed into cells of zoom `MONTH_ZOOMS[l]`.
pub const MONTH_ZOOMS: [u8; 4] = [BASE_ZOOM, 16, 14, 12];

/// A month row holds one block: `2^BLOCK_SHIFT` cells a side.
pub const BLOCK_SHIFT: u8 = 6;

/// Bits of a month number in a month row key (months run to 119 999).
const MONTH_BITS: u32 = 17;

/// Bits of a block's Morton code in a month row key (blocks of level 0 are
/// tiles of zoom 12).
const BLOCK_BITS: u32 = 2 * (BASE_ZOOM as u32 - BLOCK_SHIFT as u32);

/// The key of the month row of `level`, `block` (Morton code of the block
/// at zoom `MONTH_ZOOMS[level] - BLOCK_SHIFT`) and `month`: level, then
/// block, then month, so one block's months are adjacent and the blocks
/// of a tile are one key range.
#[must_use]
pub fn month_row_key(level: usize, block: u64, month: i64) -> i64 {
    // `block == 2^BLOCK_BITS` is the exclusive end of a level's keys.
    debug_assert!(block <= 1 << BLOCK_BITS && (0..1 << MONTH_BITS).contains(&month));
    // level < 4, block ≤ 2^24, month < 2^17: the key stays below 2^44.
    #[allow(clippy::cast_possible_wrap)]
    let high = (((level as u64) << BLOCK_BITS) | block) as i64;
    (high << MONTH_BITS) | month
}

/// The level, block and month of a month row key.
#[must_use]
pub fn month_row_parts(key: i64) -> (usize, u64, i64) {
    let month = key & ((1 << MONTH_BITS) - 1);
    // Keys are non-negative (see `month_row_key`).
    #[allow(clippy::cast_sign_loss)]
    let high = (key >> MONTH_BITS) as u64;
    // Below 4.
    #[allow(clippy::cast_possible_truncation)]
    let level = (high >> BLOCK_BITS) as usize;
    (level, high & ((1 << BLOCK_BITS) - 1), month)
}

impl Cells {
    /// The same counts summed into the cells of `zoom` (≤ [`BASE_ZOOM`]).
    #[must_use]
    pub fn coarsen(&self, zoom: u8) -> Self {
        let shift = 2 * u32::from(BASE_ZOOM - zoom.min(BASE_ZOOM));
        let mut out: Vec<(u64, u32)> = Vec::with_capacity(self.0.len());
        for &(code, n) in &self.0 {
            // Shifting keeps Morton order, so equal codes are adjacent.
            let code = code >> shift;
            match out.last_mut() {
                Some((last, total)) if *last == code => *total = total.saturating_add(n),
                _ => out.push((code, n)),
            }
        }
        Self(out)
    }
}

/// The month rows of a month's base-zoom `cells`: per level and block, the
/// key and the encoded cells (codes relative to the block's first cell).
#[must_use]
pub fn month_rows(month: i64, cells: &Cells) -> Vec<(i64, Vec<u8>)> {
    let mut rows = Vec::new();
    for (level, &zoom) in MONTH_ZOOMS.iter().enumerate() {
        let cells = if zoom == BASE_ZOOM { cells.clone() } else { cells.coarsen(zoom) };
        let block_of = |code: u64| code >> (2 * u32::from(BLOCK_SHIFT));
        let mut start = 0;
        while start < cells.0.len() {
            let block = block_of(cells.0[start].0);
            let end = start + cells.0[start..].iter().take_while(|c| block_of(c.0) == block).count();
            let base = block << (2 * u32::from(BLOCK_SHIFT));
            let part = Cells(cells.0[start..end].iter().map(|&(code, n)| (code - base, n)).collect());
            rows.push((month_row_key(level, block, month), encode_month_cells(&part)));
            start = end;
        }
    }
    rows
}

/// The keys [`month_rows`] gives `cells`, without encoding them.
#[must_use]
pub fn month_row_keys(month: i64, cells: &Cells) -> Vec<i64> {
    let mut keys = Vec::new();
    for (level, &zoom) in MONTH_ZOOMS.iter().enumerate() {
        let shift = 2 * u32::from(BASE_ZOOM - zoom + BLOCK_SHIFT);
        let mut blocks: Vec<u64> = cells.0.iter().map(|&(code, _)| code >> shift).collect();
        blocks.dedup();
        keys.extend(blocks.into_iter().map(|block| month_row_key(level, block, month)));
    }
    keys
}

/// Reads an encoded cell list, calling `visit` for each cell with a code
/// below `stop`; returns early (leaving the reader mid-list) at the first
/// code at or past `stop`, or after the whole list.
pub(crate) fn decode_cells(reader: &mut Reader<'_>, stop: u64, mut visit: impl FnMut(u64, u32)) -> DerivedResult<bool> {
    // Two bytes at least per cell: its code delta and its count.
    let count = reader.count(2)?;
    let mut code = 0u64;
    for index in 0..count {
        let delta = reader.u64()?;
        if index > 0 && delta == 0 {
            return Err(reader.corrupt("cell codes do not increase"));
        }
        code = code.checked_add(delta).ok_or_else(|| reader.corrupt("cell code overflows"))?;
        let n = reader.u64()?;
        let n = u32::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| reader.corrupt(format!("cell count {n}")))?;
        if code >= stop {
            return Ok(false);
        }
        visit(code, n);
    }
    Ok(true)
}

fn coords(points: &[MapPoint]) -> Vec<Coord> {
    points.iter().map(|p| p.coord).collect()
}

/// Points per base-zoom cell.
///
/// # Errors
/// Never for [`BASE_ZOOM`].
pub fn heat_cells(points: &[MapPoint]) -> DerivedResult<Cells> {
    Ok(Cells::from_tiles(heatmap(points.iter().map(|p| p.coord), BASE_ZOOM)?))
}

/// Passes through each base-zoom cell of one day's time-sorted points;
/// `next` is the first point after them (on the next day), whose line from
/// the day's last point, unless a gap, belongs to this day.
///
/// # Errors
/// Never for [`BASE_ZOOM`].
pub fn fog_cells(points: &[MapPoint], next: Option<MapPoint>) -> DerivedResult<Cells> {
    let mut tiles: Vec<(TileId, u32)> = Vec::new();
    let mut start = 0;
    for end in 1..=points.len() {
        if end == points.len() || points[end].time.0 - points[end - 1].time.0 > GAP_MS {
            tiles.extend(fog_of_war(&coords(&points[start..end]), BASE_ZOOM)?);
            start = end;
        }
    }
    if let (Some(last), Some(next)) = (points.last(), next)
        && next.time.0 - last.time.0 <= GAP_MS
    {
        // The cells strictly between: the last point's cell continues this
        // day's pass, the next point's cell starts the next day's.
        let (from, to) = (tile_of(last.coord, BASE_ZOOM)?, tile_of(next.coord, BASE_ZOOM)?);
        tiles.extend(
            fog_of_war(&[last.coord, next.coord], BASE_ZOOM)?.into_iter().filter(|(t, _)| *t != from && *t != to),
        );
    }
    Ok(Cells::from_tiles(tiles))
}

/// A device's `MAP_CELLS` row: the heatmap and fog cells of one UTC day,
/// from which the month rows are summed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayCells {
    /// Points per cell.
    pub heat: Cells,
    /// Passes per cell.
    pub fog: Cells,
}

const CELLS_VERSION: u8 = 1;

/// Encodes a day's cells.
#[must_use]
pub fn encode_day_cells(cells: &DayCells) -> Vec<u8> {
    let mut writer = Writer::with_capacity(1 + 4 * (cells.heat.0.len() + cells.fog.0.len()));
    writer.byte(CELLS_VERSION);
    cells.heat.encode(&mut writer);
    cells.fog.encode(&mut writer);
    writer.finish()
}

/// Decodes [`encode_day_cells`]'s bytes.
///
/// # Errors
/// [`crate::DerivedError::Corrupt`] for damaged bytes.
pub fn decode_day_cells(bytes: &[u8], kind: DerivedKind, key: i64) -> DerivedResult<DayCells> {
    let mut reader = Reader::new(bytes, kind, key);
    check_version(&mut reader)?;
    let heat = Cells::decode(&mut reader)?;
    let fog = Cells::decode(&mut reader)?;
    reader.finish()?;
    Ok(DayCells { heat, fog })
}

fn check_version(reader: &mut Reader<'_>) -> DerivedResult<()> {
    let version = reader.byte()?;
    if version == CELLS_VERSION { Ok(()) } else { Err(reader.corrupt(format!("unknown cells version {version}"))) }
}

/// Encodes a month's `HEAT` or `FOG` row.
#[must_use]
pub fn encode_month_cells(cells: &Cells) -> Vec<u8> {
    let mut writer = Writer::with_capacity(1 + 4 * cells.0.len());
    writer.byte(CELLS_VERSION);
    cells.encode(&mut writer);
    writer.finish()
}

/// Decodes a whole `HEAT` or `FOG` row.
///
/// # Errors
/// [`crate::DerivedError::Corrupt`] for damaged bytes.
pub fn decode_month_cells(bytes: &[u8], kind: DerivedKind, key: i64) -> DerivedResult<Cells> {
    let mut reader = Reader::new(bytes, kind, key);
    check_version(&mut reader)?;
    let cells = Cells::decode(&mut reader)?;
    reader.finish()?;
    Ok(cells)
}

/// Calls `visit` for the cells whose codes lie in `codes` of one list of an
/// encoded row (`part`: a month row's list, or the heat or the fog list of
/// a `MAP_CELLS` row), reading no further than the range's end.
pub(crate) fn visit_row_cells(
    bytes: &[u8],
    kind: DerivedKind,
    key: i64,
    part: RowPart,
    codes: &Range<u64>,
    mut visit: impl FnMut(u64, u32),
) -> DerivedResult<()> {
    let mut reader = Reader::new(bytes, kind, key);
    check_version(&mut reader)?;
    if part == RowPart::DayFog {
        // Skip the heat list.
        decode_cells(&mut reader, u64::MAX, |_, _| {})?;
    }
    let base = match part {
        RowPart::Month { base } => base,
        RowPart::DayHeat | RowPart::DayFog => 0,
    };
    let stop = codes.end.saturating_sub(base);
    let whole = decode_cells(&mut reader, stop, |code, n| {
        let code = code + base;
        if code >= codes.start {
            visit(code, n);
        }
    })?;
    if whole && part != RowPart::DayHeat {
        reader.finish()?;
    }
    Ok(())
}

/// Which list of a row [`visit_row_cells`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowPart {
    /// A month row's only list, its codes counted from `base` (the first
    /// cell of its block).
    Month {
        /// The block's first cell.
        base: u64,
    },
    /// A day row's heat list.
    DayHeat,
    /// A day row's fog list.
    DayFog,
}

#[cfg(test)]
mod tests {
    use polo_domain::Timestamp;

    use super::*;
    use crate::DerivedError;

    fn p(ms: i64, lat: f64, lon: f64) -> MapPoint {
        MapPoint { time: Timestamp(ms), coord: Coord::from_degrees(lat, lon).unwrap() }
    }

    #[test]
    fn morton_codes_make_tiles_contiguous() {
        for (x, y) in [(0, 0), (1, 0), (0, 1), (262_143, 262_143), (137_500, 91_700), (u32::MAX, 5)] {
            assert_eq!(unmorton(morton(x, y)), (x, y));
        }
        assert_eq!(morton(1, 0), 1);
        assert_eq!(morton(0, 1), 2);
        assert_eq!(morton(3, 3), 15);
        // Every base cell of tile 10/536/358 has a code in its range, and no other cell does.
        let codes = tile_codes(10, 536, 358);
        assert_eq!(codes.end - codes.start, 1 << 16);
        let inside = (536 << 8, 358 << 8);
        assert!(codes.contains(&morton(inside.0, inside.1)));
        assert!(codes.contains(&morton(inside.0 + 255, inside.1 + 255)));
        assert!(!codes.contains(&morton(inside.0 + 256, inside.1)));
        assert!(!codes.contains(&morton(inside.0, inside.1 - 1)));
        assert_eq!(tile_codes(0, 0, 0), 0..1 << 36);
        assert_eq!(tile_codes(18, 7, 9), morton(7, 9)..morton(7, 9) + 1);
    }

    #[test]
    fn cell_lists_round_trip_and_merge() {
        let day = [p(0, 47.3769, 8.5417), p(60_000, 47.3770, 8.5418), p(120_000, 47.39, 8.56)];
        let cells = DayCells { heat: heat_cells(&day).unwrap(), fog: fog_cells(&day, None).unwrap() };
        assert_eq!(cells.heat.0.iter().map(|c| c.1).sum::<u32>(), 3);
        assert!(cells.fog.0.len() > cells.heat.0.len(), "the line between fixes crosses more cells");
        let bytes = encode_day_cells(&cells);
        assert_eq!(decode_day_cells(&bytes, DerivedKind(22), 1).unwrap(), cells);
        let month = Cells::merge([&cells.heat, &cells.heat]);
        assert_eq!(month.0.iter().map(|c| c.1).sum::<u32>(), 6);
        assert_eq!(month.0.len(), cells.heat.0.len());
        assert_eq!(decode_month_cells(&encode_month_cells(&month), DerivedKind(20), 5).unwrap(), month);
        assert!(Cells::merge([]).is_empty());
    }

    #[test]
    fn corrupt_cell_rows_are_errors() {
        let cells = Cells(vec![(5, 1), (9, 3)]);
        let good = encode_month_cells(&cells);
        for bad in [&good[..good.len() - 1], &[2, 0][..], &[1, 2, 5, 1, 0, 1][..], &[1, 1, 5, 0][..]] {
            let error = decode_month_cells(bad, DerivedKind(20), 5).unwrap_err();
            assert!(matches!(error, DerivedError::Corrupt { kind: 20, key: 5, .. }), "{bad:?}: {error}");
        }
        assert!(decode_day_cells(&good, DerivedKind(22), 1).is_err(), "a month row is not a day row");
    }

    #[test]
    fn fog_is_not_drawn_across_gaps_and_continues_into_the_next_day() {
        let minute = 60_000;
        // Two fixes 1 km apart with a 20-minute gap: two cells, no trail between.
        let gap = fog_cells(&[p(0, 47.0, 8.0), p(20 * minute, 47.0, 8.0135)], None).unwrap();
        assert_eq!(gap.0.len(), 2, "{gap:?}");
        let trail = fog_cells(&[p(0, 47.0, 8.0), p(10 * minute, 47.0, 8.0135)], None).unwrap();
        assert!(trail.0.len() >= 9, "{trail:?}");
        // The same line split at midnight: the earlier day walks the cells between.
        let evening = fog_cells(&[p(0, 47.0, 8.0)], Some(p(10 * minute, 47.0, 8.0135))).unwrap();
        let morning = fog_cells(&[p(10 * minute, 47.0, 8.0135)], None).unwrap();
        assert_eq!(Cells::merge([&evening, &morning]), trail, "no cell lost or counted twice at midnight");
        let after_a_gap = fog_cells(&[p(0, 47.0, 8.0)], Some(p(20 * minute, 47.0, 8.0135))).unwrap();
        assert_eq!(after_a_gap.0.len(), 1);
    }

    #[test]
    fn visiting_a_range_stops_at_its_end() {
        let cells = Cells((0..100).map(|i| (i * 10, 1)).collect());
        let bytes = encode_month_cells(&cells);
        let mut seen = Vec::new();
        visit_row_cells(&bytes, DerivedKind(20), 1, RowPart::Month { base: 0 }, &(95..205), |code, _| seen.push(code))
            .unwrap();
        assert_eq!(seen, (10..=20).map(|i| i * 10).collect::<Vec<_>>());
        let day = encode_day_cells(&DayCells { heat: Cells(vec![(1, 1)]), fog: cells });
        let mut fog = 0;
        visit_row_cells(&day, DerivedKind(22), 1, RowPart::DayFog, &(0..u64::MAX), |_, n| fog += n).unwrap();
        assert_eq!(fog, 100);
        let mut heat = Vec::new();
        visit_row_cells(&day, DerivedKind(22), 1, RowPart::DayHeat, &(0..u64::MAX), |c, n| heat.push((c, n))).unwrap();
        assert_eq!(heat, [(1, 1)]);
    }
}

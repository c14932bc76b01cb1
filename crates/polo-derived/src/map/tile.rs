//! Heatmap and fog-of-war tiles: the cells of one web-mercator tile, summed
//! over all time or a range of days.
//!
//! A range is rounded out to whole UTC days. Its whole months are read from
//! the month rows (`HEAT_BLOCKS`, `FOG_BLOCKS`: per device, month, level and
//! block), the partial months at either end from the day rows
//! (`MAP_CELLS`). The month rows come from the coarsest level whose cells
//! are no bigger than the tile's grid cells, and only from the blocks that
//! overlap the tile: one key range per device (see [`super::cells`]). Each
//! row's cell list is read only up to the end of the tile's code range.

use std::ops::Range;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedKind, DerivedRange, DerivedScope, Store};

use super::calendar::{MAX_MS, MIN_MS, clamp_ms, day_of, month_days, month_of_day};
use super::cells::{
    BASE_ZOOM, BLOCK_SHIFT, GRID, MONTH_ZOOMS, RowPart, month_row_key, month_row_parts, morton, tile_codes, unmorton,
    visit_row_cells,
};
use crate::kinds::{FOG_BLOCKS, HEAT_BLOCKS, MAP_CELLS};
use crate::{DerivedError, DerivedResult};

/// The cells of one tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileCells {
    /// The tile's zoom.
    pub z: u8,
    /// The tile's column.
    pub x: u32,
    /// The tile's row.
    pub y: u32,
    /// The zoom of the cells: `z + log2(side)`, at most [`BASE_ZOOM`].
    pub cell_zoom: u8,
    /// Cells per side of the tile's grid (a power of two, at most [`GRID`]).
    pub side: u32,
    /// Non-empty cells as (column, row, count) inside the grid, row by row.
    pub cells: Vec<(u32, u32, u64)>,
    /// The largest count (0 without cells).
    pub max: u64,
    /// The sum of the counts.
    pub total: u64,
}

/// Which aggregate a tile shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    Heat,
    Fog,
}

/// Points per cell of tile `z/x/y` (`z ≤` [`BASE_ZOOM`]) for `devices`, over
/// the UTC days touched by `[from, to)` (unbounded where `None`).
///
/// # Errors
/// [`DerivedError::Invalid`] for a zoom deeper than [`BASE_ZOOM`] or a tile
/// outside the zoom's grid; store failures and corrupt rows.
#[allow(clippy::too_many_arguments)]
pub fn heat_tile(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    z: u8,
    x: u32,
    y: u32,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> DerivedResult<TileCells> {
    tile(store, user, devices, (z, x, y), from, to, Layer::Heat)
}

/// Passes through each cell of tile `z/x/y` (its visited cells) for
/// `devices`, as [`heat_tile`].
///
/// # Errors
/// As [`heat_tile`].
#[allow(clippy::too_many_arguments)]
pub fn fog_tile(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    z: u8,
    x: u32,
    y: u32,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> DerivedResult<TileCells> {
    tile(store, user, devices, (z, x, y), from, to, Layer::Fog)
}

/// Checks a tile address.
///
/// # Errors
/// [`DerivedError::Invalid`] naming the bad number.
pub fn check_tile(z: u8, x: u32, y: u32) -> DerivedResult<()> {
    if z > BASE_ZOOM {
        return Err(DerivedError::Invalid(format!(
            "z must be 0 to {BASE_ZOOM} (cells are tiles of zoom {BASE_ZOOM}), not {z}"
        )));
    }
    let size = 1u64 << z;
    for (name, value) in [("x", x), ("y", y)] {
        if u64::from(value) >= size {
            return Err(DerivedError::Invalid(format!("{name} must be below 2^z = {size} at zoom {z}, not {value}")));
        }
    }
    Ok(())
}

/// The codes of the cells of zoom `zoom` (≥ `z`) inside tile `z/x/y`.
fn codes_at(zoom: u8, z: u8, x: u32, y: u32) -> Range<u64> {
    let shift = 2 * u32::from(zoom - z);
    let first = morton(x, y) << shift;
    first..first + (1u64 << shift)
}

/// Where the rows of a day range come from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    /// Whole months, read from month rows.
    months: Range<i64>,
    /// Days of partial months, read from day rows.
    days: Vec<Range<i64>>,
}

/// Splits the days `[first, end)` into whole months and leftover days.
fn plan(days: Range<i64>) -> Plan {
    if days.is_empty() {
        return Plan { months: 0..0, days: Vec::new() };
    }
    let (first_month, last_month) = (month_of_day(days.start), month_of_day(days.end - 1));
    let starts_whole = month_days(first_month).start == days.start;
    let ends_whole = month_days(last_month).end == days.end;
    if first_month == last_month && !(starts_whole && ends_whole) {
        return Plan { months: 0..0, days: vec![days] };
    }
    let mut plan = Plan { months: first_month..last_month + 1, days: Vec::new() };
    if !starts_whole {
        plan.days.push(days.start..month_days(first_month).end);
        plan.months.start += 1;
    }
    if !ends_whole {
        plan.days.push(month_days(last_month).start..days.end);
        plan.months.end -= 1;
    }
    plan
}

fn tile(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    (z, x, y): (u8, u32, u32),
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    layer: Layer,
) -> DerivedResult<TileCells> {
    check_tile(z, x, y)?;
    let first = day_of(from.map_or(MIN_MS, |t| t.0));
    let end = day_of(to.map_or(MAX_MS, |t| clamp_ms(t.0 - 1))) + 1;
    let plan = plan(first..end);
    let side = GRID.min(1 << (BASE_ZOOM - z));
    let cell_zoom = z + u8::try_from(side.trailing_zeros()).unwrap_or(0);
    let mut grid = vec![0u64; (side * side) as usize];
    // Adds a cell of zoom `zoom` (≥ cell_zoom) to the grid.
    let mut add = |zoom: u8, code: u64, n: u32| {
        let (cx, cy) = unmorton(code);
        let (x0, y0) = (x << (zoom - z), y << (zoom - z));
        let shift = u32::from(zoom - cell_zoom);
        let (column, row) = ((cx - x0) >> shift, (cy - y0) >> shift);
        grid[(row * side + column) as usize] += u64::from(n);
    };
    let (month_kind, day_part): (DerivedKind, RowPart) = match layer {
        Layer::Heat => (HEAT_BLOCKS, RowPart::DayHeat),
        Layer::Fog => (FOG_BLOCKS, RowPart::DayFog),
    };
    // The coarsest level whose cells are no bigger than the grid's.
    let level = MONTH_ZOOMS.iter().rposition(|&zoom| zoom >= cell_zoom).unwrap_or(0);
    let level_zoom = MONTH_ZOOMS[level];
    let level_codes = codes_at(level_zoom, z, x, y);
    let block_zoom = level_zoom - BLOCK_SHIFT;
    let keys = if z >= block_zoom {
        // The tile lies in one block: that block's months.
        let block = morton(x >> (z - block_zoom), y >> (z - block_zoom));
        month_row_key(level, block, plan.months.start)..month_row_key(level, block, plan.months.end)
    } else {
        // The tile holds a run of whole blocks: all their months, filtered below.
        let blocks = codes_at(block_zoom, z, x, y);
        month_row_key(level, blocks.start, 0)..month_row_key(level, blocks.end, 0)
    };
    let day_codes = tile_codes(z, x, y);
    for &device in devices {
        let scope = DerivedScope::Device(device);
        if !plan.months.is_empty() {
            let range = DerivedRange { kind: month_kind, scope, from: keys.start, to: keys.end };
            for row in store.derived_range(user, &range)? {
                let (_, block, month) = month_row_parts(row.key);
                if !plan.months.contains(&month) {
                    continue;
                }
                let base = block << (2 * u32::from(BLOCK_SHIFT));
                let part = RowPart::Month { base };
                visit_row_cells(&row.value, month_kind, row.key, part, &level_codes, |code, n| {
                    add(level_zoom, code, n);
                })?;
            }
        }
        for days in &plan.days {
            let range = DerivedRange { kind: MAP_CELLS, scope, from: days.start, to: days.end };
            for row in store.derived_range(user, &range)? {
                visit_row_cells(&row.value, MAP_CELLS, row.key, day_part, &day_codes, |code, n| {
                    add(BASE_ZOOM, code, n);
                })?;
            }
        }
    }
    let mut cells = Vec::new();
    for (index, &count) in grid.iter().enumerate() {
        if count > 0 {
            // index < side² ≤ 4096.
            #[allow(clippy::cast_possible_truncation)]
            let index = index as u32;
            cells.push((index % side, index / side, count));
        }
    }
    let max = cells.iter().map(|c| c.2).max().unwrap_or(0);
    let total = cells.iter().map(|c| c.2).sum();
    Ok(TileCells { z, x, y, cell_zoom, side, cells, max, total })
}

#[cfg(test)]
mod tests {
    use polo_timeline::tiles::tile_of;

    use super::*;
    use crate::map::calendar::{day_start, month_first_day};
    use crate::map::refresh_device;
    use crate::map::test_support::{Fixture, synthetic};
    use crate::map::track::MapPoint;

    fn refreshed(days: u32) -> (Fixture, Vec<MapPoint>) {
        let fixture = Fixture::new(&["phone"]);
        let points = synthetic(2, days);
        fixture.insert(fixture.devices[0], &points);
        refresh_device(&fixture.store, fixture.user, fixture.devices[0], points[0].time, points[points.len() - 1].time)
            .unwrap();
        (fixture, points)
    }

    type TileFn = fn(
        &dyn Store,
        UserId,
        &[DeviceId],
        u8,
        u32,
        u32,
        Option<Timestamp>,
        Option<Timestamp>,
    ) -> DerivedResult<TileCells>;

    #[test]
    fn heat_tiles_count_every_point_once_at_every_zoom() {
        let (fixture, points) = refreshed(40);
        let devices = &fixture.devices;
        let world = heat_tile(&fixture.store, fixture.user, devices, 0, 0, 0, None, None).unwrap();
        assert_eq!(world.total, points.len() as u64);
        assert_eq!((world.side, world.cell_zoom), (64, 6));
        // The four children of the tile holding home sum to it, down to the base zoom.
        let home = tile_of(points[0].coord, BASE_ZOOM).unwrap();
        for z in 1..=BASE_ZOOM {
            let shift = BASE_ZOOM - z;
            let (x, y) = (home.x >> shift, home.y >> shift);
            let parent = heat_tile(&fixture.store, fixture.user, devices, z - 1, x >> 1, y >> 1, None, None).unwrap();
            let children: u64 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                .iter()
                .map(|&(dx, dy)| {
                    heat_tile(&fixture.store, fixture.user, devices, z, (x & !1) + dx, (y & !1) + dy, None, None)
                        .unwrap()
                        .total
                })
                .sum();
            assert_eq!(children, parent.total, "zoom {z}");
            let tile = heat_tile(&fixture.store, fixture.user, devices, z, x, y, None, None).unwrap();
            assert_eq!(tile.side, GRID.min(1 << shift));
            assert!(tile.cells.iter().all(|&(c, r, n)| c < tile.side && r < tile.side && n > 0));
            assert_eq!(tile.max, tile.cells.iter().map(|c| c.2).max().unwrap());
        }
        let cell = heat_tile(&fixture.store, fixture.user, devices, BASE_ZOOM, home.x, home.y, None, None).unwrap();
        assert_eq!((cell.side, cell.cells.len()), (1, 1));
        let expected = points.iter().filter(|p| tile_of(p.coord, BASE_ZOOM).unwrap() == home).count() as u64;
        assert_eq!(cell.total, expected, "the home cell holds exactly the points in it");
    }

    #[test]
    fn day_ranges_add_up_whichever_rows_answer_them() {
        let (fixture, points) = refreshed(70);
        let first_day = day_of(points[0].time.0);
        let call = |layer: TileFn, from: Option<i64>, to: Option<i64>| {
            layer(&fixture.store, fixture.user, &fixture.devices, 0, 0, 0, from.map(Timestamp), to.map(Timestamp))
                .unwrap()
                .total
        };
        for layer in [heat_tile as TileFn, fog_tile as TileFn] {
            let all = call(layer, None, None);
            // Cuts mid-month, at a month's start, and a range within one month.
            let april = day_start(month_first_day(month_of_day(first_day) + 1));
            let cuts = [day_start(first_day + 9), april, day_start(first_day + 45)];
            for cut in cuts {
                assert_eq!(call(layer, None, Some(cut)) + call(layer, Some(cut), None), all, "cut at {cut}");
            }
            // A cut inside a day: both sides round out to include it.
            let mid = day_start(first_day + 45) + 5 * 3_600_000;
            let that_day = call(layer, Some(day_start(first_day + 45)), Some(day_start(first_day + 46)));
            assert_eq!(call(layer, None, Some(mid)) + call(layer, Some(mid), None), all + that_day);
            let days = call(layer, Some(day_start(first_day + 3)), Some(day_start(first_day + 5)));
            let parts = call(layer, Some(day_start(first_day + 3)), Some(day_start(first_day + 4)))
                + call(layer, Some(day_start(first_day + 4)), Some(day_start(first_day + 5)));
            assert_eq!(days, parts);
            assert!(days > 0 && days < all);
        }
        let day = first_day + 4;
        let heat_of_day = call(heat_tile, Some(day_start(day)), Some(day_start(day) + 1));
        let expected = points.iter().filter(|p| day_of(p.time.0) == day).count() as u64;
        assert_eq!(heat_of_day, expected, "a range is rounded out to whole days");
    }

    #[test]
    fn fog_tiles_show_the_trails_between_fixes() {
        let (fixture, points) = refreshed(10);
        let home = tile_of(points[0].coord, 12).unwrap();
        let devices = &fixture.devices;
        let heat = heat_tile(&fixture.store, fixture.user, devices, 12, home.x, home.y, None, None).unwrap();
        let fog = fog_tile(&fixture.store, fixture.user, devices, 12, home.x, home.y, None, None).unwrap();
        assert!(fog.cells.len() > heat.cells.len(), "lines cross cells no fix fell into");
        for &(column, row, _) in &heat.cells {
            assert!(fog.cells.iter().any(|&(c, r, _)| (c, r) == (column, row)), "a cell with a fix was visited");
        }
        assert!(fog.total < heat.total, "passes, not points: a night at home is one pass");
        let stranger = fixture.store.create_user("stranger", "x", false).unwrap().id;
        let none = fog_tile(&fixture.store, stranger, devices, 12, home.x, home.y, None, None).unwrap();
        assert!(none.cells.is_empty(), "another user's device ids show nothing");
        assert!(matches!(
            fog_tile(&fixture.store, fixture.user, devices, 19, 0, 0, None, None),
            Err(DerivedError::Invalid(_))
        ));
    }

    #[test]
    // The lists of day ranges are the point.
    #[allow(clippy::single_range_in_vec_init)]
    fn ranges_split_into_whole_months_and_leftover_days() {
        let march = 2024 * 12 + 2;
        let days = month_days(march);
        assert_eq!(plan(days.clone()), Plan { months: march..march + 1, days: vec![] });
        assert_eq!(
            plan(days.start + 3..days.start + 5),
            Plan { months: 0..0, days: vec![days.start + 3..days.start + 5] }
        );
        let april_end = month_days(march + 1).end;
        assert_eq!(
            plan(days.start + 3..april_end),
            Plan { months: march + 1..march + 2, days: vec![days.start + 3..days.end] }
        );
        let may_10 = month_first_day(march + 2) + 9;
        assert_eq!(
            plan(days.start + 3..may_10),
            Plan {
                months: march + 1..march + 2,
                days: vec![days.start + 3..days.end, month_first_day(march + 2)..may_10]
            }
        );
        assert_eq!(plan(5..5), Plan { months: 0..0, days: vec![] });
        let all = plan(day_of(MIN_MS)..day_of(MAX_MS) + 1);
        assert!(all.days.is_empty() && all.months.start == 12, "{all:?}");
    }

    #[test]
    fn tile_addresses_are_checked() {
        assert!(check_tile(0, 0, 0).is_ok());
        assert!(check_tile(18, 262_143, 0).is_ok());
        for (z, x, y, needle) in [(19, 0, 0, "z must be"), (3, 8, 0, "x must be"), (3, 0, 8, "y must be")] {
            let error = check_tile(z, x, y).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
    }
}

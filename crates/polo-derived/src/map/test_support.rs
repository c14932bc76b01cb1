//! Shared fixtures of the map tests: an in-memory store with a user, its
//! devices and synthetic points, and a dump of every map row.

use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_store::{DerivedKind, DerivedRange, DerivedRow, DerivedScope, Store};
use polo_store_sqlite::SqliteStore;
use polo_timeline::synthetic::SyntheticTrack;

use super::blocks::{day_keys, join, key_day};
use super::track::{MapPoint, TrackBlock, decode_track};
use crate::kinds::{FOG_BLOCKS, HEAT_BLOCKS, MAP_CELLS, MAP_COUNTS, MAP_LEVELS, map_track};

pub(crate) struct Fixture {
    pub store: SqliteStore,
    pub user: UserId,
    pub devices: Vec<DeviceId>,
}

impl Fixture {
    /// A store with user `jane` and the named devices.
    pub fn new(devices: &[&str]) -> Self {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("jane", "x", false).unwrap().id;
        let devices = devices.iter().map(|name| store.ensure_device(user, name).unwrap().id).collect();
        Self { store, user, devices }
    }

    pub fn insert(&self, device: DeviceId, points: &[MapPoint]) {
        let fixes: Vec<Fix> = points.iter().map(|p| Fix::new(p.time, p.coord, SourceFormat::Api)).collect();
        for batch in fixes.chunks(50_000) {
            self.store.insert_points(self.user, device, batch).unwrap();
        }
    }

    /// Every map row of `device`, kind by kind.
    pub fn rows(&self, device: DeviceId) -> Vec<DerivedRow> {
        let kinds: Vec<DerivedKind> = [MAP_COUNTS, MAP_CELLS, HEAT_BLOCKS, FOG_BLOCKS]
            .into_iter()
            .chain((0..MAP_LEVELS).map(map_track))
            .collect();
        let scope = DerivedScope::Device(device);
        kinds
            .into_iter()
            .flat_map(|kind| self.store.derived_range(self.user, &DerivedRange::all(kind, scope)).unwrap())
            .collect()
    }

    pub fn keys(&self, kind: DerivedKind, device: DeviceId) -> Vec<i64> {
        let range = DerivedRange::all(kind, DerivedScope::Device(device));
        self.store.derived_range(self.user, &range).unwrap().into_iter().map(|r| r.key).collect()
    }

    /// The days that have blocks of level `level`'s track.
    pub fn track_days(&self, level: u16, device: DeviceId) -> Vec<i64> {
        let mut days: Vec<i64> = self.keys(map_track(level), device).into_iter().map(key_day).collect();
        days.dedup();
        days
    }

    /// The blocks of level `level` of `day`, in order.
    pub fn track_blocks(&self, level: u16, device: DeviceId, day: i64) -> Vec<TrackBlock> {
        let keys = day_keys(day..day + 1);
        let range = DerivedRange {
            kind: map_track(level),
            scope: DerivedScope::Device(device),
            from: keys.start,
            to: keys.end,
        };
        let rows = self.store.derived_range(self.user, &range).unwrap();
        rows.iter().map(|row| decode_track(&row.value, map_track(level), row.key).unwrap()).collect()
    }

    /// Level `level`'s segments of `day`, its blocks joined.
    pub fn track(&self, level: u16, device: DeviceId, day: i64) -> Vec<Vec<MapPoint>> {
        join(self.track_blocks(level, device, day))
    }
}

/// `days` of a synthetic phone (seed `seed`), one point per instant as the store keeps them.
pub(crate) fn synthetic(seed: u64, days: u32) -> Vec<MapPoint> {
    let mut points: Vec<MapPoint> =
        SyntheticTrack::new(seed).days(days).points.iter().map(|t| MapPoint { time: t.time, coord: t.coord }).collect();
    points.dedup_by_key(|p| p.time);
    points
}

pub(crate) fn point(ms: i64, lat: f64, lon: f64) -> MapPoint {
    MapPoint { time: Timestamp(ms), coord: Coord::from_degrees(lat, lon).unwrap() }
}

//! The bundled data at the places where time zones are easy to get wrong:
//! DST changes, borders between zones of the same and of another offset,
//! open sea, and the antimeridian.

use std::sync::OnceLock;

use polo_domain::{Coord, Timestamp};
use polo_timeline::clock::{instant_of_local, local_ms};
use polo_timeline::{DayBoundaries, LocalClock, LocalDate, LocalDays, ZoneClock, ZoneLookup};

use super::*;

const HOUR: i64 = 3_600_000;

fn zones() -> &'static BundledZones {
    static ZONES: OnceLock<BundledZones> = OnceLock::new();
    ZONES.get_or_init(|| BundledZones::builtin().unwrap())
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
    Timestamp::from_civil(y, mo, d, h, mi, 0, 0).unwrap()
}

fn at(lat: f64, lon: f64) -> Coord {
    Coord::from_degrees(lat, lon).unwrap()
}

/// The zone's name and its offset at `time`.
fn zone(lat: f64, lon: f64, time: Timestamp) -> (&'static str, i16) {
    let zones = zones();
    let zone = zones.zone_at(at(lat, lon));
    (zones.zone_name(zone), zones.zone_offset_minutes(zone, time))
}

fn berlin() -> ZoneClock<'static> {
    ZoneClock { zones: zones(), zone: zones().zone_named("Europe/Berlin").unwrap() }
}

#[test]
fn every_zone_of_the_boundaries_is_in_the_tz_database() {
    // `builtin` fails otherwise; and the nautical zones are all numbered.
    let zones = zones();
    assert!(zones.names.len() > 300, "{} zones", zones.names.len());
    for hours in -12..=12 {
        let name = nautical_zone(f64::from(hours) * 15.0);
        let id = zones.zone_named(&name).unwrap();
        assert_eq!(zones.zone_offset_minutes(id, utc(2024, 1, 1, 0, 0)), i16::try_from(hours * 60).unwrap(), "{name}");
    }
    assert!(!zones.data_version().is_empty());
}

#[test]
fn lubeck_is_berlin_time_with_dst() {
    assert_eq!(zone(53.8655, 10.6866, utc(2024, 1, 15, 12, 0)), ("Europe/Berlin", 60));
    assert_eq!(zone(53.8655, 10.6866, utc(2024, 7, 15, 12, 0)), ("Europe/Berlin", 120));
}

#[test]
fn berlin_springs_forward_on_the_last_sunday_of_march() {
    let clock = berlin();
    let change = utc(2024, 3, 31, 1, 0);
    assert_eq!(clock.next_change_after(utc(2024, 1, 1, 0, 0)), Some(change));
    assert_eq!(clock.offset_minutes_at(Timestamp(change.0 - 1)), 60);
    assert_eq!(clock.offset_minutes_at(change), 120);
    // 02:30 does not exist that night: the wall clock jumps from 01:59:59.999 to 03:00.
    let sunday = LocalDate::from_ymd(2024, 3, 31).unwrap().0 * 86_400_000;
    assert_eq!(local_ms(&clock, Timestamp(change.0 - 1)), sunday + 2 * HOUR - 1);
    assert_eq!(local_ms(&clock, change), sunday + 3 * HOUR);
    // Asked for 02:30, the instant under the winter offset: which reads 03:30.
    let missing = instant_of_local(&clock, sunday + 2 * HOUR + HOUR / 2);
    assert_eq!(missing, utc(2024, 3, 31, 1, 30));
    assert_eq!(local_ms(&clock, missing), sunday + 3 * HOUR + HOUR / 2);
    // The day has 23 hours.
    let days = LocalDays(clock);
    let start = days.next_day_start(utc(2024, 3, 30, 12, 0));
    assert_eq!((start, days.next_day_start(start)), (utc(2024, 3, 30, 23, 0), utc(2024, 3, 31, 22, 0)));
}

#[test]
fn berlin_falls_back_on_the_last_sunday_of_october() {
    let clock = berlin();
    let change = utc(2024, 10, 27, 1, 0);
    assert_eq!(clock.next_change_after(utc(2024, 7, 1, 0, 0)), Some(change));
    // The strict "after": asked at the change, the next one is in March.
    assert_eq!(clock.next_change_after(change), Some(utc(2025, 3, 30, 1, 0)));
    // 02:30 happens twice: at 00:30 and at 01:30 UTC.
    let sunday = LocalDate::from_ymd(2024, 10, 27).unwrap().0 * 86_400_000;
    let twice = sunday + 2 * HOUR + HOUR / 2;
    assert_eq!(local_ms(&clock, utc(2024, 10, 27, 0, 30)), twice);
    assert_eq!(local_ms(&clock, utc(2024, 10, 27, 1, 30)), twice);
    // The day has 25 hours.
    let days = LocalDays(clock);
    let start = days.next_day_start(utc(2024, 10, 26, 12, 0));
    assert_eq!((start, days.next_day_start(start)), (utc(2024, 10, 26, 22, 0), utc(2024, 10, 27, 23, 0)));
}

#[test]
fn borders_between_zones() {
    let winter = utc(2024, 1, 15, 12, 0);
    let summer = utc(2024, 7, 15, 12, 0);
    // Same offset, other zone: Strasbourg and Kehl across the Rhine; Hendaye and Irun across the Bidasoa.
    assert_eq!(zone(48.5734, 7.7521, winter), ("Europe/Paris", 60));
    assert_eq!(zone(48.5700, 7.8150, winter), ("Europe/Berlin", 60));
    assert_eq!(zone(43.3590, -1.7660, summer), ("Europe/Paris", 120));
    assert_eq!(zone(43.3380, -1.7890, summer), ("Europe/Madrid", 120));
    // Another offset: Badajoz (Spain) and Elvas (Portugal), 10 km apart.
    assert_eq!(zone(38.8794, -6.9707, winter), ("Europe/Madrid", 60));
    assert_eq!(zone(38.8810, -7.1630, winter), ("Europe/Lisbon", 0));
    // El Paso and Ciudad Juárez across the Rio Grande: both keep US DST.
    assert_eq!(zone(31.7619, -106.4850, winter), ("America/Denver", -420));
    assert_eq!(zone(31.6904, -106.4245, winter), ("America/Ciudad_Juarez", -420));
    assert_eq!(zone(31.7619, -106.4850, summer).1, -360);
    assert_eq!(zone(31.6904, -106.4245, summer).1, -360);
    // Singapore and Johor Bahru across the strait: +8, no DST.
    assert_eq!(zone(1.2903, 103.8520, summer), ("Asia/Singapore", 480));
    let (johor, offset) = zone(1.4927, 103.7414, summer);
    assert_ne!(johor, "Asia/Singapore");
    assert_eq!(offset, 480);
}

#[test]
fn open_sea_is_in_the_nautical_zone() {
    // Mid-Atlantic, 40° W: UTC-3.
    assert_eq!(zone(30.0, -40.0, utc(2024, 7, 15, 12, 0)), ("Etc/GMT+3", -180));
    // The Bay of Biscay beyond the territorial sea, 4.6° W: UTC.
    assert_eq!(zone(46.2747, -4.5706, utc(2024, 7, 15, 12, 0)), ("Etc/GMT", 0));
}

#[test]
fn nautical_zones_by_longitude() {
    assert_eq!(nautical_zone(0.0), "Etc/GMT");
    assert_eq!(nautical_zone(7.49), "Etc/GMT");
    assert_eq!(nautical_zone(7.51), "Etc/GMT-1");
    assert_eq!(nautical_zone(-40.0), "Etc/GMT+3");
    assert_eq!(nautical_zone(179.9), "Etc/GMT-12");
    assert_eq!(nautical_zone(-179.9), "Etc/GMT+12");
}

#[test]
fn across_the_antimeridian() {
    // Taveuni, Fiji, on both sides of 180°: one zone, +13 in the DST of 2019/20, +12 in July.
    for lon in [179.97, -179.95] {
        assert_eq!(zone(-16.83, lon, utc(2019, 12, 15, 0, 0)), ("Pacific/Fiji", 780), "{lon}");
        assert_eq!(zone(-16.83, lon, utc(2020, 7, 1, 0, 0)), ("Pacific/Fiji", 720), "{lon}");
    }
    // Samoa moved west of the date line in 2011; American Samoa, 100 km away, did not.
    let july = utc(2024, 7, 1, 0, 0);
    assert_eq!(zone(-13.8333, -171.7667, july), ("Pacific/Apia", 780));
    assert_eq!(zone(-14.2756, -170.7020, july), ("Pacific/Pago_Pago", -660));
    // The same instant is on different dates there.
    let apia = ZoneClock { zones: zones(), zone: zones().zone_at(at(-13.8333, -171.7667)) };
    let pago = ZoneClock { zones: zones(), zone: zones().zone_at(at(-14.2756, -170.7020)) };
    let noon = utc(2024, 7, 1, 12, 0);
    assert_eq!(LocalDays(apia).day_of(noon), LocalDate::from_ymd(2024, 7, 2).unwrap());
    assert_eq!(LocalDays(pago).day_of(noon), LocalDate::from_ymd(2024, 7, 1).unwrap());
    // Kiribati's Line Islands: +14.
    assert_eq!(zone(1.87, -157.43, july), ("Pacific/Kiritimati", 840));
}

#[test]
fn instants_outside_jiffs_range_saturate() {
    let clock = berlin();
    assert_eq!(clock.offset_minutes_at(Timestamp(i64::MAX)), 60);
    // Local mean time in 1800: +53:28, rounded to whole minutes.
    assert_eq!(clock.offset_minutes_at(Timestamp(i64::MIN)), 53);
}

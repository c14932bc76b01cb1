//! Export → import is an exact round trip for every export format, for any
//! fix polo can hold (property test), and importing twice yields the same fixes.

use polo_domain::{Coord, Extras, Fix, Interval, Motion, SourceFormat, Timestamp};
use polo_formats::export::{ExportFormat, Exporter};
use polo_formats::{ImportOptions, Reject, Sink, import};
use proptest::prelude::*;

#[derive(Default)]
struct Collect {
    fixes: Vec<(Fix, Option<String>)>,
    rejects: Vec<Reject>,
}

impl Sink for Collect {
    fn point(&mut self, fix: Fix, device: Option<&str>) {
        self.fixes.push((fix, device.map(str::to_owned)));
    }
    fn interval(&mut self, _interval: Interval, _device: Option<&str>) {}
    fn reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }
}

fn motion() -> impl Strategy<Value = Option<Motion>> {
    proptest::option::of((1u8..=9).prop_map(|c| Motion::from_code(c).unwrap()))
}

fn source() -> impl Strategy<Value = SourceFormat> {
    (0u8..14).prop_map(SourceFormat::from_code)
}

fn extras() -> impl Strategy<Value = Option<Extras>> {
    proptest::option::of(("[a-z]{1,8}", "[ -~]{0,20}", -1000i64..1000).prop_map(|(key, text, n)| {
        let value = serde_json::to_string(&text).unwrap();
        // `k` keeps the key apart from `n` and `list`: duplicate keys are rejects.
        Extras::from_json_object(format!("{{\"k{key}\":{value},\"n\":{n},\"list\":[1,{{\"deep\":true}}]}}"))
    }))
}

prop_compose! {
    fn fix()(
        time in 946_684_800_000i64..1_800_000_000_000,
        offset in proptest::option::of(-720i16..=840),
        zone_assumed in any::<bool>(),
        lat in -899_999_999i32..=899_999_999,
        lon in -1_799_999_999i32..=1_799_999_999,
        altitude_cm in proptest::option::of(-50_000i32..900_000),
        horizontal_accuracy_cm in proptest::option::of(0u32..10_000_000),
        vertical_accuracy_cm in proptest::option::of(0u32..1_000_000),
        speed_cm_s in proptest::option::of(0u32..100_000),
        course_centideg in proptest::option::of(0u16..36_000),
        battery_percent in proptest::option::of(0u8..=100),
        motion in motion(),
        source in source(),
        extras in extras(),
    ) -> Fix {
        let coord = Coord { lat_e7: if lat == 0 && lon == 0 { 1 } else { lat }, lon_e7: lon };
        Fix {
            time: Timestamp(time),
            utc_offset_minutes: offset,
            zone_assumed: offset.is_none() && zone_assumed,
            coord,
            altitude_cm,
            horizontal_accuracy_cm,
            vertical_accuracy_cm,
            speed_cm_s,
            course_centideg,
            battery_percent,
            motion,
            source,
            extras,
        }
    }
}

fn export_all(format: ExportFormat, device: &str, fixes: &[Fix]) -> Vec<u8> {
    let mut exporter = Exporter::new(format, Vec::new()).unwrap();
    for fix in fixes {
        exporter.write(device, fix).unwrap();
    }
    exporter.finish().unwrap()
}

fn import_all(bytes: &[u8]) -> Collect {
    let mut sink = Collect::default();
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    import(bytes, &options, &mut sink).unwrap();
    sink
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn export_then_import_gives_identical_points(fixes in proptest::collection::vec(fix(), 1..20)) {
        for format in [ExportFormat::Gpx, ExportFormat::Geojson, ExportFormat::Csv] {
            let bytes = export_all(format, "phone, \"the\" <one>", &fixes);
            let back = import_all(&bytes);
            prop_assert!(back.rejects.is_empty(), "{format:?}: {:?}", back.rejects);
            let got: Vec<_> = back.fixes.iter().map(|(f, _)| f.clone()).collect();
            prop_assert_eq!(&got, &fixes, "{:?} changed the points:\n{}", format, String::from_utf8_lossy(&bytes));
            for (_, device) in &back.fixes {
                prop_assert_eq!(device.as_deref(), Some("phone, \"the\" <one>"));
            }
            // Importing the export of the import gives the same bytes: a fixed point.
            prop_assert_eq!(export_all(format, "phone, \"the\" <one>", &got), bytes);
        }
    }
}

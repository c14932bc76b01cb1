//! iOS on-device Timeline export (`location-history.json`): a bare
//! top-level array of `{startTime, endTime, visit|activity|timelinePath|timelineMemory}`.
//!
//! It is the Android export's data in other spellings (formats.md §1.6), so
//! the entries go through the same segment code as Android
//! ([`super::android::Android`]) with the iOS source, which accepts both:
//! * every scalar is a string (`"probability":"0.950077"`,
//!   `"hierarchyLevel":"0"`), read by the lenient number helpers;
//! * coordinates are `"geo:lat,lng"` texts, and `placeLocation` / `start` /
//!   `end` are texts rather than objects holding `latLng`;
//! * the place id key is `placeID`;
//! * path points have no time of their own: the time is the window's
//!   `startTime` plus `durationMinutesOffsetFromStartTime` minutes (string or
//!   number), so fixes have minute resolution and carry the window's offset;
//!   negative offsets are rejected with a reason;
//! * `timelineMemory` is flat (`destinations[].identifier` is a bare string);
//! * entries use different UTC offsets within one file;
//! * identical points at the same offset repeat and are dropped like
//!   Android's (bounded recent window).

use super::android::Android;
use crate::{ImportOptions, Sink};

/// State kept across the entries of one file.
pub(super) struct Ios(Android);

impl Default for Ios {
    fn default() -> Self {
        Self(Android::new(polo_domain::SourceFormat::GoogleIosTimeline))
    }
}

impl Ios {
    /// Imports one entry of the top-level array.
    pub(super) fn element(&mut self, options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        if let Err(why) = crate::json_keys::check(raw) {
            return super::value::reject(sink, offset, why, raw);
        }
        self.0.segment(options, sink, offset, raw);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::import_str;
    use crate::Format;
    use polo_domain::{IntervalKind, SourceFormat};

    #[test]
    fn string_scalars_geo_uris_and_place_id_capital_id() {
        let text = r#"[{"endTime":"2023-08-27T17:04:26.999-05:00","startTime":"2023-08-27T15:48:56.000-05:00",
            "visit":{"hierarchyLevel":"1","topCandidate":{"probability":"0.785181","semanticType":"Unknown","placeID":"ChIJx",
              "placeLocation":"geo:27.720022,-97.347951"},"probability":"0.710000"}},
          {"endTime":"2023-08-27T18:00:00.000-05:00","startTime":"2023-08-27T17:05:00.000-05:00",
            "activity":{"start":"geo:55.5963490,24.7405147","end":"geo:55.6054870,24.7648727","distanceMeters":"1881.000000",
              "probability":"0.981911","topCandidate":{"type":"in passenger vehicle","probability":"0.000000"}}}]"#;
        let (format, got) = import_str(text);
        assert_eq!(format.unwrap(), Format::GoogleIosTimeline);
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        let [visit, activity] = &got.intervals[..] else { panic!() };
        assert_eq!((visit.kind, visit.level, visit.place_id.as_deref()), (IntervalKind::Visit, 1, Some("ChIJx")));
        assert_eq!((visit.confidence, visit.category.as_deref()), (Some(0.71), Some("Unknown")));
        assert_eq!(visit.start_coord.unwrap().lon_e7, -973_479_510);
        assert_eq!(visit.start_offset_minutes, Some(-300));
        assert_eq!(visit.source, SourceFormat::GoogleIosTimeline);
        assert_eq!((activity.distance_m, activity.category.as_deref()), (Some(1881.0), Some("in passenger vehicle")));
        assert_eq!(activity.end_coord.unwrap().lat_e7, 556_054_870);
    }

    #[test]
    fn path_points_are_timed_by_window_start_plus_minutes() {
        let text = r#"[{"endTime":"2023-08-28T00:00:00.000Z","startTime":"2023-08-27T22:00:00.000Z","timelinePath":[
            {"point":"geo:27.701123,-97.362988","durationMinutesOffsetFromStartTime":"4"},
            {"point":"geo:27.701123,-97.362988","durationMinutesOffsetFromStartTime":"4"},
            {"point":"geo:27.687173,-97.363743","durationMinutesOffsetFromStartTime":60},
            {"point":"geo:27.687173,-97.363743","durationMinutesOffsetFromStartTime":"-3"}]},
          {"endTime":"2023-08-27T17:04:26.999-05:00","startTime":"2023-08-27T15:00:00.000-05:00","timelinePath":[
            {"point":"geo:27.7,-97.3","durationMinutesOffsetFromStartTime":"1"}]}]"#;
        let (_, got) = import_str(text);
        let times: Vec<i64> = got.points.iter().map(|(f, _)| f.time.0).collect();
        let start = 1_693_173_600_000; // 2023-08-27T22:00:00Z
        assert_eq!(times, [start + 4 * 60_000, start + 60 * 60_000, start - 2 * 3_600_000 + 60_000]);
        assert_eq!(got.points[0].0.utc_offset_minutes, None);
        assert_eq!(got.points[2].0.utc_offset_minutes, Some(-300), "mixed offsets per entry");
        assert_eq!(got.rejects.len(), 1);
        assert!(got.rejects[0].reason.contains("negative"), "{}", got.rejects[0].reason);
    }

    #[test]
    fn flat_timeline_memory() {
        let text = r#"[{"endTime":"2023-09-02T23:25:59.000-06:00","startTime":"2023-08-27T14:48:56.000-06:00",
            "timelineMemory":{"destinations":[{"identifier":"ChIJs9"}],"distanceFromOriginKms":"1594"}}]"#;
        let (_, got) = import_str(text);
        let m = &got.intervals[0];
        assert_eq!((m.kind, m.category.as_deref()), (IntervalKind::Memory, Some("trip")));
        assert_eq!(
            m.extras.as_ref().unwrap().as_str(),
            r#"{"destinations":[{"identifier":"ChIJs9"}],"distanceFromOriginKms":"1594"}"#
        );
    }

    #[test]
    fn entries_without_a_kind_are_rejected() {
        let (_, got) =
            import_str(r#"[{"startTime":"2023-08-27T14:48:56.000-06:00","endTime":"2023-08-27T15:48:56.000-06:00"}]"#);
        assert_eq!(got.rejects.len(), 1);
    }
}

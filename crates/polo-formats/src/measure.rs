//! Measurement columns set with range checks that lose nothing.
//!
//! `Fix`'s setters leave a column empty when a value does not fit it (a
//! negative accuracy, a battery of 140 %, an altitude beyond ±21 000 km) and
//! fold a course of 720° to 0°. Importers that called them directly dropped
//! or changed such values without a word. [`set`] checks first: a value the
//! column cannot hold (a course must be within 0–360°) is not set, but kept
//! in the fix's extras under the source's own key, and counted in an
//! [`OutOfRange`] that the importer reports through
//! [`Sink::out_of_range`](crate::Sink::out_of_range). The point itself is
//! imported.

use polo_domain::Fix;

use crate::Sink;
use crate::extras::ExtrasBuilder;

/// A measurement column of a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    Altitude,
    Accuracy,
    VerticalAccuracy,
    Speed,
    Course,
    Battery,
}

impl Column {
    const ALL: [Self; 6] =
        [Self::Altitude, Self::Accuracy, Self::VerticalAccuracy, Self::Speed, Self::Course, Self::Battery];

    /// The name reported to the sink.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Altitude => "altitude",
            Self::Accuracy => "accuracy",
            Self::VerticalAccuracy => "vertical_accuracy",
            Self::Speed => "speed",
            Self::Course => "course",
            Self::Battery => "battery",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The columns of one record whose value was out of range.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfRange(u8);

impl OutOfRange {
    /// Tells the sink, one call per column.
    pub(crate) fn report(self, sink: &mut dyn Sink) {
        for column in Column::ALL {
            if self.0 & column.bit() != 0 {
                sink.out_of_range(column.name());
            }
        }
    }
}

/// Sets `column` of `fix` to `value` (in the column's unit: m, m/s, °, %).
/// A value the column cannot hold is kept in `extras` as `kept.0: kept.1`
/// (the source's key and value, in the source's unit) and noted in `out`.
pub(crate) fn set(
    fix: &mut Fix,
    column: Column,
    value: f64,
    kept: (&str, f64),
    extras: &mut ExtrasBuilder,
    out: &mut OutOfRange,
) {
    let fits = match column {
        Column::Altitude => {
            fix.altitude_cm = None;
            fix.set_altitude_m(value);
            fix.altitude_cm.is_some()
        }
        Column::Accuracy => {
            fix.horizontal_accuracy_cm = None;
            fix.set_horizontal_accuracy_m(value);
            fix.horizontal_accuracy_cm.is_some()
        }
        Column::VerticalAccuracy => {
            fix.vertical_accuracy_cm = None;
            fix.set_vertical_accuracy_m(value);
            fix.vertical_accuracy_cm.is_some()
        }
        Column::Speed => {
            fix.speed_cm_s = None;
            fix.set_speed_m_s(value);
            fix.speed_cm_s.is_some()
        }
        Column::Course => {
            fix.course_centideg = None;
            if value <= 360.0 {
                fix.set_course_deg(value);
            }
            fix.course_centideg.is_some()
        }
        Column::Battery => {
            fix.battery_percent = None;
            fix.set_battery_percent(value);
            fix.battery_percent.is_some()
        }
    };
    if !fits {
        extras.number(kept.0, kept.1);
        out.0 |= column.bit();
    }
}

/// [`set`] with the value kept under `key` as given.
pub(crate) fn set_as(
    fix: &mut Fix,
    column: Column,
    value: f64,
    key: &str,
    extras: &mut ExtrasBuilder,
    out: &mut OutOfRange,
) {
    set(fix, column, value, (key, value), extras, out);
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat, Timestamp};

    use super::*;

    #[test]
    fn values_out_of_range_are_kept_in_extras_and_noted() {
        let mut fix = Fix::new(Timestamp(1), Coord::from_degrees(1.0, 2.0).unwrap(), SourceFormat::Csv);
        let mut extras = ExtrasBuilder::new();
        let mut out = OutOfRange::default();
        set_as(&mut fix, Column::Course, 720.0, "heading", &mut extras, &mut out);
        set_as(&mut fix, Column::Accuracy, -5.0, "acc", &mut extras, &mut out);
        set_as(&mut fix, Column::Speed, 3.0, "vel", &mut extras, &mut out);
        set_as(&mut fix, Column::Battery, 140.0, "batt", &mut extras, &mut out);
        set_as(&mut fix, Column::Altitude, 1e12, "alt", &mut extras, &mut out);
        set_as(&mut fix, Column::VerticalAccuracy, 2.0, "vac", &mut extras, &mut out);
        assert_eq!((fix.course_centideg, fix.horizontal_accuracy_cm, fix.speed_cm_s), (None, None, Some(300)));
        assert_eq!((fix.battery_percent, fix.altitude_cm, fix.vertical_accuracy_cm), (None, None, Some(200)));
        assert_eq!(extras.finish().unwrap().as_str(), r#"{"heading":720,"acc":-5,"batt":140,"alt":1000000000000}"#);
        let mut names = Vec::new();
        struct Names<'a>(&'a mut Vec<&'static str>);
        impl Sink for Names<'_> {
            fn point(&mut self, _: Fix, _: Option<&str>) {}
            fn interval(&mut self, _: polo_domain::Interval, _: Option<&str>) {}
            fn reject(&mut self, _: crate::Reject) {}
            fn out_of_range(&mut self, field: &'static str) {
                self.0.push(field);
            }
        }
        out.report(&mut Names(&mut names));
        assert_eq!(names, ["altitude", "accuracy", "course", "battery"]);
        // 360° is north, as 0°.
        set_as(&mut fix, Column::Course, 360.0, "heading", &mut ExtrasBuilder::new(), &mut out);
        assert_eq!(fix.course_centideg, Some(0));
    }
}

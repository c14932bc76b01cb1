//! Small, allocation-free readers for JSON values borrowed from one element.
//!
//! Every JSON importer reads its element with `serde_json` into borrowed
//! [`RawValue`]s and picks the scalars it needs with these helpers, which
//! accept each value in any spelling seen in the wild (numbers as numbers or
//! as strings, timestamps as ISO text or epoch numbers). Nothing here builds a
//! `serde_json::Value` tree.

use std::borrow::Cow;
use std::collections::{HashSet, VecDeque};
use std::fmt;

use polo_domain::time::{ParsedTime, from_epoch_integer, from_epoch_number, parse_timestamp};
use polo_domain::{Coord, Timestamp};
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::extras::ExtrasBuilder;
use crate::{ImportOptions, Position, Reject, Sink};

/// A member name, borrowed from the element unless it contained escapes.
pub(crate) struct Key<'a>(pub(crate) Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// A JSON object as its members in source order, values left as raw text.
pub(crate) struct RawObject<'a> {
    pub(crate) members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjVisitor;
        impl<'de> Visitor<'de> for ObjVisitor {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawObject<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    members.push((k, v));
                }
                Ok(RawObject { members })
            }
        }
        deserializer.deserialize_map(ObjVisitor)
    }
}

impl<'a> RawObject<'a> {
    /// Reads an element's text as an object.
    pub(crate) fn from_slice(raw: &'a [u8]) -> Result<Self, String> {
        serde_json::from_slice(raw).map_err(|e| {
            if e.is_data() { "the record is not a JSON object".to_owned() } else { format!("invalid JSON: {e}") }
        })
    }

    /// Reads a member value as an object; `None` when it is something else.
    pub(crate) fn parse(raw: &'a RawValue) -> Option<Self> {
        serde_json::from_str(raw.get()).ok()
    }

    /// The value of the first member called `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The value of `key` read as an object.
    pub(crate) fn object(&self, key: &str) -> Option<RawObject<'a>> {
        self.get(key).and_then(Self::parse)
    }

    /// True when the object has a member called `key`.
    pub(crate) fn has(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    /// Adds every member not named in `skip` to `extras`, verbatim.
    pub(crate) fn extras_except(&self, skip: &[&str], extras: &mut ExtrasBuilder) {
        for (k, v) in &self.members {
            if !skip.contains(&k.as_ref()) {
                extras.raw(k, v.get());
            }
        }
    }

    /// The member names, for messages.
    pub(crate) fn key_list(&self) -> String {
        self.members.iter().map(|(k, _)| k.as_ref()).collect::<Vec<_>>().join(", ")
    }
}

/// The elements of a JSON array value; `None` when it is not an array.
pub(crate) fn array(raw: &RawValue) -> Option<Vec<&RawValue>> {
    serde_json::from_str(raw.get()).ok()
}

/// The content of a JSON string value, unescaped only when needed.
pub(crate) fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

/// A number, given as a JSON number or as a numeric string (`"0.95"`).
pub(crate) fn number(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let parsed = if let Some(s) = text.strip_prefix('"') {
        s.strip_suffix('"')?.trim().parse::<f64>().ok()
    } else {
        text.parse::<f64>().ok()
    };
    parsed.filter(|v| v.is_finite())
}

/// An integer, as a JSON number or numeric string; fractions are refused.
pub(crate) fn integer(raw: &RawValue) -> Option<i64> {
    let text = raw.get();
    let body = text.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(text).trim();
    body.parse::<i64>().ok().or_else(|| {
        // `5.0e8` or `"12.000000"`: accept whole numbers written as floats.
        #[allow(clippy::cast_possible_truncation)]
        body.parse::<f64>().ok().filter(|v| v.fract() == 0.0 && v.abs() < 9e15).map(|v| v as i64)
    })
}

/// A member's value as a number: `None` when absent or not numeric.
pub(crate) fn num_of(obj: &RawObject<'_>, key: &str) -> Option<f64> {
    obj.get(key).and_then(number)
}

/// A member's value as a string: `None` when absent or not a string.
pub(crate) fn str_of<'a>(obj: &RawObject<'a>, key: &str) -> Option<Cow<'a, str>> {
    obj.get(key).and_then(string)
}

/// Reads a timestamp value: ISO text, epoch text, or an epoch number.
///
/// # Errors
/// A reason naming `field`.
pub(crate) fn time(raw: &RawValue, field: &str) -> Result<ParsedTime, String> {
    let text = raw.get();
    let plain = |time| ParsedTime { time, offset_minutes: None, zone_assumed: false };
    if text.starts_with('"') {
        let s = string(raw).ok_or_else(|| format!("{field}: unreadable string {text}"))?;
        parse_timestamp(&s).map_err(|e| format!("{field}: {e}"))
    } else if let Ok(v) = text.parse::<i64>() {
        from_epoch_integer(v).map(plain).ok_or_else(|| format!("{field}: epoch number {text} is out of range"))
    } else if let Ok(v) = text.parse::<f64>() {
        from_epoch_number(v).map(plain).ok_or_else(|| format!("{field}: epoch number {text} is out of range"))
    } else {
        Err(format!("{field}: expected a timestamp, found {}", shorten(text)))
    }
}

/// Reads Google's `…Ms` fields: epoch milliseconds as a string or number.
/// Anything else falls back to [`time`].
///
/// # Errors
/// A reason naming `field`.
pub(crate) fn time_ms(raw: &RawValue, field: &str) -> Result<ParsedTime, String> {
    let text = raw.get();
    let body = text.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(text);
    match body.parse::<i64>() {
        Ok(ms) => Ok(ParsedTime { time: Timestamp(ms), offset_minutes: None, zone_assumed: false }),
        Err(_) => time(raw, field),
    }
}

/// Checks a fix time against the import options, naming `field`.
///
/// # Errors
/// The reason for the reject.
pub(crate) fn check_time(options: &ImportOptions, time: Timestamp, field: &str) -> Result<(), String> {
    options.check_time(time).map_err(|e| format!("{field}: {e}"))
}

/// Builds a coordinate from E7 members of `obj`; `None` when both are absent.
pub(crate) fn e7_of(obj: &RawObject<'_>, lat_key: &str, lon_key: &str) -> Option<Result<Coord, String>> {
    let (lat, lon) = (obj.get(lat_key), obj.get(lon_key));
    if lat.is_none() && lon.is_none() {
        return None;
    }
    Some(match (lat.and_then(integer), lon.and_then(integer)) {
        (Some(lat), Some(lon)) => Coord::from_e7(lat, lon).map_err(|e| format!("{lat_key}/{lon_key}: {e}")),
        _ => Err(format!("{lat_key}/{lon_key}: missing or not an integer")),
    })
}

/// Reports a record that could not be used.
pub(crate) fn reject(sink: &mut dyn Sink, offset: u64, reason: impl Into<String>, raw: &[u8]) {
    sink.reject(Reject::new(Position::Byte(offset), reason, &String::from_utf8_lossy(raw)));
}

/// Shortens a value for a message.
pub(crate) fn shorten(text: &str) -> String {
    if text.len() <= 80 {
        return text.to_owned();
    }
    let mut end = 80;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Converts a probability that may be 0–1 or 0–100 into 0–1.
pub(crate) fn probability(value: f64) -> Option<f64> {
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    Some(if value > 1.0 { (value / 100.0).min(1.0) } else { value })
}

/// Remembers the most recent `(time, coord)` pairs to drop repeated path
/// points cheaply, in memory bounded by [`RecentFixes::CAPACITY`].
///
/// Google's timeline paths repeat points within a window and across the
/// overlapping windows next to it; those repeats sit close together in the
/// file, so a bounded window catches them. Repeats further apart reach the
/// store, which deduplicates on identity anyway.
#[derive(Default)]
pub(crate) struct RecentFixes {
    order: VecDeque<(i64, i32, i32)>,
    set: HashSet<(i64, i32, i32)>,
}

impl RecentFixes {
    /// How many recent fixes are remembered.
    pub(crate) const CAPACITY: usize = 16 * 1024;

    /// True (and remembered) when this fix was not seen recently.
    pub(crate) fn first_time(&mut self, time: Timestamp, coord: Coord) -> bool {
        let key = (time.0, coord.lat_e7, coord.lon_e7);
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        let old = if self.order.len() > Self::CAPACITY { self.order.pop_front() } else { None };
        if let Some(old) = old {
            self.set.remove(&old);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn scalars_in_both_spellings() {
        assert_eq!(number(&raw("0.5")), Some(0.5));
        assert_eq!(number(&raw("\"0.950077\"")), Some(0.950_077));
        assert_eq!(number(&raw("\"x\"")), None);
        assert_eq!(integer(&raw("\"1881.000000\"")), Some(1881));
        assert_eq!(integer(&raw("-1234")), Some(-1234));
        assert_eq!(string(&raw(r#""48.8566\u00b0""#)).as_deref(), Some("48.8566°"));
        assert_eq!(string(&raw("12")), None);
    }

    #[test]
    fn times_in_every_form() {
        let iso = time(&raw("\"2013-04-15T06:31:26Z\""), "t").unwrap();
        assert_eq!(iso.time.0, 1_366_007_486_000);
        assert_eq!(time(&raw("1366007486"), "t").unwrap().time.0, 1_366_007_486_000);
        assert_eq!(time(&raw("\"1366007486\""), "t").unwrap().time.0, 1_366_007_486_000);
        assert_eq!(time_ms(&raw("\"1366007486000\""), "t").unwrap().time.0, 1_366_007_486_000);
        assert_eq!(time_ms(&raw("1366007486000"), "t").unwrap().time.0, 1_366_007_486_000);
        assert!(time(&raw("true"), "when").unwrap_err().starts_with("when:"));
    }

    #[test]
    fn recent_fixes_forget_old_entries() {
        let c = Coord::from_degrees(1.0, 2.0).unwrap();
        let mut r = RecentFixes::default();
        assert!(r.first_time(Timestamp(1), c));
        assert!(!r.first_time(Timestamp(1), c));
        for i in 0..=RecentFixes::CAPACITY {
            r.first_time(Timestamp(10 + i64::try_from(i).unwrap()), c);
        }
        assert!(r.first_time(Timestamp(1), c));
    }
}

//! Small helpers for reading tracker JSON leniently and verbatim.
//!
//! Tracker apps disagree on number spellings (ints, floats, numeric strings)
//! and polo keeps unknown members byte for byte in a fix's extras, so the
//! parsers walk an object's members as raw JSON text in source order instead
//! of going through `serde_json::Value` (which would sort keys and re-print
//! numbers).

use polo_domain::Timestamp;
use serde_json::value::RawValue;

pub(crate) use polo_formats::raw_object::Members;

/// True for JSON `null`.
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// A JSON number, or a string holding one; `None` for anything else and for
/// non-finite values.
pub(crate) fn number(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A JSON string's value.
pub(crate) fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// A JSON boolean, or the strings `"true"`/`"false"`.
pub(crate) fn boolean(raw: &RawValue) -> Option<bool> {
    match raw.get().trim_matches('"') {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// Epoch seconds as a number or numeric string, fractions tolerated.
pub(crate) fn epoch_seconds(raw: &RawValue) -> Option<Timestamp> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text).trim();
    if let Ok(s) = text.parse::<i64>() {
        return Timestamp::from_unix_seconds(s);
    }
    let s = text.parse::<f64>().ok().filter(|v| v.is_finite() && v.abs() < 1e12)?;
    // Range-checked above.
    #[allow(clippy::cast_possible_truncation)]
    Some(Timestamp((s * 1000.0).round() as i64))
}

/// Raw JSON text shortened for an error message.
pub(crate) fn shown(raw: &RawValue) -> String {
    let text = raw.get();
    if text.len() <= 64 {
        return text.to_owned();
    }
    let mut end = 64;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn numbers_in_all_spellings() {
        assert_eq!(number(&raw("12")), Some(12.0));
        assert_eq!(number(&raw("12.5")), Some(12.5));
        assert_eq!(number(&raw("\" 12.5 \"")), Some(12.5));
        assert_eq!(number(&raw("\"x\"")), None);
        assert_eq!(number(&raw("null")), None);
        assert_eq!(epoch_seconds(&raw("\"1763699990\"")), Some(Timestamp(1_763_699_990_000)));
        assert_eq!(epoch_seconds(&raw("1763699990.5")), Some(Timestamp(1_763_699_990_500)));
        assert_eq!(boolean(&raw("\"true\"")), Some(true));
    }
}

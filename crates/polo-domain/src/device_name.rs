//! The one rule for device names, applied wherever a name enters polo: the
//! HTTP ingest routes (OwnTracks `X-Limit-D`, `?d=` and topic, Overland's
//! `device_id`, OsmAnd's `id`, the batch API), `POST /api/v1/devices`, the
//! MQTT subscriber, `polo token create --device` and `polo import --device`.
//!
//! Why a rule at all: a device name ends up in OwnTracks topics and friends
//! replies, MQTT topics, export file names, log lines and the web app. So a
//! name is at most [`MAX_DEVICE_NAME_CHARS`] characters (surrounding white
//! space included; it is trimmed off, and something must remain), and it has
//!
//! * no control characters (`char::is_control`: NUL, newlines, escapes) and
//!   no Unicode line or paragraph separators, which would split log lines
//!   and protocol headers;
//! * none of `/`, `+`, `#`: MQTT's level separator and wildcards, so a name
//!   always fills exactly one topic level; and no `\`, the other path
//!   separator;
//! * no leading `.`: with no separators allowed, that rules out `.`, `..`
//!   and hidden files when a name becomes part of a path;
//! * none of `<`, `>`: no tracker app needs them, and a name without them
//!   cannot open markup in any place that forgets to escape (the web app
//!   and the XML exports do escape). `&` and quotes stay allowed: real
//!   names such as "Anna's phone" or "Car & Van" use them.

/// The longest device name, in characters.
pub const MAX_DEVICE_NAME_CHARS: usize = 64;

/// Why a device name was refused. The messages complete "the device name …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceNameError {
    /// Nothing but white space.
    #[error("is empty")]
    Empty,
    /// Over [`MAX_DEVICE_NAME_CHARS`].
    #[error("is {chars} characters long; the most is {MAX_DEVICE_NAME_CHARS}")]
    TooLong {
        /// The name's length in characters.
        chars: usize,
    },
    /// A control character or a line separator.
    #[error("contains the control character U+{code:04X} at character {at}")]
    Control {
        /// The character's code point.
        code: u32,
        /// Its 1-based position in the trimmed name.
        at: usize,
    },
    /// A character polo reserves.
    #[error("contains {found:?} at character {at}; '/', '+', '#', '\\', '<' and '>' are not allowed")]
    Reserved {
        /// The character.
        found: char,
        /// Its 1-based position in the trimmed name.
        at: usize,
    },
    /// Starts with `.`.
    #[error("starts with '.'")]
    LeadingDot,
}

/// Checks a device name and returns it trimmed of surrounding white space.
///
/// # Errors
/// [`DeviceNameError`] saying what is wrong and where.
pub fn validate_device_name(raw: &str) -> Result<&str, DeviceNameError> {
    let chars = raw.chars().count();
    if chars > MAX_DEVICE_NAME_CHARS {
        return Err(DeviceNameError::TooLong { chars });
    }
    let name = raw.trim();
    if name.is_empty() {
        return Err(DeviceNameError::Empty);
    }
    for (i, c) in name.chars().enumerate() {
        let at = i + 1;
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(DeviceNameError::Control { code: u32::from(c), at });
        }
        if matches!(c, '/' | '+' | '#' | '\\' | '<' | '>') {
            return Err(DeviceNameError::Reserved { found: c, at });
        }
    }
    if name.starts_with('.') {
        return Err(DeviceNameError::LeadingDot);
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass_trimmed() {
        for (raw, want) in [
            ("phone", "phone"),
            ("  Anna's phone ", "Anna's phone"),
            ("Car & Van", "Car & Van"),
            ("Pixel 8 (work)", "Pixel 8 (work)"),
            ("téléphone-ÄÖ_日本", "téléphone-ÄÖ_日本"),
            ("a.b", "a.b"),
        ] {
            assert_eq!(validate_device_name(raw), Ok(want), "{raw:?}");
        }
        let longest = "x".repeat(MAX_DEVICE_NAME_CHARS);
        assert_eq!(validate_device_name(&longest), Ok(longest.as_str()));
        // Characters, not bytes: 64 two-byte characters are fine.
        let wide = "é".repeat(MAX_DEVICE_NAME_CHARS);
        assert!(validate_device_name(&wide).is_ok());
    }

    #[test]
    fn the_attack_review_names_are_refused_with_a_reason() {
        assert_eq!(validate_device_name("ph\0one"), Err(DeviceNameError::Control { code: 0, at: 3 }));
        assert_eq!(validate_device_name("a\nb"), Err(DeviceNameError::Control { code: 10, at: 2 }));
        assert_eq!(validate_device_name("a\u{2028}b"), Err(DeviceNameError::Control { code: 0x2028, at: 2 }));
        assert_eq!(validate_device_name("<script>"), Err(DeviceNameError::Reserved { found: '<', at: 1 }));
        assert_eq!(validate_device_name("../../etc/passwd"), Err(DeviceNameError::Reserved { found: '/', at: 3 }));
        assert_eq!(validate_device_name(".."), Err(DeviceNameError::LeadingDot));
        assert_eq!(validate_device_name(".hidden"), Err(DeviceNameError::LeadingDot));
        assert_eq!(validate_device_name("a+b"), Err(DeviceNameError::Reserved { found: '+', at: 2 }));
        assert_eq!(validate_device_name("a#"), Err(DeviceNameError::Reserved { found: '#', at: 2 }));
        assert_eq!(validate_device_name("a\\b"), Err(DeviceNameError::Reserved { found: '\\', at: 2 }));
        assert_eq!(validate_device_name(" \t "), Err(DeviceNameError::Empty));
        let huge = "x".repeat(10_000);
        assert_eq!(validate_device_name(&huge), Err(DeviceNameError::TooLong { chars: 10_000 }));
        assert_eq!(validate_device_name(&huge).unwrap_err().to_string(), "is 10000 characters long; the most is 64");
    }
}

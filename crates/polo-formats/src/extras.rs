//! Building the compact JSON object that keeps a source's extra fields.

use polo_domain::Extras;

/// Accumulates `key: value` members into one compact JSON object.
///
/// Values are either raw JSON text taken verbatim from the source (cheapest:
/// no re-encoding) or strings and numbers the importer produced.
#[derive(Debug, Default)]
pub struct ExtrasBuilder {
    buf: String,
}

impl ExtrasBuilder {
    /// An empty builder.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        push_json_string(&mut self.buf, key);
        self.buf.push(':');
    }

    /// Adds a member whose value is JSON text (an object, array, number...)
    /// taken verbatim from the source. Whitespace outside strings is removed,
    /// and a number beyond the range of a double (`1e999`: valid JSON syntax
    /// that JSON readers refuse) becomes a string of its text.
    pub fn raw(&mut self, key: &str, json: &str) {
        self.key(key);
        push_checked(&mut self.buf, json, true);
    }

    /// Adds a member whose value is JSON text that is already compact (no
    /// whitespace outside strings), appended as is: the fast path for
    /// importers that compact while reading (the JSON splitter does).
    pub(crate) fn raw_compact(&mut self, key: &str, json: &str) {
        if key.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            self.key(key);
        } else {
            self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
            self.buf.push('"');
            self.buf.push_str(key);
            self.buf.push_str("\":");
        }
        push_checked(&mut self.buf, json, false);
    }

    /// An empty builder writing into `buf` (cleared), keeping its capacity:
    /// with [`ExtrasBuilder::finish_exact`] one buffer serves every record.
    pub(crate) fn reusing(mut buf: String) -> Self {
        buf.clear();
        Self { buf }
    }

    /// [`ExtrasBuilder::finish`] into an exactly sized allocation, handing
    /// the working buffer back for the next record. Shrinking the working
    /// buffer instead (what `finish` does) costs a `realloc` per record and,
    /// when many threads import, leaves the allocator fragmented.
    pub(crate) fn finish_exact(mut self) -> (Option<Extras>, String) {
        if self.buf.is_empty() {
            return (None, self.buf);
        }
        self.buf.push('}');
        (Some(Extras::from_json_object(self.buf.as_str())), self.buf)
    }

    /// Adds a string member.
    pub fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(&mut self.buf, value);
    }

    /// Adds a number member; non-finite numbers become `null`.
    pub fn number(&mut self, key: &str, value: f64) {
        self.key(key);
        if value.is_finite() {
            self.buf.push_str(&value.to_string());
        } else {
            self.buf.push_str("null");
        }
    }

    /// Adds every member of a JSON object text (e.g. polo's own exported
    /// `extras`), verbatim.
    pub fn merge_object(&mut self, object_json: &str) {
        let inner = object_json.trim();
        let inner = inner.strip_prefix('{').and_then(|s| s.strip_suffix('}')).unwrap_or("").trim();
        if inner.is_empty() {
            return;
        }
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        push_checked(&mut self.buf, inner, true);
    }

    /// True when nothing was added.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The finished object, or `None` when empty.
    #[must_use]
    pub fn finish(mut self) -> Option<Extras> {
        if self.buf.is_empty() {
            return None;
        }
        self.buf.push('}');
        Some(Extras::from_json_object(self.buf))
    }
}

/// Appends `value` as a JSON string literal.
pub fn push_json_string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends JSON text, without the whitespace outside strings when
/// `strip_space`, writing each number that does not fit a double (`1e999`,
/// `533369e3690550`) as a string of its text, and each escaped lone UTF-16
/// surrogate (`"\udfdd"`) as U+FFFD: the syntax allows both, but `serde_json`
/// and most readers refuse such a document, so the extras would be unreadable.
fn push_checked(out: &mut String, json: &str, strip_space: bool) {
    let b = json.as_bytes();
    // `json[copied..i]` is still to be appended.
    let (mut copied, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'"' => {
                // Past the string: its closing quote is the first one not escaped.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
                        Some(p) if b[i + p] == b'\\' => {
                            let at = i + p;
                            i = at + 2;
                            if b.get(at + 1) == Some(&b'u')
                                && let Some(unit) = hex4(b, at + 2)
                            {
                                i = at + 6;
                                let low = |j: usize| {
                                    b.get(j..j + 2) == Some(&b"\\u"[..]) && hex4(b, j + 2).is_some_and(is_low)
                                };
                                if is_high(unit) && low(at + 6) {
                                    i = at + 12;
                                } else if is_high(unit) || is_low(unit) {
                                    // A lone surrogate: JSON readers refuse the document.
                                    out.push_str(&json[copied..at]);
                                    out.push_str("\\ufffd");
                                    copied = i;
                                }
                            }
                        }
                        Some(p) => {
                            i += p + 1;
                            break;
                        }
                        None => {
                            i = b.len();
                            break;
                        }
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                    i += 1;
                }
                let number = &json[start..i];
                if !number.parse::<f64>().is_ok_and(f64::is_finite) {
                    out.push_str(&json[copied..start]);
                    push_json_string(out, number);
                    copied = i;
                }
            }
            c if strip_space && c.is_ascii_whitespace() => {
                out.push_str(&json[copied..i]);
                i += 1;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&json[copied..]);
}

/// The four hex digits at `at`, as a UTF-16 unit.
fn hex4(b: &[u8], at: usize) -> Option<u16> {
    let digits = b.get(at..at + 4)?;
    u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok().filter(|_| digits.iter().all(u8::is_ascii_hexdigit))
}

fn is_high(unit: u16) -> bool {
    (0xD800..0xDC00).contains(&unit)
}

fn is_low(unit: u16) -> bool {
    (0xDC00..0xE000).contains(&unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_compact_appends_verbatim_and_escapes_odd_keys() {
        let mut b = ExtrasBuilder::reusing(String::from("left over"));
        b.raw_compact("wifi", r#"[{"mac":"1 2"}]"#);
        b.raw_compact("a\"b", "1");
        let (extras, buf) = b.finish_exact();
        assert_eq!(extras.unwrap().as_str(), r#"{"wifi":[{"mac":"1 2"}],"a\"b":1}"#);
        assert!(ExtrasBuilder::reusing(buf).finish_exact().0.is_none());
    }

    #[test]
    fn builds_compact_objects() {
        let mut b = ExtrasBuilder::new();
        b.raw("wifi", "[ {\"mac\": \"1 2\" } ]");
        b.string("src", "gps\"x");
        b.number("hr", 120.0);
        b.merge_object("{ \"a\": 1 }");
        let e = b.finish().unwrap();
        assert_eq!(e.as_str(), r#"{"wifi":[{"mac":"1 2"}],"src":"gps\"x","hr":120,"a":1}"#);
        let parsed: serde_json::Value = serde_json::from_str(e.as_str()).unwrap();
        assert_eq!(parsed["hr"], 120);
        assert!(ExtrasBuilder::new().finish().is_none());
    }

    /// Found by the google_records fuzz target: a number beyond the range of
    /// a double, copied verbatim, made the extras unreadable for serde_json.
    #[test]
    fn numbers_beyond_a_double_become_strings() {
        let mut b = ExtrasBuilder::new();
        b.raw_compact("a", "533369e3690550");
        b.raw("b", r#"[ 1e999 , -2E+400, {"c": 1.5e3, "d\"1e999": "1e999"} ]"#);
        b.merge_object(r#"{ "e": 1e-400, "f": 12 }"#);
        let e = b.finish().unwrap();
        assert_eq!(
            e.as_str(),
            r#"{"a":"533369e3690550","b":["1e999","-2E+400",{"c":1.5e3,"d\"1e999":"1e999"}],"e":1e-400,"f":12}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(e.as_str()).unwrap();
        assert_eq!(parsed["b"][2]["c"], 1500.0);
    }

    /// Found by the ingest_owntracks fuzz target: a lone surrogate escape,
    /// copied verbatim, made the extras unreadable for serde_json.
    #[test]
    fn lone_surrogate_escapes_become_replacement_characters() {
        let mut b = ExtrasBuilder::new();
        b.raw_compact("a", r#""x\udfddy""#);
        b.raw("b", r#"["\ud83d\ude00", "\ud83d", "\\udfdd", "\ud83d\u0041", "\u00e9"]"#);
        let e = b.finish().unwrap();
        assert_eq!(e.as_str(), r#"{"a":"x\ufffdy","b":["\ud83d\ude00","\ufffd","\\udfdd","\ufffd\u0041","\u00e9"]}"#);
        let parsed: serde_json::Value = serde_json::from_str(e.as_str()).unwrap();
        assert_eq!(parsed["b"][0], "😀");
    }
}

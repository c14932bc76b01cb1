//! The one rule for duplicate JSON keys: a record that names a key twice
//! in the same object, at any depth, is rejected.
//!
//! JSON leaves duplicate keys undefined and parsers disagree: `serde_json`'s
//! `Value` keeps the last, a derived struct fails, polo's member walkers kept
//! the first or copied both into the extras. So the same file imported
//! differently depending on its format. Guessing which `latitudeE7` was
//! meant is not polo's job: every JSON importer (Google Records, Semantic
//! Location History, both phone Timeline exports, GeoJSON and Overland,
//! OwnTracks `.rec` payloads) runs [`check`] on each record first and
//! rejects it with the key's name.
//!
//! Live ingest applies the same rule to request bodies through
//! [`duplicate_key`]: a body that names a key twice is refused with 400.
//!
//! The scan is one pass over the record's bytes (strings skipped with
//! `memchr`), allocation-free unless a key contains escapes.

use std::borrow::Cow;
use std::collections::HashSet;

/// A key named twice in one JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// The key, unescaped.
    pub key: String,
    /// Byte offset of its second occurrence (the opening quote) in the text.
    pub offset: usize,
}

/// `Err` with the reject reason when some object in `json` has a key twice.
/// Text that is not JSON passes: the importer's own parser reports it.
pub(crate) fn check(json: &[u8]) -> Result<(), String> {
    match first_duplicate(json) {
        Some((key, _)) => Err(format!("duplicate key {key:?}: a record that names a key twice is ambiguous")),
        None => Ok(()),
    }
}

/// The first key that some object of `json` (at any depth) names twice, and
/// where. Text that is not JSON may pass: check it with a JSON parser too.
#[must_use]
pub fn duplicate_key(json: &[u8]) -> Option<DuplicateKey> {
    first_duplicate(json).map(|(key, offset)| DuplicateKey { key, offset })
}

/// Objects with more keys than this look keys up in a hash set instead of
/// comparing with each (a 1 MiB body of 100,000 keys would otherwise take
/// 5·10⁹ comparisons).
const LINEAR_KEYS: usize = 16;

/// An open object or array.
enum Frame<'a> {
    Array,
    /// An object whose keys start at `start` in the key list, or are in
    /// `set` once there are more than [`LINEAR_KEYS`].
    Object {
        start: usize,
        set: Option<HashSet<Cow<'a, [u8]>>>,
    },
}

/// The first key that repeats within one object, and the offset of its repeat.
fn first_duplicate(json: &[u8]) -> Option<(String, usize)> {
    // Keys of the open small objects, innermost last.
    let mut keys: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut frames: Vec<Frame<'_>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i + 1)?;
                if expect_key && let Some(Frame::Object { start, set }) = frames.last_mut() {
                    let key = key_text(json, i, end)?;
                    let repeated = match set {
                        Some(set) => !set.insert(key.clone()),
                        None if keys[*start..].contains(&key) => true,
                        None => {
                            keys.push(key.clone());
                            if keys.len() - *start > LINEAR_KEYS {
                                *set = Some(keys.drain(*start..).collect());
                            }
                            false
                        }
                    };
                    if repeated {
                        return Some((String::from_utf8_lossy(&key).into_owned(), i));
                    }
                    expect_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' => {
                frames.push(Frame::Object { start: keys.len(), set: None });
                expect_key = true;
            }
            b'[' => {
                frames.push(Frame::Array);
                expect_key = false;
            }
            b'}' | b']' => {
                if let Some(Frame::Object { start, .. }) = frames.pop() {
                    keys.truncate(start);
                }
                expect_key = false;
            }
            b',' => expect_key = matches!(frames.last(), Some(Frame::Object { .. })),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The text of the key whose quotes are at `open` and `close`, unescaped.
fn key_text(json: &[u8], open: usize, close: usize) -> Option<Cow<'_, [u8]>> {
    let raw = &json[open + 1..close];
    if raw.contains(&b'\\') {
        Some(Cow::Owned(serde_json::from_slice::<String>(&json[open..=close]).ok()?.into_bytes()))
    } else {
        Some(Cow::Borrowed(raw))
    }
}

/// The index of the quote that closes the string whose text starts at `i`.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let p = memchr::memchr2(b'"', b'\\', &json[i..])?;
        if json[i + p] == b'"' {
            return Some(i + p);
        }
        i += p + 2;
        if i > json.len() {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(json: &[u8]) -> Option<String> {
        first_duplicate(json).map(|(k, _)| k)
    }

    #[test]
    fn duplicates_are_found_per_object_at_any_depth() {
        assert_eq!(key(br#"{"a":1,"b":2,"a":3}"#).as_deref(), Some("a"));
        assert_eq!(key(br#"{"a":{"x":1,"y":{"x":2}},"b":[{"x":1},{"x":2}]}"#), None);
        assert_eq!(key(br#"{"a":[{"t":1,"t":2}]}"#).as_deref(), Some("t"));
        // Values equal to keys, escapes, and keys spelled differently.
        assert_eq!(key(br#"{"a":"a","b":"\"a\"","c":"x,\"c\":1"}"#), None);
        assert_eq!(key(br#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
        assert_eq!(key(b"{\n  \"a\" : 1 ,\n  \"a\" : 2\n}").as_deref(), Some("a"));
        assert_eq!(duplicate_key(br#"{"a":1,"b":2,"a":3}"#), Some(DuplicateKey { key: "a".to_owned(), offset: 13 }));
    }

    #[test]
    fn objects_with_many_keys_are_checked_in_linear_time() {
        // 200,000 distinct keys, then one repeated: quadratic comparison would take minutes.
        let mut json = String::from("{");
        for k in 0..200_000 {
            json.push_str(&format!("\"k{k}\":{{\"a\":1,\"b\":[{{\"a\":2}}]}},"));
        }
        let started = std::time::Instant::now();
        assert_eq!(key(&format!("{json}\"z\":0}}").into_bytes()), None);
        let repeated = format!("{json}\"k123456\":0}}");
        assert_eq!(key(repeated.as_bytes()).as_deref(), Some("k123456"));
        assert_eq!(duplicate_key(repeated.as_bytes()).map(|d| d.offset), Some(repeated.len() - 12));
        assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
        // Keys of nested objects inside a large object are their own.
        assert_eq!(key(br#"{"a":{"x":1},"b":{"x":1},"c":{"x":1},"d":{"x":1},"e":{"x":{"x":1}}}"#), None);
        assert!(check(br#"{"lat":1,"lat":2}"#).unwrap_err().starts_with("duplicate key \"lat\""));
        assert!(check(b"not json").is_ok());
    }
}

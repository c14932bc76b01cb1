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
//! The scan is one pass over the record's bytes (strings skipped with
//! `memchr`), allocation-free unless a key contains escapes.

use std::borrow::Cow;

/// `Err` with the reject reason when some object in `json` has a key twice.
/// Text that is not JSON passes: the importer's own parser reports it.
pub(crate) fn check(json: &[u8]) -> Result<(), String> {
    match first_duplicate(json) {
        Some(key) => Err(format!("duplicate key {key:?}: a record that names a key twice is ambiguous")),
        None => Ok(()),
    }
}

/// The first key that repeats within one object.
fn first_duplicate(json: &[u8]) -> Option<String> {
    // Keys of the open objects, innermost last; `objects` holds where each
    // open object's keys start, `None` for an open array.
    let mut keys: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut frames: Vec<Option<usize>> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                let end = string_end(json, i + 1)?;
                if expect_key && matches!(frames.last(), Some(Some(_))) {
                    let raw = &json[i + 1..end];
                    let key: Cow<'_, [u8]> = if raw.contains(&b'\\') {
                        Cow::Owned(serde_json::from_slice::<String>(&json[i..=end]).ok()?.into_bytes())
                    } else {
                        Cow::Borrowed(raw)
                    };
                    let start = frames.last().copied().flatten().unwrap_or(0);
                    if keys[start..].contains(&key) {
                        return Some(String::from_utf8_lossy(&key).into_owned());
                    }
                    keys.push(key);
                    expect_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' => {
                frames.push(Some(keys.len()));
                expect_key = true;
            }
            b'[' => {
                frames.push(None);
                expect_key = false;
            }
            b'}' | b']' => {
                if let Some(Some(start)) = frames.pop() {
                    keys.truncate(start);
                }
                expect_key = false;
            }
            b',' => expect_key = matches!(frames.last(), Some(Some(_))),
            _ => {}
        }
        i += 1;
    }
    None
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

    #[test]
    fn duplicates_are_found_per_object_at_any_depth() {
        assert_eq!(first_duplicate(br#"{"a":1,"b":2,"a":3}"#).as_deref(), Some("a"));
        assert_eq!(first_duplicate(br#"{"a":{"x":1,"y":{"x":2}},"b":[{"x":1},{"x":2}]}"#), None);
        assert_eq!(first_duplicate(br#"{"a":[{"t":1,"t":2}]}"#).as_deref(), Some("t"));
        // Values equal to keys, escapes, and keys spelled differently.
        assert_eq!(first_duplicate(br#"{"a":"a","b":"\"a\"","c":"x,\"c\":1"}"#), None);
        assert_eq!(first_duplicate(br#"{"a":1,"\u0061":2}"#).as_deref(), Some("a"));
        assert_eq!(first_duplicate(b"{\n  \"a\" : 1 ,\n  \"a\" : 2\n}").as_deref(), Some("a"));
        assert!(check(br#"{"lat":1,"lat":2}"#).unwrap_err().starts_with("duplicate key \"lat\""));
        assert!(check(b"not json").is_ok());
    }
}

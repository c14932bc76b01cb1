//! The part of CBOR (RFC 8949) that WebAuthn's attestation objects and
//! COSE keys use: integers, byte and text strings, arrays, maps, `true`,
//! `false` and `null`, all of definite length.
//!
//! Why not a crate: this is a few dozen lines, read only from authenticator
//! data whose layout the WebAuthn specification fixes, and everything else
//! (floats, tags, indefinite lengths) is refused, so no crate's generality
//! is needed. Nesting is bounded, and a length is checked against the bytes
//! left before anything is allocated, so hostile input costs at most its
//! own size.

use thiserror::Error;

/// The deepest nesting accepted (a COSE key inside an attestation object is two).
const MAX_DEPTH: usize = 8;

/// A decoded value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An unsigned or negative integer.
    Int(i128),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Value>),
    /// A map, in the order it was encoded.
    Map(Vec<(Value, Value)>),
    /// `true` or `false`.
    Bool(bool),
    /// `null`.
    Null,
}

impl Value {
    /// The value of `key` in a map (`None` for a missing key or no map).
    #[must_use]
    pub fn get(&self, key: &Value) -> Option<&Value> {
        match self {
            Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value of the integer key `key` in a map (COSE keys).
    #[must_use]
    pub fn int_key(&self, key: i128) -> Option<&Value> {
        self.get(&Value::Int(key))
    }

    /// The value of the text key `key` in a map (attestation objects).
    #[must_use]
    pub fn text_key(&self, key: &str) -> Option<&Value> {
        self.get(&Value::Text(key.to_owned()))
    }

    /// The bytes of a byte string.
    #[must_use]
    pub fn as_bytes(&self) -> Option<&[u8]> {
        if let Self::Bytes(b) = self { Some(b) } else { None }
    }

    /// The integer.
    #[must_use]
    pub fn as_int(&self) -> Option<i128> {
        if let Self::Int(i) = self { Some(*i) } else { None }
    }
}

/// Why bytes are not the CBOR accepted here.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CborError {
    /// The input ends inside a value.
    #[error("CBOR ends early at byte {0}")]
    Truncated(usize),
    /// Something outside the accepted subset, or malformed.
    #[error("unsupported or malformed CBOR at byte {at}: {what}")]
    Unsupported {
        /// Where.
        at: usize,
        /// What was found.
        what: &'static str,
    },
}

/// Decodes one value at the start of `bytes`; returns it and the number of
/// bytes it took (WebAuthn puts a COSE key and then extensions back to back).
///
/// # Errors
/// [`CborError`] for truncated, malformed or unsupported input.
pub fn decode_prefix(bytes: &[u8]) -> Result<(Value, usize), CborError> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    Ok((value, reader.at))
}

/// Decodes `bytes`, which must hold exactly one value.
///
/// # Errors
/// [`CborError`], also when bytes follow the value.
pub fn decode(bytes: &[u8]) -> Result<Value, CborError> {
    let (value, used) = decode_prefix(bytes)?;
    if used != bytes.len() {
        return Err(CborError::Unsupported { at: used, what: "bytes after the value" });
    }
    Ok(value)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CborError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(CborError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// The argument of a head with additional information `info`.
    fn argument(&mut self, info: u8) -> Result<u64, CborError> {
        let width = match info {
            0..=23 => return Ok(u64::from(info)),
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => return Err(CborError::Unsupported { at: self.at, what: "indefinite length or reserved value" }),
        };
        Ok(self.take(width)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A length, which cannot be more than the bytes left (each item takes at least one).
    fn length(&mut self, info: u8) -> Result<usize, CborError> {
        let n = self.argument(info)?;
        let left = self.bytes.len() - self.at;
        usize::try_from(n).ok().filter(|&n| n <= left).ok_or(CborError::Truncated(self.at))
    }

    fn value(&mut self, depth: usize) -> Result<Value, CborError> {
        if depth > MAX_DEPTH {
            return Err(CborError::Unsupported { at: self.at, what: "nesting too deep" });
        }
        let start = self.at;
        let head = self.take(1)?[0];
        let (major, info) = (head >> 5, head & 0x1f);
        Ok(match major {
            0 => Value::Int(i128::from(self.argument(info)?)),
            1 => Value::Int(-1 - i128::from(self.argument(info)?)),
            2 => {
                let n = self.length(info)?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            3 => {
                let n = self.length(info)?;
                let text = std::str::from_utf8(self.take(n)?)
                    .map_err(|_| CborError::Unsupported { at: start, what: "text that is not UTF-8" })?;
                Value::Text(text.to_owned())
            }
            4 => {
                let n = self.length(info)?;
                Value::Array((0..n).map(|_| self.value(depth + 1)).collect::<Result<_, _>>()?)
            }
            5 => {
                let n = self.length(info)?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    let key = self.value(depth + 1)?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                Value::Map(entries)
            }
            7 => match info {
                20 => Value::Bool(false),
                21 => Value::Bool(true),
                22 => Value::Null,
                _ => return Err(CborError::Unsupported { at: start, what: "a float or simple value" }),
            },
            _ => return Err(CborError::Unsupported { at: start, what: "a tag" }),
        })
    }
}

/// An encoder for the same subset, for tests that build authenticator data by hand.
#[cfg(test)]
pub mod encode {
    use super::Value;

    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        let major = major << 5;
        match n {
            0..=23 => out.push(major | n as u8),
            24..=0xff => out.extend([major | 24, n as u8]),
            0x100..=0xffff => {
                out.push(major | 25);
                out.extend((n as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                out.push(major | 26);
                out.extend((n as u32).to_be_bytes());
            }
            _ => {
                out.push(major | 27);
                out.extend(n.to_be_bytes());
            }
        }
    }

    /// The encoding of `value`.
    #[must_use]
    pub fn encode(value: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, value);
        out
    }

    fn write(out: &mut Vec<u8>, value: &Value) {
        match value {
            Value::Int(i) if *i >= 0 => head(out, 0, *i as u64),
            Value::Int(i) => head(out, 1, (-1 - *i) as u64),
            Value::Bytes(b) => {
                head(out, 2, b.len() as u64);
                out.extend(b);
            }
            Value::Text(t) => {
                head(out, 3, t.len() as u64);
                out.extend(t.as_bytes());
            }
            Value::Array(items) => {
                head(out, 4, items.len() as u64);
                items.iter().for_each(|v| write(out, v));
            }
            Value::Map(entries) => {
                head(out, 5, entries.len() as u64);
                for (k, v) in entries {
                    write(out, k);
                    write(out, v);
                }
            }
            Value::Bool(b) => out.push(if *b { 0xf5 } else { 0xf4 }),
            Value::Null => out.push(0xf6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_8949_appendix_a_examples() {
        let cases: &[(&[u8], Value)] = &[
            (&[0x00], Value::Int(0)),
            (&[0x17], Value::Int(23)),
            (&[0x18, 0x18], Value::Int(24)),
            (&[0x19, 0x03, 0xe8], Value::Int(1000)),
            (&[0x1b, 0, 0, 0, 0xe8, 0xd4, 0xa5, 0x10, 0x00], Value::Int(1_000_000_000_000)),
            (&[0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], Value::Int(18_446_744_073_709_551_615)),
            (&[0x20], Value::Int(-1)),
            (&[0x38, 0x63], Value::Int(-100)),
            (&[0x39, 0x01, 0x00], Value::Int(-257)),
            (&[0x44, 1, 2, 3, 4], Value::Bytes(vec![1, 2, 3, 4])),
            (&[0x64, 0x49, 0x45, 0x54, 0x46], Value::Text("IETF".into())),
            (&[0x62, 0xc3, 0xbc], Value::Text("ü".into())),
            (&[0x83, 1, 2, 3], Value::Array(vec![Value::Int(1), Value::Int(2), Value::Int(3)])),
            (&[0xa2, 1, 2, 3, 4], Value::Map(vec![(Value::Int(1), Value::Int(2)), (Value::Int(3), Value::Int(4))])),
            (&[0xf4], Value::Bool(false)),
            (&[0xf5], Value::Bool(true)),
            (&[0xf6], Value::Null),
        ];
        for (bytes, expected) in cases {
            assert_eq!(&decode(bytes).unwrap(), expected, "{bytes:02x?}");
            assert_eq!(&encode::encode(expected), bytes, "{expected:?}");
        }
    }

    #[test]
    fn what_is_refused() {
        for (bytes, why) in [
            (&[0x5f, 0x41, 1, 0xff][..], "indefinite byte string"),
            (&[0xc1, 0x1a, 0, 0, 0, 0], "a tag"),
            (&[0xf9, 0x3c, 0x00], "a half float"),
            (&[0x44, 1, 2], "bytes past the end"),
            (&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "a huge array is not allocated"),
            (&[0x62, 0xff, 0xfe], "not UTF-8"),
            (&[0x01, 0x02], "trailing bytes"),
            (&[], "nothing"),
        ] {
            assert!(decode(bytes).is_err(), "{why}");
        }
        let deep = [[0x81u8; 20].as_slice(), &[0x00]].concat();
        assert!(matches!(decode(&deep), Err(CborError::Unsupported { what: "nesting too deep", .. })));
    }

    #[test]
    fn a_prefix_reports_its_length() {
        let (value, used) = decode_prefix(&[0xa1, 0x01, 0x02, 0xff, 0xee]).unwrap();
        assert_eq!((value.int_key(1), used), (Some(&Value::Int(2)), 3));
    }
}

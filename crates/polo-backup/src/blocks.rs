//! Content-addressed blocks: the snapshot file cut at fixed offsets, each
//! piece named by the SHA-256 of its bytes and stored zstd-compressed at
//! `blocks/<first two hex digits>/<hash>.zst`.
//!
//! Fixed offsets, not content-defined cut points, because the file is a
//! SQLite database: its pages never shift. A page that did not change
//! between two backups has the same bytes at the same offset, so a block
//! whose pages all stayed the same has the same name and is not uploaded
//! again. Blocks are a whole number of pages (see [`crate::BackupOptions`]).
//!
//! The hash is of the *uncompressed* bytes, so names do not depend on the
//! compression level or the zstd version, and checking a block proves the
//! bytes that will be written into the restored file.

use sha2::{Digest, Sha256};

/// Where blocks live under the destination.
pub const BLOCKS_DIR: &str = "blocks";

/// The lower-case hex SHA-256 of `data`.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Whether `text` looks like a block name: 64 lower-case hex digits.
#[must_use]
pub fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The object name of a block, relative to the destination.
#[must_use]
pub fn block_name(hash: &str) -> String {
    format!("{BLOCKS_DIR}/{}/{hash}.zst", &hash[..2.min(hash.len())])
}

/// The hash of a block object name (as [`block_name`] makes them), or `None`
/// for anything else under `blocks/`.
#[must_use]
pub fn hash_of_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(BLOCKS_DIR)?.strip_prefix('/')?;
    let (dir, file) = rest.split_once('/')?;
    let hash = file.strip_suffix(".zst")?;
    (is_hash(hash) && hash.starts_with(dir)).then_some(hash)
}

/// Compresses a block.
///
/// # Errors
/// When zstd fails (it does not, for in-memory buffers, short of allocation).
pub fn compress(data: &[u8], level: i32) -> std::io::Result<Vec<u8>> {
    zstd::bulk::compress(data, level)
}

/// What is wrong with a stored block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockProblem {
    /// The destination has no such object.
    Missing,
    /// The object could not be read.
    Unreadable(String),
    /// The object is not zstd data, or decompresses to more than the block's length.
    Undecodable(String),
    /// It decompresses to the wrong number of bytes.
    WrongLength {
        /// Bytes expected.
        expected: u64,
        /// Bytes found.
        found: u64,
    },
    /// Its bytes have another hash: the object was damaged after upload.
    WrongHash {
        /// The hash of the bytes found.
        found: String,
    },
}

impl std::fmt::Display for BlockProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing => f.write_str("missing"),
            Self::Unreadable(why) => write!(f, "cannot be read: {why}"),
            Self::Undecodable(why) => write!(f, "is not valid zstd data: {why}"),
            Self::WrongLength { expected, found } => {
                write!(f, "decompresses to {found} bytes instead of {expected}")
            }
            Self::WrongHash { found } => write!(f, "damaged (its content hash is {found})"),
        }
    }
}

/// Decompresses a stored block and checks its length and hash.
///
/// # Errors
/// The [`BlockProblem`] found.
pub fn open(stored: &[u8], hash: &str, len: u64) -> Result<Vec<u8>, BlockProblem> {
    let capacity = usize::try_from(len).map_err(|_| BlockProblem::Undecodable("block too large".into()))?;
    let data = zstd::bulk::decompress(stored, capacity).map_err(|e| BlockProblem::Undecodable(e.to_string()))?;
    if data.len() as u64 != len {
        return Err(BlockProblem::WrongLength { expected: len, found: data.len() as u64 });
    }
    let found = sha256_hex(&data);
    if found != hash {
        return Err(BlockProblem::WrongHash { found });
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_sha256_in_lower_hex() {
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(is_hash(&sha256_hex(b"")));
        assert!(!is_hash("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
        assert!(!is_hash("abc"));
    }

    #[test]
    fn names_round_trip_and_fan_out_by_the_first_byte() {
        let hash = sha256_hex(b"page");
        let name = block_name(&hash);
        assert_eq!(name, format!("blocks/{}/{hash}.zst", &hash[..2]));
        assert_eq!(hash_of_name(&name), Some(hash.as_str()));
        assert_eq!(hash_of_name("blocks/zz/nothing.zst"), None);
        assert_eq!(hash_of_name(&format!("blocks/00/{hash}.zst")).filter(|_| !hash.starts_with("00")), None);
        assert_eq!(hash_of_name(&format!("manifests/{hash}.zst")), None);
    }

    #[test]
    fn open_returns_the_bytes_and_names_each_kind_of_damage() {
        let data: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_le_bytes()).collect();
        let hash = sha256_hex(&data);
        let stored = compress(&data, 3).unwrap();
        assert!(stored.len() < data.len() / 4, "repetitive pages compress");
        assert_eq!(open(&stored, &hash, data.len() as u64).unwrap(), data);

        let len = data.len() as u64;
        let mut flipped = compress(
            &{
                let mut d = data.clone();
                d[1234] ^= 1;
                d
            },
            3,
        )
        .unwrap();
        assert!(matches!(open(&flipped, &hash, len), Err(BlockProblem::WrongHash { .. })));
        flipped.truncate(flipped.len() / 2);
        assert!(matches!(open(&flipped, &hash, len), Err(BlockProblem::Undecodable(_))));
        assert!(matches!(open(b"not zstd", &hash, len), Err(BlockProblem::Undecodable(_))));
        assert_eq!(
            open(&compress(&data[..10], 3).unwrap(), &hash, len),
            Err(BlockProblem::WrongLength { expected: len, found: 10 })
        );
        // More bytes than the block may hold is refused without allocating them.
        assert!(matches!(open(&stored, &hash, 10), Err(BlockProblem::Undecodable(_))));
    }
}

//! The error of loading the offline data.
//!
//! The data is compiled into the binary, so loading can only fail if the
//! files in `data/` were damaged or written by a different version of
//! `tools/geodata/build.py` than the reader in `src/data.rs` expects. Both
//! are build mistakes that the crate's own tests catch; the variants say
//! which file and where, so a damaged rebuild is quick to diagnose.

/// Why the embedded data could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GeocodeError {
    /// The zlib stream of a data file does not inflate.
    #[error("cannot inflate the embedded {file}: {source}")]
    Inflate {
        /// The data file, e.g. `towns.bin.z`.
        file: &'static str,
        /// The decoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The inflated bytes do not follow the layout `build.py` writes.
    #[error("the embedded {file} is corrupt at byte {offset}: {why}")]
    Corrupt {
        /// The data file, e.g. `countries.bin.z`.
        file: &'static str,
        /// Offset into the inflated bytes where reading stopped.
        offset: usize,
        /// What was expected there.
        why: &'static str,
    },
}

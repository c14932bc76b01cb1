//! The point-chunk codec every backend stores.
//!
//! # Why chunks
//!
//! A phone that reports every 10–30 s produces 1–3 million fixes a year, and a
//! self-hosted instance keeps decades of them for several people. Stored as
//! one SQLite row per point, a fix costs 40+ bytes before any index (row
//! header, rowid, a 4-byte cell pointer, one integer per column and an index
//! entry on `(device, time)`). polo's budget is **≤ 24 bytes per point on disk**
//! for a typical phone history, *including* the database's own overhead, so the
//! points of one `(user, device)` are stored as time-ordered, non-overlapping
//! chunks of up to [`CHUNK_CAPACITY`] fixes, each one blob encoded here.
//!
//! # Where the bytes go
//!
//! Consecutive fixes of one device are strongly correlated, so the chunk is
//! columnar and every integer column is delta-coded into LEB128 varints of
//! zigzag-mapped deltas:
//!
//! | column | typical bytes / point |
//! |---|---|
//! | time (ms, deltas of 10–30 s) | 3 (1 when the source has whole seconds) |
//! | latitude + longitude (E7 deltas of metres to hundreds of metres) | 3–5 |
//! | altitude, accuracies, speed, course | 1–2 each |
//! | battery, motion, source, UTC offset, zone flag, change seq | ≈ 0 (run-length) |
//! | extras (JSON) | 0 when absent, zstd-compressed otherwise |
//!
//! A generated but realistic phone history (1 M points, about 230 days) at full precision
//! (millisecond times, centimetre altitudes and accuracies, see
//! `polo-store-sqlite/examples/bytes_per_point.rs`) encodes to about 14 bytes
//! per point and occupies about 16 bytes per point in the SQLite file, pages
//! and indexes included — a third under budget, which leaves room for the
//! occasional `extras`.
//!
//! Three tricks do most of the work, each chosen per column and per chunk by
//! computing the exact encoded size of each candidate:
//!
//! * **constant** — a column with one value costs one varint per chunk;
//! * **runs** — slowly changing columns (battery, motion, the change `Seq`
//!   most points of a chunk share) become `(length, value delta)` pairs;
//! * **deltas ÷ gcd** — deltas are divided by their common divisor, so whole
//!   seconds, whole-metre accuracies or whole-degree courses cost one byte
//!   less than their millisecond / centimetre / centidegree units suggest.
//!
//! Optional columns carry a presence header first: "none", "all", or a
//! bitmap of `n / 8` bytes; only present values are coded. `extras` (often
//! absent, sometimes kilobytes of Wi-Fi scans) are concatenated and
//! zstd-compressed as one block when present.
//!
//! # Layout (version 1)
//!
//! ```text
//! u8 version = 1
//! varint n                                  (≤ MAX_CHUNK_POINTS)
//! ints(n)  time ms | lat E7 | lon E7 | seq | source code
//! presence zone_assumed (the "present" bit is the flag)
//! for utc offset, altitude, h/v accuracy, speed, course, battery, motion:
//!     presence, ints(count present)
//! presence extras; if any: ints(lengths), u8 0=raw|1=zstd, varint size, bytes
//!
//! presence := 0 none | 1 all | 2 bitmap[(n+7)/8], LSB first, padding bits 0
//! ints(k)  := nothing when k = 0, else one of
//!             0 const: zz(v)
//!             1 delta: varint g ≥ 1, zz(v0), zz((v[i]-v[i-1]) / g) …
//!             2 runs:  (varint len ≥ 1, zz(value - previous run value)) … summing to k
//! ```
//!
//! All arithmetic wraps, so any `i64` (and thus every extreme field value)
//! round-trips. Decoding never panics: truncated, trailing, out-of-range or
//! otherwise malformed input is [`StoreError::Corrupt`].

use polo_domain::{Coord, Extras, Fix, Motion, Seq, SourceFormat, Timestamp};
use std::cell::RefCell;

use crate::StoreError;

/// How many fixes a backend puts into one chunk. Large enough to amortise
/// per-chunk and per-row overhead to well under a byte per point, small
/// enough that rewriting the last chunk on a live append stays cheap.
pub const CHUNK_CAPACITY: usize = 1024;

/// The most fixes one encoded chunk may hold; decode refuses larger counts so
/// that corrupt input cannot request huge allocations.
pub const MAX_CHUNK_POINTS: usize = 1 << 16;

/// The format version written first in every chunk.
pub const CODEC_VERSION: u8 = 1;

thread_local! {
    // zstd contexts hold ~100 KB-1 MB of tables each. Creating one per chunk
    // (as `zstd::bulk::compress` does) cost more CPU than the compression
    // itself for small live-ingest chunks, so each thread keeps one of each.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn compress_extras(data: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR.with(|slot| {
        let mut slot = slot.try_borrow_mut().map_err(std::io::Error::other)?;
        let compressor = match &mut *slot {
            Some(compressor) => compressor,
            empty => empty.insert(zstd::bulk::Compressor::new(ZSTD_LEVEL)?),
        };
        compressor.compress(data)
    })
}

fn decompress_extras(data: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DECOMPRESSOR.with(|slot| {
        let mut slot = slot.try_borrow_mut().map_err(std::io::Error::other)?;
        let decompressor = match &mut *slot {
            Some(decompressor) => decompressor,
            empty => empty.insert(zstd::bulk::Decompressor::new()?),
        };
        decompressor.decompress(data, capacity)
    })
}

/// zstd level for extras. Level 1 costs a third of level 3's CPU on Wi-Fi scans
/// and stores them only slightly larger; imports are CPU-bound, disks are not.
const ZSTD_LEVEL: i32 = 1;
/// Upper bound on the decompressed extras of one chunk.
const MAX_EXTRAS_BYTES: u64 = 256 << 20;

const MODE_CONST: u8 = 0;
const MODE_DELTA: u8 = 1;
const MODE_RUNS: u8 = 2;

const PRES_NONE: u8 = 0;
const PRES_ALL: u8 = 1;
const PRES_BITMAP: u8 = 2;

const EXTRAS_RAW: u8 = 0;
const EXTRAS_ZSTD: u8 = 1;

/// A fix as stored: the measurement plus the change sequence number of the
/// write that stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFix {
    /// The measurement.
    pub fix: Fix,
    /// The write that stored it.
    pub seq: Seq,
}

// ---------------------------------------------------------------- varints

#[inline(always)]
fn zz(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline(always)]
fn unzz(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

#[inline(always)]
fn vlen(u: u64) -> usize {
    (64 - (u | 1).leading_zeros() as usize).div_ceil(7)
}

#[inline(always)]
fn put(out: &mut Vec<u8>, mut u: u64) {
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("point chunk: {what}"))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, StoreError> {
        // Fast path: one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        let mut out = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            out |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(out);
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("varint too long"));
            }
        }
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| corrupt("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

// ---------------------------------------------------------------- integer columns

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Writes `vals` in the smallest of the three integer encodings.
///
/// The common case (noisy values, divisor 1) is written speculatively in the
/// same pass that measures the alternatives; only when runs or a divisor win
/// is the column rewritten.
fn put_ints(out: &mut Vec<u8>, vals: &[i64]) {
    let Some((&first, rest)) = vals.split_first() else {
        return;
    };
    let start = out.len();
    out.reserve(vals.len() * 2 + 12);
    out.push(MODE_DELTA);
    put(out, 1);
    put(out, zz(first));
    let mut g = 0u64;
    let mut runs_cost = vlen(zz(first));
    let mut run_len = 1u64;
    let mut prev = first;
    for &v in rest {
        let d = v.wrapping_sub(prev);
        prev = v;
        let z = zz(d);
        put(out, z);
        if d == 0 {
            run_len += 1;
        } else {
            runs_cost += vlen(run_len) + vlen(z);
            run_len = 1;
            if g != 1 {
                g = gcd(g, d.unsigned_abs());
            }
        }
    }
    if g == 0 {
        out.truncate(start);
        out.push(MODE_CONST);
        put(out, zz(first));
        return;
    }
    runs_cost += vlen(run_len);
    let mut delta_cost = out.len() - start - 1;
    if g > 1 << 62 {
        g = 1; // only i64::MIN deltas: keep the division exact and overflow-free
    }
    if g > 1 {
        let gi = g as i64;
        delta_cost = vlen(g)
            + vlen(zz(first))
            + rest.iter().zip(vals).map(|(&v, &p)| vlen(zz(v.wrapping_sub(p) / gi))).sum::<usize>();
    }
    if runs_cost < delta_cost {
        out.truncate(start);
        out.push(MODE_RUNS);
        let mut run_value = 0i64;
        let mut i = 0;
        while i < vals.len() {
            let v = vals[i];
            let mut j = i + 1;
            while j < vals.len() && vals[j] == v {
                j += 1;
            }
            put(out, (j - i) as u64);
            put(out, zz(v.wrapping_sub(run_value)));
            run_value = v;
            i = j;
        }
    } else if g > 1 {
        out.truncate(start);
        out.push(MODE_DELTA);
        put(out, g);
        put(out, zz(first));
        let gi = g as i64;
        for (&v, &p) in rest.iter().zip(vals) {
            put(out, zz(v.wrapping_sub(p) / gi));
        }
    }
}

/// Reads `count` integers written by [`put_ints`] into `out`.
fn get_ints(r: &mut Reader<'_>, count: usize, out: &mut Vec<i64>) -> Result<(), StoreError> {
    out.clear();
    if count == 0 {
        return Ok(());
    }
    out.reserve(count);
    match r.byte()? {
        MODE_CONST => {
            let v = unzz(r.varint()?);
            out.resize(count, v);
        }
        MODE_DELTA => {
            let g = r.varint()?;
            if g == 0 || g > 1 << 62 {
                return Err(corrupt("bad delta divisor"));
            }
            let g = g as i64;
            let mut v = unzz(r.varint()?);
            out.push(v);
            if g == 1 {
                for _ in 1..count {
                    v = v.wrapping_add(unzz(r.varint()?));
                    out.push(v);
                }
            } else {
                for _ in 1..count {
                    v = v.wrapping_add(unzz(r.varint()?).wrapping_mul(g));
                    out.push(v);
                }
            }
        }
        MODE_RUNS => {
            let mut v = 0i64;
            while out.len() < count {
                let len = r.varint()?;
                v = v.wrapping_add(unzz(r.varint()?));
                let room = (count - out.len()) as u64;
                if len == 0 || len > room {
                    return Err(corrupt("bad run length"));
                }
                out.resize(out.len() + len as usize, v);
            }
        }
        _ => return Err(corrupt("unknown integer encoding")),
    }
    Ok(())
}

// ---------------------------------------------------------------- presence

#[derive(Clone, Copy)]
enum Presence<'a> {
    None,
    All,
    Bitmap(&'a [u8]),
}

impl Presence<'_> {
    fn count(self, n: usize) -> usize {
        match self {
            Self::None => 0,
            Self::All => n,
            Self::Bitmap(bits) => bits.iter().map(|b| b.count_ones() as usize).sum(),
        }
    }

    /// Calls `f(index, value)` for each present index in order, pairing it with `vals`.
    #[inline]
    fn for_each(
        self,
        n: usize,
        vals: &[i64],
        mut f: impl FnMut(usize, i64) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Self::None => {}
            Self::All => {
                for (i, &v) in vals.iter().enumerate().take(n) {
                    f(i, v)?;
                }
            }
            Self::Bitmap(bits) => {
                let mut vi = vals.iter();
                for (byte_index, &byte) in bits.iter().enumerate() {
                    let mut b = byte;
                    while b != 0 {
                        let bit = b.trailing_zeros() as usize;
                        b &= b - 1;
                        let v = *vi.next().ok_or_else(|| corrupt("presence count mismatch"))?;
                        f(byte_index * 8 + bit, v)?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn get_presence<'a>(r: &mut Reader<'a>, n: usize) -> Result<Presence<'a>, StoreError> {
    match r.byte()? {
        PRES_NONE => Ok(Presence::None),
        PRES_ALL => Ok(Presence::All),
        PRES_BITMAP => {
            let bits = r.bytes(n.div_ceil(8))?;
            if !n.is_multiple_of(8) && bits.last().is_some_and(|&b| b >> (n % 8) != 0) {
                return Err(corrupt("presence bitmap padding"));
            }
            Ok(Presence::Bitmap(bits))
        }
        _ => Err(corrupt("unknown presence encoding")),
    }
}

/// Scratch buffers reused across the columns of one chunk.
struct Scratch {
    vals: Vec<i64>,
    bits: Vec<u8>,
}

impl Scratch {
    /// Writes the presence header of `flag` over all fixes and returns how
    /// many are set; the set positions' values are left in `self.vals`.
    #[inline]
    fn put_presence(&mut self, out: &mut Vec<u8>, fixes: &[StoredFix], get: impl Fn(&Fix) -> Option<i64>) -> usize {
        let n = fixes.len();
        self.vals.clear();
        self.bits.clear();
        self.bits.resize(n.div_ceil(8), 0);
        for (i, f) in fixes.iter().enumerate() {
            if let Some(v) = get(&f.fix) {
                self.bits[i >> 3] |= 1 << (i & 7);
                self.vals.push(v);
            }
        }
        if self.vals.is_empty() {
            out.push(PRES_NONE);
        } else if self.vals.len() == n {
            out.push(PRES_ALL);
        } else {
            out.push(PRES_BITMAP);
            out.extend_from_slice(&self.bits);
        }
        self.vals.len()
    }

    /// A boolean column: the presence header alone.
    fn put_flags(&mut self, out: &mut Vec<u8>, fixes: &[StoredFix], get: impl Fn(&Fix) -> bool) {
        self.put_presence(out, fixes, |f| get(f).then_some(0));
    }

    /// An optional column: presence header, then the present values.
    #[inline]
    fn put_opt(&mut self, out: &mut Vec<u8>, fixes: &[StoredFix], get: impl Fn(&Fix) -> Option<i64>) {
        self.put_presence(out, fixes, get);
        put_ints(out, &self.vals);
    }

    #[inline]
    fn put_all(&mut self, out: &mut Vec<u8>, fixes: &[StoredFix], get: impl Fn(&StoredFix) -> i64) {
        self.vals.clear();
        self.vals.extend(fixes.iter().map(get));
        put_ints(out, &self.vals);
    }
}

// ---------------------------------------------------------------- chunks

/// Encodes a chunk of fixes (any order; backends pass them sorted by time).
///
/// # Panics
/// If `fixes` holds more than [`MAX_CHUNK_POINTS`] entries: a caller bug,
/// since backends split at [`CHUNK_CAPACITY`].
#[must_use]
pub fn encode_chunk(fixes: &[StoredFix]) -> Vec<u8> {
    encode_chunk_with(fixes, ExtrasEncoding::Compressed)
}

/// How [`encode_chunk_with`] stores the extras.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtrasEncoding {
    /// zstd-compressed when that is smaller: for chunks that stay as they are.
    Compressed,
    /// As they are. For a live tail, which is rewritten with every commit
    /// until it is sealed: compressing it each time was about a sixth of the
    /// ingest writer's CPU, for a saving on one small chunk per device.
    Raw,
}

/// [`encode_chunk`], choosing how the extras are stored. Both forms decode
/// with [`decode_chunk`].
///
/// # Panics
/// As [`encode_chunk`].
#[must_use]
pub fn encode_chunk_with(fixes: &[StoredFix], extras: ExtrasEncoding) -> Vec<u8> {
    let n = fixes.len();
    assert!(n <= MAX_CHUNK_POINTS, "a point chunk holds at most {MAX_CHUNK_POINTS} fixes, got {n}");
    let mut out = Vec::with_capacity(16 + n * 18);
    out.push(CODEC_VERSION);
    put(&mut out, n as u64);
    if n == 0 {
        return out;
    }
    let mut s = Scratch { vals: Vec::with_capacity(n), bits: Vec::with_capacity(n.div_ceil(8)) };
    s.put_all(&mut out, fixes, |f| f.fix.time.0);
    s.put_all(&mut out, fixes, |f| i64::from(f.fix.coord.lat_e7));
    s.put_all(&mut out, fixes, |f| i64::from(f.fix.coord.lon_e7));
    s.put_all(&mut out, fixes, |f| f.seq.0 as i64);
    s.put_all(&mut out, fixes, |f| i64::from(f.fix.source.code()));
    s.put_flags(&mut out, fixes, |f| f.zone_assumed);
    s.put_opt(&mut out, fixes, |f| f.utc_offset_minutes.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.altitude_cm.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.horizontal_accuracy_cm.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.vertical_accuracy_cm.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.speed_cm_s.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.course_centideg.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.battery_percent.map(i64::from));
    s.put_opt(&mut out, fixes, |f| f.motion.map(|m| i64::from(m.code())));
    s.put_opt(&mut out, fixes, |f| f.extras.as_ref().map(|e| e.as_str().len() as i64));
    if !s.vals.is_empty() {
        let total: usize = fixes.iter().filter_map(|f| f.fix.extras.as_ref()).map(|e| e.as_str().len()).sum();
        let mut cat = Vec::with_capacity(total);
        for e in fixes.iter().filter_map(|f| f.fix.extras.as_ref()) {
            cat.extend_from_slice(e.as_str().as_bytes());
        }
        let compressed = match extras {
            ExtrasEncoding::Compressed => compress_extras(&cat).ok(),
            ExtrasEncoding::Raw => None,
        };
        match compressed {
            Some(z) if z.len() < cat.len() => {
                out.push(EXTRAS_ZSTD);
                put(&mut out, z.len() as u64);
                out.extend_from_slice(&z);
            }
            _ => {
                out.push(EXTRAS_RAW);
                put(&mut out, cat.len() as u64);
                out.extend_from_slice(&cat);
            }
        }
    }
    out
}

fn narrow<T: TryFrom<i64>>(v: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(v).map_err(|_| corrupt(what))
}

/// Decodes a chunk written by [`encode_chunk`].
///
/// # Errors
/// [`StoreError::Corrupt`] for any input [`encode_chunk`] cannot have produced
/// (unknown version, truncation, trailing bytes, out-of-range values, ...).
pub fn decode_chunk(data: &[u8]) -> Result<Vec<StoredFix>, StoreError> {
    let mut r = Reader { buf: data, pos: 0 };
    let version = r.byte()?;
    if version != CODEC_VERSION {
        return Err(corrupt(&format!("unknown codec version {version}")));
    }
    let n = r.varint()?;
    if n > MAX_CHUNK_POINTS as u64 {
        return Err(corrupt("too many points"));
    }
    let n = n as usize;
    if n == 0 {
        return if r.pos == data.len() { Ok(Vec::new()) } else { Err(corrupt("trailing bytes")) };
    }
    let mut vals = Vec::with_capacity(n);
    get_ints(&mut r, n, &mut vals)?;
    let mut fixes: Vec<StoredFix> = vals
        .iter()
        .map(|&t| StoredFix {
            fix: Fix::new(Timestamp(t), Coord { lat_e7: 0, lon_e7: 0 }, SourceFormat::Unknown),
            seq: Seq(0),
        })
        .collect();
    get_ints(&mut r, n, &mut vals)?;
    for (f, &v) in fixes.iter_mut().zip(&vals) {
        f.fix.coord.lat_e7 = narrow(v, "latitude")?;
    }
    get_ints(&mut r, n, &mut vals)?;
    for (f, &v) in fixes.iter_mut().zip(&vals) {
        f.fix.coord.lon_e7 = narrow(v, "longitude")?;
    }
    get_ints(&mut r, n, &mut vals)?;
    for (f, &v) in fixes.iter_mut().zip(&vals) {
        f.seq = Seq(v as u64);
    }
    get_ints(&mut r, n, &mut vals)?;
    for (f, &v) in fixes.iter_mut().zip(&vals) {
        f.fix.source = SourceFormat::from_code(narrow(v, "source")?);
    }
    let zone = get_presence(&mut r, n)?;
    vals.clear();
    vals.resize(zone.count(n), 0);
    zone.for_each(n, &vals, |i, _| {
        fixes[i].fix.zone_assumed = true;
        Ok(())
    })?;

    macro_rules! column {
        ($field:ident, $conv:expr) => {{
            let p = get_presence(&mut r, n)?;
            get_ints(&mut r, p.count(n), &mut vals)?;
            p.for_each(n, &vals, |i, v| {
                fixes[i].fix.$field = Some($conv(v)?);
                Ok(())
            })?;
        }};
    }
    column!(utc_offset_minutes, |v| narrow(v, "utc offset"));
    column!(altitude_cm, |v| narrow(v, "altitude"));
    column!(horizontal_accuracy_cm, |v| narrow(v, "accuracy"));
    column!(vertical_accuracy_cm, |v| narrow(v, "vertical accuracy"));
    column!(speed_cm_s, |v| narrow(v, "speed"));
    column!(course_centideg, |v| narrow(v, "course"));
    column!(battery_percent, |v| narrow(v, "battery"));
    column!(motion, |v| narrow::<u8>(v, "motion").and_then(|c| Motion::from_code(c).ok_or_else(|| corrupt("motion"))));

    let p = get_presence(&mut r, n)?;
    let count = p.count(n);
    if count > 0 {
        get_ints(&mut r, count, &mut vals)?;
        let mut total = 0u64;
        for &len in &vals {
            let len = u64::try_from(len).map_err(|_| corrupt("extras length"))?;
            total = total.saturating_add(len);
        }
        if total > MAX_EXTRAS_BYTES {
            return Err(corrupt("extras too large"));
        }
        let total = total as usize;
        let method = r.byte()?;
        let size = r.varint()?;
        let size = usize::try_from(size).map_err(|_| corrupt("extras size"))?;
        let stored = r.bytes(size)?;
        let owned;
        let cat: &[u8] = match method {
            EXTRAS_RAW => stored,
            EXTRAS_ZSTD => {
                owned = decompress_extras(stored, total).map_err(|e| corrupt(&format!("extras: {e}")))?;
                &owned
            }
            _ => return Err(corrupt("unknown extras encoding")),
        };
        if cat.len() != total {
            return Err(corrupt("extras size mismatch"));
        }
        let mut at = 0usize;
        p.for_each(n, &vals, |i, len| {
            let end = at + len as usize;
            let text = std::str::from_utf8(&cat[at..end]).map_err(|_| corrupt("extras are not UTF-8"))?;
            fixes[i].fix.extras = Some(Extras::from_json_object(text));
            at = end;
            Ok(())
        })?;
    }
    if r.pos != data.len() {
        return Err(corrupt("trailing bytes"));
    }
    Ok(fixes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_fix() -> impl Strategy<Value = StoredFix> {
        let opt_extras = proptest::option::of("[ -~]{0,40}|\\{\"wifi\":\\[[0-9a-f:,]{0,300}\\]\\}");
        (
            (any::<i64>(), any::<i32>(), any::<i32>(), any::<u64>(), 0u8..14, any::<bool>()),
            (
                proptest::option::of(any::<i16>()),
                proptest::option::of(any::<i32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u32>()),
                proptest::option::of(any::<u16>()),
                proptest::option::of(any::<u8>()),
                proptest::option::of(1u8..=9),
            ),
            opt_extras,
        )
            .prop_map(|((t, lat, lon, seq, src, za), (off, alt, hacc, vacc, spd, crs, bat, mot), ex)| {
                StoredFix {
                    fix: Fix {
                        time: Timestamp(t),
                        utc_offset_minutes: off,
                        zone_assumed: za,
                        coord: Coord { lat_e7: lat, lon_e7: lon },
                        altitude_cm: alt,
                        horizontal_accuracy_cm: hacc,
                        vertical_accuracy_cm: vacc,
                        speed_cm_s: spd,
                        course_centideg: crs,
                        battery_percent: bat,
                        motion: mot.and_then(Motion::from_code),
                        source: SourceFormat::from_code(src),
                        extras: ex.map(Extras::from_json_object),
                    },
                    seq: Seq(seq),
                }
            })
    }

    /// Chunks that look like real data (sorted times, small deltas, runs), so
    /// the delta/gcd/run paths are exercised, not only the noisy ones.
    fn arb_smooth_chunk() -> impl Strategy<Value = Vec<StoredFix>> {
        proptest::collection::vec((1i64..40_000, -500i32..500, -500i32..500, 0u8..4, any::<bool>()), 0..300).prop_map(
            |steps| {
                let mut t = 1_500_000_000_000i64;
                let (mut lat, mut lon) = (480_000_000i32, 110_000_000i32);
                steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, (dt, dlat, dlon, k, flag))| {
                        t += dt * if k == 0 { 1000 } else { 1 };
                        lat += dlat;
                        lon += dlon;
                        let mut fix = Fix::new(Timestamp(t), Coord { lat_e7: lat, lon_e7: lon }, SourceFormat::Gpx);
                        fix.horizontal_accuracy_cm = Some(100 * (u32::from(k) + 3));
                        fix.battery_percent = (i % 7 != 0).then_some(80 - (i / 50) as u8);
                        fix.motion = flag.then_some(Motion::Walking);
                        fix.utc_offset_minutes = Some(120);
                        StoredFix { fix, seq: Seq(if i < 100 { 7 } else { 9 }) }
                    })
                    .collect()
            },
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn round_trip_arbitrary(fixes in proptest::collection::vec(arb_fix(), 0..64)) {
            let bytes = encode_chunk(&fixes);
            prop_assert_eq!(decode_chunk(&bytes).unwrap(), fixes);
        }

        #[test]
        fn round_trip_smooth(fixes in arb_smooth_chunk()) {
            let bytes = encode_chunk(&fixes);
            prop_assert_eq!(decode_chunk(&bytes).unwrap(), fixes);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_chunk(&bytes);
        }

        #[test]
        fn random_bytes_after_valid_header_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..512), n in 0u8..100) {
            bytes.insert(0, CODEC_VERSION);
            bytes.insert(1, n);
            let _ = decode_chunk(&bytes);
        }

        #[test]
        fn mutated_chunks_never_panic(fixes in proptest::collection::vec(arb_fix(), 1..20), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), cut in any::<usize>()) {
            let mut bytes = encode_chunk(&fixes);
            for (at, x) in flips {
                let i = at % bytes.len();
                bytes[i] ^= x;
            }
            let _ = decode_chunk(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = decode_chunk(&bytes);
        }
    }

    fn extreme(t: i64, v: i64) -> StoredFix {
        let pick = |lo: i64, hi: i64| if v < 0 { lo } else { hi };
        StoredFix {
            fix: Fix {
                time: Timestamp(t),
                utc_offset_minutes: Some(pick(i64::from(i16::MIN), i64::from(i16::MAX)) as i16),
                zone_assumed: v > 0,
                coord: Coord { lat_e7: pick(i32::MIN.into(), i32::MAX.into()) as i32, lon_e7: i32::MIN },
                altitude_cm: Some(pick(i32::MIN.into(), i32::MAX.into()) as i32),
                horizontal_accuracy_cm: Some(if v < 0 { 0 } else { u32::MAX }),
                vertical_accuracy_cm: Some(u32::MAX),
                speed_cm_s: Some(0),
                course_centideg: Some(u16::MAX),
                battery_percent: Some(u8::MAX),
                motion: Some(Motion::Unknown),
                source: SourceFormat::Api,
                extras: Some(Extras::from_json_object("")),
            },
            seq: Seq(if v < 0 { 0 } else { u64::MAX }),
        }
    }

    #[test]
    fn extreme_values_round_trip() {
        let fixes = vec![extreme(i64::MIN, -1), extreme(i64::MAX, 1), extreme(0, -1), extreme(i64::MIN, 1)];
        assert_eq!(decode_chunk(&encode_chunk(&fixes)).unwrap(), fixes);
        let all_none: Vec<_> = (0..10)
            .map(|i| StoredFix {
                fix: Fix::new(Timestamp(i), Coord { lat_e7: 0, lon_e7: 0 }, SourceFormat::Unknown),
                seq: Seq(0),
            })
            .collect();
        let bytes = encode_chunk(&all_none);
        assert_eq!(decode_chunk(&bytes).unwrap(), all_none);
        assert!(bytes.len() < 40, "{} bytes", bytes.len());
        assert_eq!(decode_chunk(&encode_chunk(&[])).unwrap(), vec![]);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(decode_chunk(&[]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_chunk(&[9, 0]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_chunk(&[CODEC_VERSION, 0, 0]), Err(StoreError::Corrupt(_))));
        // Huge count.
        assert!(matches!(decode_chunk(&[CODEC_VERSION, 0xff, 0xff, 0xff, 0x7f]), Err(StoreError::Corrupt(_))));
        let fixes = vec![extreme(5, 1), extreme(6, -1)];
        let bytes = encode_chunk(&fixes);
        for cut in 0..bytes.len() {
            assert!(decode_chunk(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_chunk(&longer).is_err());
    }

    #[test]
    fn big_extras_are_compressed() {
        let scan: String = (0..200).map(|i| format!("{{\"mac\":\"00:11:22:33:44:{i:02x}\",\"rssi\":-{i}}}")).collect();
        let fixes: Vec<_> = (0..50)
            .map(|i| {
                let mut fix =
                    Fix::new(Timestamp(i * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::GoogleRecords);
                if i % 3 == 0 {
                    fix.extras = Some(Extras::from_json_object(format!("{{\"wifi\":[{scan}]}}")));
                }
                StoredFix { fix, seq: Seq(1) }
            })
            .collect();
        let raw: usize = fixes.iter().filter_map(|f| f.fix.extras.as_ref()).map(|e| e.as_str().len()).sum();
        let bytes = encode_chunk(&fixes);
        assert!(bytes.len() * 10 < raw, "{} vs {raw}", bytes.len());
        assert_eq!(decode_chunk(&bytes).unwrap(), fixes);
    }

    #[test]
    fn seconds_and_metres_use_the_divisor() {
        let fixes: Vec<_> = (0..1000)
            .map(|i| {
                let mut fix =
                    Fix::new(Timestamp(i * 15_000 + (i % 3) * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Gpx);
                fix.horizontal_accuracy_cm = Some(((i % 20) as u32 + 3) * 100);
                StoredFix { fix, seq: Seq(3) }
            })
            .collect();
        let bytes = encode_chunk(&fixes);
        // ~1 byte time + 1 byte accuracy per point; the rest is constant.
        assert!(bytes.len() < 2_100, "{}", bytes.len());
        assert_eq!(decode_chunk(&bytes).unwrap(), fixes);
    }

    #[test]
    fn raw_extras_decode_like_compressed_ones() {
        let fixes: Vec<StoredFix> = (0..100)
            .map(|i| {
                let mut fix = Fix::new(
                    Timestamp(1_700_000_000_000 + i * 1000),
                    Coord::from_degrees(52.5, 13.4).unwrap(),
                    SourceFormat::Owntracks,
                );
                fix.extras = Some(Extras::from_json_object(format!(r#"{{"tid":"BP","_id":"{i}","conn":"w"}}"#)));
                StoredFix { fix, seq: Seq(3) }
            })
            .collect();
        let raw = encode_chunk_with(&fixes, ExtrasEncoding::Raw);
        let compressed = encode_chunk(&fixes);
        assert!(compressed.len() < raw.len(), "repetitive extras compress");
        assert_eq!(decode_chunk(&raw).unwrap(), fixes);
        assert_eq!(decode_chunk(&compressed).unwrap(), fixes);
    }
}

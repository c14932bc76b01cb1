//! Garmin FIT, decoded by a small streaming reader of our own.
//!
//! Why not the `fitparser` crate: it reads whole files into memory and
//! compiles slowly, while polo needs only one message. This decoder keeps
//! the 16 local message definitions and nothing else, so memory is constant.
//!
//! Layout handled: a 12- or 14-byte file header (size, protocol, profile,
//! data size, `.FIT`, optional CRC); definition messages (local type 0–15,
//! architecture byte for endianness, field definitions, developer field
//! definitions whose bytes are skipped in the data); data messages;
//! compressed-timestamp headers (5-bit offset from the last full
//! timestamp); chained files (several FIT files back to back). CRCs are not
//! verified, but their presence is: a file that ends early is truncated.
//!
//! Global message 20 `record` becomes a fix: field 253 timestamp (seconds
//! since 1989-12-31T00:00:00Z), 0/1 position in semicircles (× 180/2³¹;
//! 0x7FFFFFFF = invalid), 2 altitude / 78 enhanced altitude (/5 − 500 m),
//! 6 speed / 73 enhanced speed (mm/s). Heart rate (3), cadence (4), distance
//! (5, metres), power (7) and temperature (13) go to the extras. Enhanced
//! fields win over their 16-bit twins.
//!
//! Records **without a position** are normal (watches without GPS, indoor
//! activities, the seconds before a fix): they are counted in
//! [`Stats::without_position`] and skipped, not rejected. A record without a
//! time is rejected. Global message 29 `location` (a "locations" file: places
//! saved on the device, not fixes of where it was) is rejected as such. A
//! file that yields no fix at all ends with
//! [`ImportError::NothingToImport`]: "no GPS fix" or "only saved locations". A file that breaks off ends with
//! [`ImportError::Malformed`] at the offending byte offset, after every
//! record before it has been emitted.

use std::io::{BufRead, ErrorKind};

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// Seconds between the Unix epoch and the FIT epoch (1989-12-31T00:00:00Z).
const FIT_EPOCH: i64 = 631_065_600;
const RECORD: u16 = 20;
/// Global message `location`: a place saved on the device.
const LOCATION: u16 = 29;
const TIMESTAMP: u8 = 253;

/// What a FIT import saw, beyond what went into the sink.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Records that became fixes.
    pub(crate) fixes: u64,
    /// Records without a valid position, skipped.
    pub(crate) without_position: u64,
    /// FIT files in the stream (chained files count each).
    pub(crate) files: u64,
    /// `location` messages (saved places), rejected.
    pub(crate) saved_locations: u64,
}

#[derive(Clone)]
struct FieldDef {
    number: u8,
    size: u8,
}

#[derive(Clone)]
struct Definition {
    global: u16,
    big_endian: bool,
    fields: Vec<FieldDef>,
    /// Total bytes of developer fields, skipped.
    developer_bytes: usize,
}

/// A reader that counts the bytes it has consumed.
struct Counted<R> {
    inner: R,
    offset: u64,
}

impl<R: BufRead> Counted<R> {
    /// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of input
    /// (nothing read), an `UnexpectedEof` error when it ends midway.
    fn read_exact_or_eof(&mut self, buf: &mut [u8]) -> std::io::Result<bool> {
        let mut done = 0;
        while done < buf.len() {
            match self.inner.read(&mut buf[done..]) {
                Ok(0) if done == 0 => return Ok(false),
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    done += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> std::io::Result<()> {
        if self.read_exact_or_eof(buf)? { Ok(()) } else { Err(ErrorKind::UnexpectedEof.into()) }
    }
}

fn malformed(at: u64, message: impl Into<String>) -> ImportError {
    ImportError::Malformed { format: "FIT", position: Position::Byte(at), message: message.into() }
}

/// Maps an early end of input to a truncation error at `at`.
fn truncated(at: u64, what: &str) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |e| {
        if e.kind() == ErrorKind::UnexpectedEof {
            malformed(at, format!("the file is truncated inside {what}"))
        } else {
            ImportError::Io(e)
        }
    }
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let stats = import_with_stats(reader, options, sink)?;
    if stats.fixes > 0 {
        return Ok(());
    }
    let why = if stats.saved_locations > 0 {
        format!(
            "only saved locations: {} location messages (a FIT locations file: places, not fixes) and no track record",
            stats.saved_locations
        )
    } else if stats.without_position > 0 {
        format!("no GPS fix: none of the {} records has a position", stats.without_position)
    } else {
        // No record at all, or only rejected ones: said by the caller's tally.
        return Ok(());
    };
    Err(ImportError::NothingToImport { why })
}

pub(crate) fn import_with_stats<R: BufRead>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Stats, ImportError> {
    let mut input = Counted { inner: reader, offset: 0 };
    let mut stats = Stats::default();
    loop {
        let start = input.offset;
        let mut size = [0u8; 1];
        if !input.read_exact_or_eof(&mut size)? {
            if stats.files == 0 {
                return Err(malformed(0, "empty file"));
            }
            return Ok(stats);
        }
        if stats.files > 0 && size[0] == 0 {
            // Zero padding after the last file.
            let mut rest = Vec::new();
            input.inner.read_to_end(&mut rest)?;
            if rest.iter().all(|&b| b == 0) {
                return Ok(stats);
            }
            return Err(malformed(start, "unexpected data after the FIT file"));
        }
        let header_size = usize::from(size[0]);
        if header_size < 12 {
            return Err(malformed(start, format!("header size {header_size} is below 12")));
        }
        let mut header = vec![0u8; header_size - 1];
        input.read_exact(&mut header).map_err(truncated(start, "the file header"))?;
        if &header[7..11] != b".FIT" {
            return Err(malformed(start, "no .FIT signature in the file header"));
        }
        let data_size = u64::from(u32::from_le_bytes([header[3], header[4], header[5], header[6]]));
        stats.files += 1;
        let data_end = input.offset + data_size;
        decode_records(&mut input, data_end, options, sink, &mut stats)?;
        let crc_at = input.offset;
        let mut crc = [0u8; 2];
        input.read_exact(&mut crc).map_err(truncated(crc_at, "the file CRC"))?;
    }
}

fn decode_records<R: BufRead>(
    input: &mut Counted<R>,
    data_end: u64,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    stats: &mut Stats,
) -> Result<(), ImportError> {
    let mut definitions: [Option<Definition>; 16] = Default::default();
    let mut last_timestamp: Option<u32> = None;
    let mut buf = Vec::with_capacity(256);
    while input.offset < data_end {
        let at = input.offset;
        let mut header = [0u8; 1];
        input.read_exact(&mut header).map_err(truncated(at, "a record header"))?;
        let header = header[0];
        if header & 0x80 != 0 {
            // Compressed timestamp header: local type in bits 5–6, offset in 0–4.
            let local = usize::from((header >> 5) & 0x03);
            let offset = u32::from(header & 0x1F);
            // A rollover past u32::MAX is no time at all (the field is u32 seconds).
            let timestamp = last_timestamp.and_then(|last| {
                let base = last & !0x1F;
                if offset >= (last & 0x1F) { base.checked_add(offset) } else { base.checked_add(offset + 0x20) }
            });
            last_timestamp = timestamp.or(last_timestamp);
            let def = definitions[local]
                .as_ref()
                .ok_or_else(|| malformed(at, format!("data for undefined local message {local}")))?;
            read_data(input, def, &mut buf, at)?;
            if def.global == RECORD {
                record(def, &buf, timestamp, at, options, sink, stats);
            } else if def.global == LOCATION {
                saved_location(at, sink, stats);
            }
            continue;
        }
        let local = usize::from(header & 0x0F);
        if header & 0x40 != 0 {
            let mut fixed = [0u8; 5];
            input.read_exact(&mut fixed).map_err(truncated(at, "a definition message"))?;
            let big_endian = fixed[1] == 1;
            let global = if big_endian {
                u16::from_be_bytes([fixed[2], fixed[3]])
            } else {
                u16::from_le_bytes([fixed[2], fixed[3]])
            };
            let mut raw = vec![0u8; usize::from(fixed[4]) * 3];
            input.read_exact(&mut raw).map_err(truncated(at, "a definition message"))?;
            let fields = raw.chunks_exact(3).map(|c| FieldDef { number: c[0], size: c[1] }).collect();
            let mut developer_bytes = 0;
            if header & 0x20 != 0 {
                let mut count = [0u8; 1];
                input.read_exact(&mut count).map_err(truncated(at, "a definition message"))?;
                let mut dev = vec![0u8; usize::from(count[0]) * 3];
                input.read_exact(&mut dev).map_err(truncated(at, "a definition message"))?;
                developer_bytes = dev.chunks_exact(3).map(|c| usize::from(c[1])).sum();
            }
            definitions[local] = Some(Definition { global, big_endian, fields, developer_bytes });
        } else {
            let def = definitions[local]
                .as_ref()
                .ok_or_else(|| malformed(at, format!("data for undefined local message {local}")))?;
            read_data(input, def, &mut buf, at)?;
            if let Some(ts) = field(def, &buf, TIMESTAMP).filter(|&v| v != u64::from(u32::MAX)) {
                // FIT timestamps are u32, so this cannot truncate.
                #[allow(clippy::cast_possible_truncation)]
                {
                    last_timestamp = Some(ts as u32);
                }
            }
            if def.global == RECORD {
                record(def, &buf, None, at, options, sink, stats);
            } else if def.global == LOCATION {
                saved_location(at, sink, stats);
            }
        }
    }
    if input.offset > data_end {
        return Err(malformed(data_end, "a record runs past the data size given in the header"));
    }
    Ok(())
}

fn read_data<R: BufRead>(
    input: &mut Counted<R>,
    def: &Definition,
    buf: &mut Vec<u8>,
    at: u64,
) -> Result<(), ImportError> {
    let size: usize = def.fields.iter().map(|f| usize::from(f.size)).sum::<usize>() + def.developer_bytes;
    buf.clear();
    buf.resize(size, 0);
    input.read_exact(buf).map_err(truncated(at, "a data message"))
}

/// The unsigned value of field `number` (1, 2 or 4 bytes), in the
/// definition's byte order.
fn field(def: &Definition, data: &[u8], number: u8) -> Option<u64> {
    let mut offset = 0;
    for f in &def.fields {
        let size = usize::from(f.size);
        if f.number == number {
            let bytes = data.get(offset..offset + size)?;
            let mut value = 0u64;
            match size {
                1 | 2 | 4 => {
                    for (i, &b) in bytes.iter().enumerate() {
                        let shift = if def.big_endian { 8 * (size - 1 - i) } else { 8 * i };
                        value |= u64::from(b) << shift;
                    }
                    return Some(value);
                }
                _ => return None,
            }
        }
        offset += size;
    }
    None
}

/// A `location` message: a place saved on the device, never a fix.
fn saved_location(at: u64, sink: &mut dyn Sink, stats: &mut Stats) {
    stats.saved_locations += 1;
    let why = "saved location (FIT location message): a place stored on the device, not a fix of where it was";
    sink.reject(Reject::new(Position::Byte(at), why, "location"));
}

/// Reads one `record` message.
fn record(
    def: &Definition,
    data: &[u8],
    compressed_time: Option<u32>,
    at: u64,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    stats: &mut Stats,
) {
    let u32_field = |n| field(def, data, n).filter(|&v| v != u64::from(u32::MAX));
    let u16_field = |n| field(def, data, n).filter(|&v| v != u64::from(u16::MAX));
    let u8_field = |n| field(def, data, n).filter(|&v| v != u64::from(u8::MAX));
    // Semicircles are sint32; 0x7FFFFFFF marks "invalid".
    #[allow(clippy::cast_possible_truncation)]
    let semicircles = |n| field(def, data, n).map(|v| v as u32 as i32).filter(|&v| v != i32::MAX);
    let (Some(lat), Some(lon)) = (semicircles(0), semicircles(1)) else {
        stats.without_position += 1;
        sink.not_location("FIT record without a position (no GPS fix)");
        return;
    };
    let raw = || format!("record lat={lat} long={lon}");
    let Some(seconds) = u32_field(TIMESTAMP).or(compressed_time.map(u64::from)) else {
        sink.reject(Reject::new(Position::Byte(at), "record without timestamp", &raw()));
        return;
    };
    if seconds < 0x1000_0000 {
        // FIT: values below 0x10000000 count seconds since the device powered on.
        let why = format!("timestamp {seconds} is relative to device power-on, not a date");
        sink.reject(Reject::new(Position::Byte(at), why, &raw()));
        return;
    }
    // u32 seconds fit an i64.
    #[allow(clippy::cast_possible_wrap)]
    let Some(time) = Timestamp::from_unix_seconds(seconds as i64 + FIT_EPOCH) else {
        return;
    };
    if let Err(why) = options.check_time(time) {
        sink.reject(Reject::new(Position::Byte(at), why, &raw()));
        return;
    }
    let scale = 180.0 / 2f64.powi(31);
    let coord = match Coord::from_degrees(f64::from(lat) * scale, f64::from(lon) * scale) {
        Ok(c) => c,
        Err(e) => {
            sink.reject(Reject::new(Position::Byte(at), format!("position_lat/position_long: {e}"), &raw()));
            return;
        }
    };
    let mut fix = Fix::new(time, coord, SourceFormat::Fit);
    // Field values are at most u32: exact in f64.
    #[allow(clippy::cast_precision_loss)]
    {
        let mut extras = ExtrasBuilder::new();
        let mut out_of_range = OutOfRange::default();
        if let Some(alt) = u32_field(78).or_else(|| u16_field(2)) {
            measure::set_as(
                &mut fix,
                Column::Altitude,
                alt as f64 / 5.0 - 500.0,
                "altitude",
                &mut extras,
                &mut out_of_range,
            );
        }
        if let Some(speed) = u32_field(73).or_else(|| u16_field(6)) {
            measure::set_as(&mut fix, Column::Speed, speed as f64 / 1000.0, "speed", &mut extras, &mut out_of_range);
        }
        out_of_range.report(sink);
        if let Some(v) = u8_field(3) {
            extras.number("heart_rate", v as f64);
        }
        if let Some(v) = u8_field(4) {
            extras.number("cadence", v as f64);
        }
        if let Some(v) = u32_field(5) {
            extras.number("distance", v as f64 / 100.0);
        }
        if let Some(v) = u16_field(7) {
            extras.number("power", v as f64);
        }
        // sint8; 0x7F is invalid.
        #[allow(clippy::cast_possible_truncation)]
        if let Some(v) = field(def, data, 13).map(|v| v as u8 as i8).filter(|&v| v != i8::MAX) {
            extras.number("temperature", f64::from(v));
        }
        fix.extras = extras.finish();
    }
    stats.fixes += 1;
    sink.point(fix, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, corpus, options};

    /// A tiny FIT writer for fixtures.
    struct Writer {
        data: Vec<u8>,
    }

    impl Writer {
        fn new() -> Self {
            Self { data: Vec::new() }
        }

        /// Definition: local type, global number, fields `(number, size, base type)`, developer field sizes.
        fn define(&mut self, local: u8, global: u16, big_endian: bool, fields: &[(u8, u8)], dev: &[u8]) -> &mut Self {
            self.data.push(0x40 | local | if dev.is_empty() { 0 } else { 0x20 });
            self.data.push(0);
            self.data.push(u8::from(big_endian));
            let g = if big_endian { global.to_be_bytes() } else { global.to_le_bytes() };
            self.data.extend_from_slice(&g);
            self.data.push(fields.len() as u8);
            for &(n, s) in fields {
                self.data.extend_from_slice(&[n, s, 0x86]);
            }
            if !dev.is_empty() {
                self.data.push(dev.len() as u8);
                for (i, &s) in dev.iter().enumerate() {
                    self.data.extend_from_slice(&[i as u8, s, 0]);
                }
            }
            self
        }

        /// A data message; values are written with the given sizes.
        fn data(&mut self, header: u8, values: &[(u64, u8)], big_endian: bool, dev: &[u8]) -> &mut Self {
            self.data.push(header);
            for &(v, size) in values {
                let bytes = v.to_le_bytes();
                let mut part = bytes[..usize::from(size)].to_vec();
                if big_endian {
                    part.reverse();
                }
                self.data.extend_from_slice(&part);
            }
            self.data.extend_from_slice(dev);
            self
        }

        fn file(&self, header_size: u8) -> Vec<u8> {
            let mut out = vec![header_size, 0x10, 0x08, 0x08];
            out.extend_from_slice(&(self.data.len() as u32).to_le_bytes());
            out.extend_from_slice(b".FIT");
            if header_size == 14 {
                out.extend_from_slice(&[0, 0]);
            }
            out.extend_from_slice(&self.data);
            out.extend_from_slice(&[0, 0]);
            out
        }
    }

    fn semi(deg: f64) -> u64 {
        u64::from((deg * 2f64.powi(31) / 180.0).round() as i32 as u32)
    }

    const T0: u64 = 1_000_000_000; // 2021-09-09T01:46:40Z in FIT seconds

    fn unix_ms(fit: u64) -> i64 {
        (fit as i64 + FIT_EPOCH) * 1000
    }

    fn run(bytes: &[u8]) -> (Collect, Result<Stats, ImportError>) {
        let mut sink = Collect::default();
        let r = import_with_stats(bytes, &options(), &mut sink);
        (sink, r)
    }

    fn basic() -> Writer {
        let mut w = Writer::new();
        w.define(0, RECORD, false, &[(253, 4), (0, 4), (1, 4), (2, 2), (6, 2), (3, 1), (4, 1), (5, 4), (13, 1)], &[]);
        w.data(
            0,
            &[
                (T0, 4),
                (semi(48.19), 4),
                (semi(-11.5), 4),
                (2600, 2),
                (2500, 2),
                (120, 1),
                (80, 1),
                (12345, 4),
                (0xFE, 1),
            ],
            false,
            &[],
        );
        w
    }

    #[test]
    fn record_fields_and_units() {
        for header in [12, 14] {
            let (s, r) = run(&basic().file(header));
            assert_eq!(r.unwrap().fixes, 1);
            let f = s.fixes()[0];
            assert_eq!(f.time.0, unix_ms(T0));
            assert!((f.coord.lat() - 48.19).abs() < 1e-6 && (f.coord.lon() + 11.5).abs() < 1e-6, "{:?}", f.coord);
            assert_eq!((f.altitude_cm, f.speed_cm_s), (Some(2000), Some(250)));
            assert_eq!(
                f.extras.as_ref().unwrap().as_str(),
                r#"{"heart_rate":120,"cadence":80,"distance":123.45,"temperature":-2}"#
            );
            assert_eq!(f.source, SourceFormat::Fit);
        }
    }

    #[test]
    fn enhanced_fields_win_and_big_endian_definitions() {
        let mut w = Writer::new();
        w.define(3, RECORD, true, &[(253, 4), (0, 4), (1, 4), (2, 2), (78, 4), (6, 2), (73, 4)], &[]);
        w.data(3, &[(T0, 4), (semi(1.0), 4), (semi(2.0), 4), (2600, 2), (3000, 4), (1000, 2), (4321, 4)], true, &[]);
        let (s, _) = run(&w.file(14));
        let f = s.fixes()[0];
        assert_eq!((f.altitude_cm, f.speed_cm_s), (Some(10000), Some(432)));
        assert_eq!(f.coord, Coord::from_degrees(1.0, 2.0).unwrap());
    }

    #[test]
    fn compressed_timestamps_and_developer_fields() {
        let mut w = Writer::new();
        // A full timestamp from another message (event, 21), then compressed records.
        w.define(1, 21, false, &[(253, 4)], &[]);
        w.data(1, &[(T0 + 30, 4)], false, &[]); // low 5 bits of T0+30 are 14 (T0 ≡ 0 mod 32)
        w.define(0, RECORD, false, &[(0, 4), (1, 4)], &[2, 1]);
        w.data(0x80 | 31, &[(semi(10.0), 4), (semi(20.0), 4)], false, &[9, 9, 9]);
        w.data(0x80 | 3, &[(semi(10.1), 4), (semi(20.1), 4)], false, &[9, 9, 9]); // 3 < 31: rolled over
        let (s, r) = run(&w.file(14));
        assert_eq!(r.unwrap().fixes, 2);
        let t: Vec<_> = s.fixes().iter().map(|f| f.time.0).collect();
        assert_eq!(t, [unix_ms(T0 + 31), unix_ms(T0 + 32 + 3)]);
    }

    #[test]
    fn records_without_position_are_counted_not_rejected() {
        let mut w = Writer::new();
        w.define(0, RECORD, false, &[(253, 4), (0, 4), (1, 4), (3, 1)], &[]);
        w.data(0, &[(T0, 4), (0x7FFF_FFFF, 4), (0x7FFF_FFFF, 4), (100, 1)], false, &[]);
        w.data(0, &[(T0 + 1, 4), (semi(5.0), 4), (semi(5.0), 4), (100, 1)], false, &[]);
        w.define(1, RECORD, false, &[(253, 4), (3, 1)], &[]);
        w.data(1, &[(T0 + 2, 4), (101, 1)], false, &[]);
        let (s, r) = run(&w.file(14));
        assert_eq!(r.unwrap(), Stats { fixes: 1, without_position: 2, files: 1, saved_locations: 0 });
        assert!(s.rejects.is_empty());
    }

    #[test]
    fn a_file_without_a_gps_fix_or_with_only_saved_locations_is_nothing_to_import() {
        let mut w = Writer::new();
        w.define(0, RECORD, false, &[(253, 4), (0, 4), (1, 4), (3, 1)], &[]);
        w.data(0, &[(T0, 4), (0x7FFF_FFFF, 4), (0x7FFF_FFFF, 4), (100, 1)], false, &[]);
        let mut sink = Collect::default();
        let err = import(&w.file(14)[..], &options(), &mut sink).unwrap_err();
        assert!(matches!(&err, ImportError::NothingToImport { why } if why.starts_with("no GPS fix")), "{err}");

        let mut w = Writer::new();
        w.define(0, LOCATION, false, &[(253, 4), (1, 4), (2, 4)], &[]);
        w.data(0, &[(T0, 4), (semi(5.0), 4), (semi(6.0), 4)], false, &[]);
        w.data(0, &[(T0, 4), (semi(7.0), 4), (semi(8.0), 4)], false, &[]);
        let mut sink = Collect::default();
        let err = import(&w.file(14)[..], &options(), &mut sink).unwrap_err();
        assert!(
            matches!(&err, ImportError::NothingToImport { why } if why.starts_with("only saved locations: 2")),
            "{err}"
        );
        assert_eq!(sink.rejects.len(), 2);
        assert!(sink.rejects[0].reason.starts_with("saved location"));
        // Through the public entry point the exit is the same.
        let err = crate::import(&w.file(14)[..], &options(), &mut Collect::default()).unwrap_err();
        assert!(err.to_string().starts_with("nothing to import: only saved locations"), "{err}");
    }

    #[test]
    fn relative_clock_and_missing_time_are_rejected() {
        let mut w = Writer::new();
        w.define(0, RECORD, false, &[(253, 4), (0, 4), (1, 4)], &[]);
        w.data(0, &[(1000, 4), (semi(5.0), 4), (semi(5.0), 4)], false, &[]);
        w.define(1, RECORD, false, &[(0, 4), (1, 4)], &[]);
        w.data(1, &[(semi(5.0), 4), (semi(5.0), 4)], false, &[]);
        let (s, _) = run(&w.file(12));
        assert!(s.rejects[0].reason.contains("power-on"));
        assert_eq!(s.rejects[1].reason, "record without timestamp");
        assert!(matches!(s.rejects[1].position, Position::Byte(b) if b > 12));
    }

    #[test]
    fn chained_files() {
        let mut bytes = basic().file(14);
        bytes.extend(basic().file(12));
        bytes.extend([0, 0, 0]);
        let (s, r) = run(&bytes);
        assert_eq!(r.unwrap().files, 2);
        assert_eq!(s.points.len(), 2);
    }

    #[test]
    fn truncated_file_keeps_the_records_before_the_break() {
        let mut w = basic();
        w.data(
            0,
            &[
                (T0 + 1, 4),
                (semi(48.2), 4),
                (semi(-11.5), 4),
                (2600, 2),
                (2500, 2),
                (120, 1),
                (80, 1),
                (12345, 4),
                (0, 1),
            ],
            false,
            &[],
        );
        let full = w.file(14);
        let cut = &full[..full.len() - 10];
        let (s, r) = run(cut);
        assert_eq!(s.points.len(), 1);
        let err = r.unwrap_err();
        assert!(matches!(err, ImportError::Malformed { format: "FIT", position: Position::Byte(_), .. }), "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
        // Only the CRC missing is a truncation too.
        let (s, r) = run(&full[..full.len() - 1]);
        assert_eq!(s.points.len(), 2);
        assert!(r.unwrap_err().to_string().contains("CRC"));
    }

    #[test]
    fn garbage_is_malformed() {
        let (_, r) = run(b"\x0e\x10\x00\x00\x00\x00\x00\x00NOPE\x00\x00");
        assert!(r.unwrap_err().to_string().contains(".FIT"));
        let mut w = Writer::new();
        w.data(5, &[], false, &[]);
        let (_, r) = run(&w.file(14));
        assert!(r.unwrap_err().to_string().contains("undefined local message 5"));
    }

    /// The Forerunner 10 file must give the same points as GPSBabel's GPX rendering of it.
    #[test]
    fn forerunner_10_matches_gpsbabel() {
        let Some(dir) = corpus("fit") else { return };
        let fit = std::fs::read(dir.join("gpsbabel__garmin-forerunner-10.fit")).unwrap();
        let gpx = std::fs::read(dir.join("gpsbabel__garmin-forerunner-10-output.gpx")).unwrap();
        let (from_fit, r) = run(&fit);
        r.unwrap();
        let mut from_gpx = Collect::default();
        crate::gpx::import(&gpx[..], &options(), &mut from_gpx).unwrap();
        let (a, b) = (from_fit.fixes(), from_gpx.fixes());
        assert!(a.len() >= 20 && b.len() >= 20, "{} / {}", a.len(), b.len());
        for (x, y) in a.iter().zip(&b).take(50) {
            assert_eq!(x.time, y.time);
            assert!((x.coord.lat() - y.coord.lat()).abs() < 1e-6 && (x.coord.lon() - y.coord.lon()).abs() < 1e-6);
            assert_eq!(x.speed_cm_s.map(|v| v / 10), y.speed_cm_s.map(|v| v / 10));
        }
    }
}

//! Small photo and video files with chosen metadata, for tests and for
//! `polo-bench photos`: a JPEG, PNG, WebP or HEIC whose EXIF holds a capture time
//! (with or without its offset), a camera and a GPS position and time
//! stamp, and an MP4 or MOV whose movie header holds a creation time and
//! whose `©xyz` box holds an ISO 6709 location. Only a JPEG carries a
//! picture (a small landscape, the same in each); the others carry no
//! pixels worth showing: only the metadata is real.

use polo_domain::{Coord, Timestamp};

/// What a synthetic file says about itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spec {
    /// Wall-clock capture time (written as `DateTimeOriginal`, or the movie's creation time as UTC).
    pub wall: Option<Timestamp>,
    /// Its offset in minutes east of UTC (`OffsetTimeOriginal`), when written.
    pub offset_minutes: Option<i16>,
    /// A GPS position (and for images, the GPS time stamp, UTC, when given).
    pub position: Option<Coord>,
    /// GPS altitude in metres.
    pub altitude_m: Option<f64>,
    /// The GPS time stamp (UTC).
    pub gps_time: Option<Timestamp>,
    /// Camera make and model.
    pub make_model: Option<(String, String)>,
}

/// Bytes standing in for pixels, so that a file is as long as a small real one's headers.
const FILLER: &[u8] = &[b'.'; 4096];

/// A 96 × 72 JPEG (sky, meadow, sun) whose image data every synthetic JPEG
/// carries after its metadata, so it decodes like a photo.
const PIXELS: &[u8] = include_bytes!("synthetic_pixels.jpg");

/// Image containers [`image`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// EXIF in an APP1 segment.
    Jpeg,
    /// EXIF in an `eXIf` chunk.
    Png,
    /// EXIF in an `EXIF` chunk of an extended (`VP8X`) WebP.
    Webp,
    /// EXIF as the `Exif` item of a HEIF (`ftyp heic`), located by `iloc` in `mdat`.
    Heic,
}

/// Video containers [`video`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoFormat {
    /// ISO base media (`ftyp isom`).
    Mp4,
    /// QuickTime (`ftyp qt  `).
    Mov,
}

/// An image file with `spec`'s metadata.
#[must_use]
pub fn image(format: ImageFormat, spec: &Spec) -> Vec<u8> {
    let tiff = tiff(spec);
    match format {
        ImageFormat::Jpeg => {
            let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
            let len = u16::try_from(2 + 6 + tiff.len()).expect("EXIF fits a segment");
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(b"Exif\0\0");
            out.extend_from_slice(&tiff);
            // A comment standing in for the rest of a real photo's headers.
            out.extend_from_slice(&[0xFF, 0xFE]);
            out.extend_from_slice(&u16::try_from(2 + FILLER.len()).expect("small").to_be_bytes());
            out.extend_from_slice(FILLER);
            // A small real picture (tables, frame, scan, end), so thumbnails can be made of it.
            let body = PIXELS.windows(2).position(|w| w == [0xFF, 0xDB]).expect("the picture has its tables");
            out.extend_from_slice(&PIXELS[body..]);
            out
        }
        ImageFormat::Png => {
            let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
            let mut ihdr = Vec::new();
            ihdr.extend_from_slice(&1u32.to_be_bytes());
            ihdr.extend_from_slice(&1u32.to_be_bytes());
            ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
            png_chunk(&mut out, b"IHDR", &ihdr);
            png_chunk(&mut out, b"eXIf", &tiff);
            png_chunk(&mut out, b"IEND", &[]);
            out
        }
        ImageFormat::Heic => heic(&tiff),
        ImageFormat::Webp => {
            let mut body = b"WEBP".to_vec();
            let mut vp8x = vec![0x08, 0, 0, 0]; // flags: EXIF present
            vp8x.extend_from_slice(&[0, 0, 0, 0, 0, 0]); // canvas 1 × 1 (stored minus one)
            riff_chunk(&mut body, b"VP8X", &vp8x);
            riff_chunk(&mut body, b"EXIF", &tiff);
            let mut out = b"RIFF".to_vec();
            out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
            out.extend_from_slice(&body);
            out
        }
    }
}

/// A HEIF whose only item is the EXIF block (`Exif\0\0` after a 4-byte offset, as cameras write it).
fn heic(tiff: &[u8]) -> Vec<u8> {
    let mut ftyp = b"heic".to_vec();
    ftyp.extend_from_slice(&0u32.to_be_bytes());
    ftyp.extend_from_slice(b"mif1heic");
    let mut item = 6u32.to_be_bytes().to_vec();
    item.extend_from_slice(b"Exif\0\0");
    item.extend_from_slice(tiff);
    // The meta box, with the item's file offset filled in once the box's length is known.
    let meta = |offset: u32| {
        let mut hdlr = vec![0; 4 + 4];
        hdlr.extend_from_slice(b"pict");
        hdlr.extend_from_slice(&[0; 12 + 1]);
        let mut infe = vec![2, 0, 0, 0]; // version 2
        infe.extend_from_slice(&1u16.to_be_bytes()); // item id
        infe.extend_from_slice(&0u16.to_be_bytes()); // protection index
        infe.extend_from_slice(b"Exif\0");
        let mut iinf = vec![0, 0, 0, 0];
        iinf.extend_from_slice(&1u16.to_be_bytes());
        mp4_box(&mut iinf, b"infe", &infe);
        let mut iloc = vec![0, 0, 0, 0, 0x44, 0x00]; // version 0; 4-byte offsets and lengths
        iloc.extend_from_slice(&1u16.to_be_bytes()); // one item
        iloc.extend_from_slice(&1u16.to_be_bytes()); // item id
        iloc.extend_from_slice(&0u16.to_be_bytes()); // data reference: this file
        iloc.extend_from_slice(&1u16.to_be_bytes()); // one extent
        iloc.extend_from_slice(&offset.to_be_bytes());
        iloc.extend_from_slice(&u32::try_from(item.len()).expect("small").to_be_bytes());
        let mut body = vec![0, 0, 0, 0];
        mp4_box(&mut body, b"hdlr", &hdlr);
        mp4_box(&mut body, b"iinf", &iinf);
        mp4_box(&mut body, b"iloc", &iloc);
        let mut meta = Vec::new();
        mp4_box(&mut meta, b"meta", &body);
        meta
    };
    let mut out = Vec::new();
    mp4_box(&mut out, b"ftyp", &ftyp);
    let offset = out.len() + meta(0).len() + 8;
    out.extend_from_slice(&meta(u32::try_from(offset).expect("small")));
    mp4_box(&mut out, b"mdat", &item);
    out
}

/// A video file with `spec`'s creation time (`wall`, as UTC) and position.
#[must_use]
pub fn video(format: VideoFormat, spec: &Spec) -> Vec<u8> {
    let mut out = Vec::new();
    let mut ftyp = match format {
        VideoFormat::Mp4 => b"isom".to_vec(),
        VideoFormat::Mov => b"qt  ".to_vec(),
    };
    ftyp.extend_from_slice(&512u32.to_be_bytes());
    ftyp.extend_from_slice(match format {
        VideoFormat::Mp4 => b"isomiso2mp41",
        VideoFormat::Mov => b"qt  ",
    });
    mp4_box(&mut out, b"ftyp", &ftyp);
    // Seconds from 1904-01-01 to 1970-01-01.
    const MAC_EPOCH_S: i64 = 2_082_844_800;
    let created = spec.wall.map_or(0, |t| u32::try_from(t.0.div_euclid(1000) + MAC_EPOCH_S).unwrap_or(0));
    let mut mvhd = vec![0, 0, 0, 0]; // version 0, flags
    mvhd.extend_from_slice(&created.to_be_bytes());
    mvhd.extend_from_slice(&created.to_be_bytes());
    mvhd.extend_from_slice(&1000u32.to_be_bytes()); // time scale
    mvhd.extend_from_slice(&5000u32.to_be_bytes()); // five seconds
    mvhd.extend_from_slice(&0x0001_0000u32.to_be_bytes()); // rate 1.0
    mvhd.extend_from_slice(&0x0100u16.to_be_bytes()); // volume 1.0
    mvhd.extend_from_slice(&[0; 10]);
    // The identity matrix.
    for value in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        mvhd.extend_from_slice(&value.to_be_bytes());
    }
    mvhd.extend_from_slice(&[0; 24]);
    mvhd.extend_from_slice(&2u32.to_be_bytes()); // next track id
    let mut moov = Vec::new();
    mp4_box(&mut moov, b"mvhd", &mvhd);
    if let Some(position) = spec.position {
        let text = iso6709(position, spec.altitude_m);
        let mut xyz = u16::try_from(text.len()).expect("short").to_be_bytes().to_vec();
        xyz.extend_from_slice(&0x15C7u16.to_be_bytes()); // language
        xyz.extend_from_slice(text.as_bytes());
        let mut udta = Vec::new();
        mp4_box(&mut udta, b"\xA9xyz", &xyz);
        mp4_box(&mut moov, b"udta", &udta);
    }
    mp4_box(&mut out, b"moov", &moov);
    mp4_box(&mut out, b"mdat", &[]);
    out
}

/// ISO 6709 as phones write it: `+53.8655+010.6866+012.000/`.
fn iso6709(position: Coord, altitude_m: Option<f64>) -> String {
    let mut text = format!("{:+08.4}{:+09.4}", position.lat(), position.lon());
    if let Some(altitude) = altitude_m {
        text.push_str(&format!("{altitude:+08.3}"));
    }
    text.push('/');
    text
}

fn mp4_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&u32::try_from(8 + body.len()).expect("small").to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}

fn riff_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_le_bytes());
    out.extend_from_slice(body);
    if body.len() % 2 == 1 {
        out.push(0);
    }
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&u32::try_from(body.len()).expect("small").to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The CRC-32 PNG chunks end with (IEEE, reflected).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// One IFD entry: tag, TIFF type, count and the value's bytes (little endian).
struct Entry {
    tag: u16,
    kind: u16,
    count: u32,
    value: Vec<u8>,
}

const ASCII: u16 = 2;
const BYTE: u16 = 1;
const LONG: u16 = 4;
const RATIONAL: u16 = 5;

fn ascii(tag: u16, text: &str) -> Entry {
    let mut value = text.as_bytes().to_vec();
    value.push(0);
    Entry { tag, kind: ASCII, count: u32::try_from(value.len()).expect("short"), value }
}

fn rationals(tag: u16, values: &[(u32, u32)]) -> Entry {
    let value = values.iter().flat_map(|(n, d)| n.to_le_bytes().into_iter().chain(d.to_le_bytes())).collect();
    Entry { tag, kind: RATIONAL, count: u32::try_from(values.len()).expect("short"), value }
}

fn long(tag: u16, value: u32) -> Entry {
    Entry { tag, kind: LONG, count: 1, value: value.to_le_bytes().to_vec() }
}

/// Degrees as EXIF's degrees, minutes and seconds (seconds to 1/10000).
fn dms(degrees: f64) -> [(u32, u32); 3] {
    let degrees = degrees.abs();
    let whole = degrees.trunc();
    let minutes = (degrees - whole) * 60.0;
    let seconds = (minutes - minutes.trunc()) * 60.0;
    [(whole as u32, 1), (minutes.trunc() as u32, 1), ((seconds * 10_000.0).round() as u32, 10_000)]
}

fn exif_datetime(t: Timestamp) -> String {
    let (y, mo, d, h, mi, s, _) = t.civil(0);
    format!("{y:04}:{mo:02}:{d:02} {h:02}:{mi:02}:{s:02}")
}

/// An IFD at `at` (offset from the TIFF header), its out-of-line values after it.
fn ifd(entries: &[Entry], at: usize) -> Vec<u8> {
    let table = 2 + 12 * entries.len() + 4;
    let mut out = u16::try_from(entries.len()).expect("few").to_le_bytes().to_vec();
    let mut data = Vec::new();
    for entry in entries {
        out.extend_from_slice(&entry.tag.to_le_bytes());
        out.extend_from_slice(&entry.kind.to_le_bytes());
        out.extend_from_slice(&entry.count.to_le_bytes());
        if entry.value.len() <= 4 {
            let mut inline = entry.value.clone();
            inline.resize(4, 0);
            out.extend_from_slice(&inline);
        } else {
            let offset = u32::try_from(at + table + data.len()).expect("small");
            out.extend_from_slice(&offset.to_le_bytes());
            data.extend_from_slice(&entry.value);
            if data.len() % 2 == 1 {
                data.push(0);
            }
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    out.extend_from_slice(&data);
    out
}

/// A little-endian TIFF holding IFD0 (camera), the EXIF IFD (time) and the GPS IFD.
fn tiff(spec: &Spec) -> Vec<u8> {
    let mut exif_entries = Vec::new();
    if let Some(wall) = spec.wall {
        exif_entries.push(ascii(0x9003, &exif_datetime(wall)));
        if let Some(offset) = spec.offset_minutes {
            let sign = if offset < 0 { '-' } else { '+' };
            let text = format!("{sign}{:02}:{:02}", offset.unsigned_abs() / 60, offset.unsigned_abs() % 60);
            exif_entries.push(ascii(0x9011, &text));
        }
    }
    let mut gps_entries = Vec::new();
    if let Some(position) = spec.position {
        gps_entries.push(Entry { tag: 0x0000, kind: BYTE, count: 4, value: vec![2, 3, 0, 0] });
        gps_entries.push(ascii(0x0001, if position.lat() < 0.0 { "S" } else { "N" }));
        gps_entries.push(rationals(0x0002, &dms(position.lat())));
        gps_entries.push(ascii(0x0003, if position.lon() < 0.0 { "W" } else { "E" }));
        gps_entries.push(rationals(0x0004, &dms(position.lon())));
        if let Some(altitude) = spec.altitude_m {
            gps_entries.push(Entry { tag: 0x0005, kind: BYTE, count: 1, value: vec![u8::from(altitude < 0.0)] });
            gps_entries.push(rationals(0x0006, &[((altitude.abs() * 100.0).round() as u32, 100)]));
        }
    }
    if let Some(utc) = spec.gps_time {
        let (y, mo, d, h, mi, s, _) = utc.civil(0);
        gps_entries.push(rationals(0x0007, &[(h, 1), (mi, 1), (s, 1)]));
        gps_entries.push(ascii(0x001D, &format!("{y:04}:{mo:02}:{d:02}")));
    }
    let mut ifd0_entries = Vec::new();
    if let Some((make, model)) = &spec.make_model {
        ifd0_entries.push(ascii(0x010F, make));
        ifd0_entries.push(ascii(0x0110, model));
    }
    // Pointers to the sub-IFDs, filled once their offsets are known.
    let has_exif = !exif_entries.is_empty();
    let has_gps = !gps_entries.is_empty();
    if has_exif {
        ifd0_entries.push(long(0x8769, 0));
    }
    if has_gps {
        ifd0_entries.push(long(0x8825, 0));
    }
    let ifd0_len = ifd(&ifd0_entries, 8).len();
    let exif_at = 8 + ifd0_len;
    let exif = ifd(&exif_entries, exif_at);
    let gps_at = exif_at + if has_exif { exif.len() } else { 0 };
    for entry in &mut ifd0_entries {
        match entry.tag {
            0x8769 => entry.value = u32::try_from(exif_at).expect("small").to_le_bytes().to_vec(),
            0x8825 => entry.value = u32::try_from(gps_at).expect("small").to_le_bytes().to_vec(),
            _ => {}
        }
    }
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&ifd(&ifd0_entries, 8));
    if has_exif {
        out.extend_from_slice(&exif);
    }
    if has_gps {
        out.extend_from_slice(&ifd(&gps_entries, gps_at));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_chunks_carry_the_crc_of_the_standard() {
        // The CRC of IEND, which every PNG ends with.
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn iso6709_is_written_as_phones_do() {
        let c = Coord::from_degrees(53.8655, 10.6866).unwrap();
        assert_eq!(iso6709(c, None), "+53.8655+010.6866/");
        assert_eq!(iso6709(Coord::from_degrees(-33.9, -151.2).unwrap(), Some(12.0)), "-33.9000-151.2000+012.000/");
    }
}

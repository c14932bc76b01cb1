//! The embedded data files and their layout.
//!
//! `tools/geodata/build.py` writes both files; this module is the only
//! reader, and the two must change together (the magic carries a version).
//! Each file is one zlib stream (`flate2` inflates it, pure Rust) of:
//!
//! * integers as LEB128 varints, signed ones zigzag-encoded first;
//! * text as a varint byte length and UTF-8 bytes;
//! * a country code as two ASCII bytes, or two zero bytes for none;
//! * coordinates in fixed point, 1e-5 degree ("E5", about 1.1 m).
//!
//! `countries.bin.z`: magic `PGCTRY01`; the country table (count, then code
//! and name each); the polygons (count, then per polygon its country index
//! and ring count, per ring its vertex count and the vertices as deltas of
//! longitude and latitude from the previous vertex of the file). The first
//! ring of a polygon is the outer one, the others are holes. Longitudes are
//! unwrapped: a ring that crosses the antimeridian continues past +180.
//!
//! `towns.bin.z`: magic `PGTOWN01`; the country codes; the region names; the
//! town count; then one column after the other (latitude deltas, longitude
//! deltas, country indices, region indices where 0 means none and `i`
//! names region `i - 1`, names). Columns compress much better than rows.

use std::io::Read;

use crate::GeocodeError;

/// Fixed-point scale of the coordinates in the files: units per degree.
pub(crate) const E5: f64 = 1e5;

/// Country polygons, compressed, as written by `build.py`.
pub(crate) const COUNTRIES_FILE: &[u8] = include_bytes!("../data/countries.bin.z");
/// Towns, compressed, as written by `build.py`.
pub(crate) const TOWNS_FILE: &[u8] = include_bytes!("../data/towns.bin.z");

const COUNTRIES_MAGIC: [u8; 8] = *b"PGCTRY01";
const TOWNS_MAGIC: [u8; 8] = *b"PGTOWN01";

/// A two-letter country code as stored, ASCII.
pub(crate) type Code = [u8; 2];

/// Inflates one embedded file.
pub(crate) fn inflate(file: &'static str, compressed: &[u8]) -> Result<Vec<u8>, GeocodeError> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .read_to_end(&mut out)
        .map_err(|source| GeocodeError::Inflate { file, source })?;
    Ok(out)
}

/// A cursor over inflated bytes that reports where it failed.
pub(crate) struct Reader<'a> {
    file: &'static str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(file: &'static str, bytes: &'a [u8], magic: [u8; 8]) -> Result<Self, GeocodeError> {
        let mut reader = Self { file, bytes, pos: 0 };
        if reader.take(magic.len())? != magic.as_slice() {
            return Err(reader.corrupt("wrong magic: the file was written by another version of build.py"));
        }
        Ok(reader)
    }

    fn corrupt(&self, why: &'static str) -> GeocodeError {
        GeocodeError::Corrupt { file: self.file, offset: self.pos, why }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], GeocodeError> {
        let end = self.pos.checked_add(len).filter(|&end| end <= self.bytes.len());
        let end = end.ok_or_else(|| self.corrupt("unexpected end of data"))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn uvarint(&mut self) -> Result<u64, GeocodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("varint longer than 64 bits"))
    }

    /// A varint that must fit in `u32` (counts, lengths and indices).
    fn count(&mut self) -> Result<u32, GeocodeError> {
        let value = self.uvarint()?;
        u32::try_from(value).map_err(|_| self.corrupt("count out of range"))
    }

    /// A zigzag varint that must fit in `i32` (coordinate deltas).
    fn delta(&mut self) -> Result<i32, GeocodeError> {
        let raw = self.uvarint()?;
        // Zigzag: 0, -1, 1, -2, … ↔ 0, 1, 2, 3, …; the shift leaves 63 bits, so the cast is lossless.
        #[allow(clippy::cast_possible_wrap)]
        let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
        i32::try_from(value).map_err(|_| self.corrupt("coordinate delta out of range"))
    }

    fn text(&mut self) -> Result<&'a str, GeocodeError> {
        let len = self.count()? as usize;
        let raw = self.take(len)?;
        std::str::from_utf8(raw).map_err(|_| self.corrupt("text is not UTF-8"))
    }

    fn code(&mut self) -> Result<Option<Code>, GeocodeError> {
        let raw = self.take(2)?;
        match raw {
            [0, 0] => Ok(None),
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Some([*a, *b])),
            _ => Err(self.corrupt("country code is not two capital letters")),
        }
    }

    fn finish(&self) -> Result<(), GeocodeError> {
        if self.pos == self.bytes.len() { Ok(()) } else { Err(self.corrupt("trailing bytes after the last field")) }
    }
}

/// One entry of the country table.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CountryName {
    /// ISO 3166-1 alpha-2, or none for a disputed area without one.
    pub code: Option<Code>,
    /// English name.
    pub name: Box<str>,
}

/// The decoded `countries.bin.z`, flat: polygons own consecutive rings, rings
/// own consecutive vertices.
pub(crate) struct CountryData {
    pub countries: Vec<CountryName>,
    /// Per polygon: its country index and how many rings it has.
    pub polygons: Vec<(u16, u32)>,
    /// Per ring: how many vertices it has.
    pub ring_lengths: Vec<u32>,
    /// `[longitude, latitude]` in E5, longitudes unwrapped.
    pub vertices: Vec<[i32; 2]>,
}

/// Decodes the embedded country polygons.
pub(crate) fn countries() -> Result<CountryData, GeocodeError> {
    const FILE: &str = "countries.bin.z";
    let bytes = inflate(FILE, COUNTRIES_FILE)?;
    let mut reader = Reader::new(FILE, &bytes, COUNTRIES_MAGIC)?;
    let count = reader.count()?;
    if count > u32::from(u16::MAX) {
        return Err(reader.corrupt("more countries than a u16 indexes"));
    }
    let mut countries = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let code = reader.code()?;
        countries.push(CountryName { code, name: reader.text()?.into() });
    }
    let polygon_count = reader.count()?;
    let mut polygons = Vec::with_capacity(polygon_count as usize);
    let mut ring_lengths = Vec::new();
    let mut vertices = Vec::new();
    let mut previous = [0i32; 2];
    for _ in 0..polygon_count {
        let country = reader.count()?;
        let country = u16::try_from(country)
            .ok()
            .filter(|&index| usize::from(index) < countries.len())
            .ok_or_else(|| reader.corrupt("polygon names a country past the table"))?;
        let rings = reader.count()?;
        if rings == 0 {
            return Err(reader.corrupt("polygon without rings"));
        }
        for _ in 0..rings {
            let len = reader.count()?;
            if len < 3 {
                return Err(reader.corrupt("ring with fewer than three vertices"));
            }
            ring_lengths.push(len);
            for _ in 0..len {
                let lon = previous[0].checked_add(reader.delta()?);
                let lat = previous[1].checked_add(reader.delta()?);
                let (Some(lon), Some(lat)) = (lon, lat) else {
                    return Err(reader.corrupt("coordinate overflow"));
                };
                if lat.abs() > 90 * 100_000 || lon.abs() > 540 * 100_000 {
                    return Err(reader.corrupt("vertex outside the unwrapped world"));
                }
                previous = [lon, lat];
                vertices.push(previous);
            }
        }
        polygons.push((country, rings));
    }
    reader.finish()?;
    Ok(CountryData { countries, polygons, ring_lengths, vertices })
}

/// The decoded `towns.bin.z`, one entry per town in every column, in file
/// order. Names borrow from the inflated bytes.
pub(crate) struct TownData<'a> {
    pub codes: Vec<Code>,
    pub regions: Vec<&'a str>,
    /// `[latitude, longitude]` in E5.
    pub positions: Vec<[i32; 2]>,
    pub country: Vec<u16>,
    /// 0 for none, `i` for `regions[i - 1]`.
    pub region: Vec<u16>,
    pub names: Vec<&'a str>,
}

/// Inflates the embedded towns; decode the result with [`towns`].
pub(crate) fn towns_bytes() -> Result<Vec<u8>, GeocodeError> {
    inflate("towns.bin.z", TOWNS_FILE)
}

/// Decodes the towns inflated by [`towns_bytes`].
pub(crate) fn towns(bytes: &[u8]) -> Result<TownData<'_>, GeocodeError> {
    const FILE: &str = "towns.bin.z";
    let mut reader = Reader::new(FILE, bytes, TOWNS_MAGIC)?;
    let code_count = reader.count()?;
    let mut codes = Vec::with_capacity(code_count as usize);
    for _ in 0..code_count {
        codes.push(reader.code()?.ok_or_else(|| reader.corrupt("town country without a code"))?);
    }
    let region_count = reader.count()?;
    if region_count >= u32::from(u16::MAX) {
        return Err(reader.corrupt("more regions than a u16 indexes"));
    }
    let mut regions = Vec::with_capacity(region_count as usize);
    for _ in 0..region_count {
        regions.push(reader.text()?);
    }
    let count = reader.count()? as usize;
    let mut positions = vec![[0i32; 2]; count];
    for axis in 0..2 {
        let mut previous = 0i32;
        for position in &mut positions {
            previous = previous.checked_add(reader.delta()?).ok_or_else(|| reader.corrupt("coordinate overflow"))?;
            position[axis] = previous;
        }
    }
    if positions.iter().any(|&[lat, lon]| lat.abs() > 90 * 100_000 || lon.abs() > 180 * 100_000) {
        return Err(reader.corrupt("town outside the world"));
    }
    let mut index_column = |limit: usize, why: &'static str| -> Result<Vec<u16>, GeocodeError> {
        (0..count)
            .map(|_| {
                let value = reader.count()?;
                u16::try_from(value).ok().filter(|&v| usize::from(v) < limit).ok_or_else(|| reader.corrupt(why))
            })
            .collect()
    };
    let country = index_column(codes.len(), "town names a country past the table")?;
    let region = index_column(regions.len() + 1, "town names a region past the table")?;
    let names = (0..count).map(|_| reader.text()).collect::<Result<Vec<_>, _>>()?;
    reader.finish()?;
    Ok(TownData { codes, regions, positions, country, region, names })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_files_decode() {
        let countries = countries().unwrap();
        assert!(countries.countries.len() > 200);
        assert!(countries.polygons.len() > 1000);
        let rings: u32 = countries.polygons.iter().map(|&(_, rings)| rings).sum();
        assert_eq!(rings as usize, countries.ring_lengths.len());
        let vertices: u32 = countries.ring_lengths.iter().sum();
        assert_eq!(vertices as usize, countries.vertices.len());

        let bytes = towns_bytes().unwrap();
        let towns = towns(&bytes).unwrap();
        assert!(towns.names.len() > 100_000);
        assert_eq!(towns.positions.len(), towns.names.len());
        assert!(towns.names.contains(&"Zürich"));
    }

    #[test]
    fn varints_and_zigzag() {
        // 300 = 0b10_0101100 → [0xac, 0x02]; zigzag 3 → -2.
        let bytes = [b'P', b'G', b'T', b'E', b'S', b'T', b'0', b'1', 0xac, 0x02, 3, 0x80];
        let mut reader = Reader::new("test", &bytes, *b"PGTEST01").unwrap();
        assert_eq!(reader.uvarint().unwrap(), 300);
        assert_eq!(reader.delta().unwrap(), -2);
        let error = reader.uvarint().unwrap_err();
        assert!(matches!(error, GeocodeError::Corrupt { offset: 12, why: "unexpected end of data", .. }), "{error}");
    }

    #[test]
    fn wrong_magic_and_trailing_bytes_are_reported() {
        let error = Reader::new("test", b"PGXXXX01", *b"PGTEST01").err().unwrap();
        assert!(error.to_string().contains("wrong magic"), "{error}");
        let reader = Reader::new("test", b"PGTEST01\0", *b"PGTEST01").unwrap();
        assert!(reader.finish().unwrap_err().to_string().contains("trailing bytes"));
    }

    #[test]
    fn damaged_stream_does_not_inflate() {
        let mut damaged = COUNTRIES_FILE.to_vec();
        let middle = damaged.len() / 2;
        damaged.truncate(middle);
        assert!(matches!(inflate("countries.bin.z", &damaged), Err(GeocodeError::Inflate { .. })));
    }
}

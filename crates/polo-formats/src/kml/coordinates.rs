//! The text of a `<Point>` or `<LineString>`'s `<coordinates>`, read as it
//! streams in.
//!
//! Google's daily Timeline KML puts a whole day's path into one
//! `<LineString><coordinates>`, and any file may hold a path of millions of
//! vertices. Holding that text whole made it subject to the 1 MiB token
//! limit (and before that limit, to whatever memory there was). A
//! LineString only ever yields its first and last vertex and its count (its
//! vertices carry no time, so they never become points), and a Point its
//! first tuple, so [`Coordinates`] reads the text piece by piece
//! ([`crate::xml::XmlStream::stream_text`]) and keeps just that: one tuple
//! at a time, the summary, and the head of the text for a reject's raw field.
//!
//! The result is exactly what reading the whole text did: the text is
//! trimmed (Unicode whitespace); tuples are separated by ASCII whitespace,
//! except where the whitespace touches a comma (`lon, lat`); a Point reads
//! its first tuple, a LineString stops at its first bad tuple. One tuple, or
//! one run of whitespace, is still limited to [`crate::MAX_TOKEN`].

use polo_domain::Coord;

use super::{Line, Position3, parse_tuple};
use crate::Reject;

/// Which geometry the coordinates belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Geometry {
    Point,
    LineString,
}

/// How much of the trimmed text a reject keeps: a Point's whole text (a
/// reject keeps [`Reject::MAX_RAW`] bytes), a LineString's first 200
/// characters.
const LINE_RAW_CHARS: usize = 200;

/// The coordinates read so far.
pub(super) struct Coordinates {
    geometry: Geometry,
    limit: usize,
    /// A character that is not whitespace has been seen (leading whitespace is trimmed).
    started: bool,
    /// The tuple being read: from its first character to its last one that is
    /// not whitespace.
    tuple: String,
    /// The whitespace after `tuple`, not yet known to split or to belong to it.
    space: String,
    /// What was over the limit: a tuple or a run of whitespace.
    too_long: Option<&'static str>,
    /// A Point's first tuple.
    point: Option<Result<Position3, String>>,
    /// A LineString's vertices so far.
    first: Option<Coord>,
    last: Option<Coord>,
    vertices: usize,
    /// A LineString's first bad tuple: nothing after it is read.
    error: Option<String>,
    /// The head of the trimmed text, for the reject's raw field.
    raw: String,
    raw_chars: usize,
    /// Text that is not whitespace came after `raw` was full.
    raw_continues: bool,
}

impl Coordinates {
    pub(super) fn new(geometry: Geometry) -> Self {
        Self::with_limit(geometry, crate::MAX_TOKEN)
    }

    /// [`Coordinates::new`] with another limit on a tuple (tests).
    pub(super) fn with_limit(geometry: Geometry, limit: usize) -> Self {
        Self {
            geometry,
            limit,
            started: false,
            tuple: String::new(),
            space: String::new(),
            too_long: None,
            point: None,
            first: None,
            last: None,
            vertices: 0,
            error: None,
            raw: String::new(),
            raw_chars: 0,
            raw_continues: false,
        }
    }

    /// Everything after the first tuple of a Point, or after a LineString's
    /// first bad tuple, only goes to the raw head.
    fn done(&self) -> bool {
        self.too_long.is_some() || self.point.is_some() || self.error.is_some()
    }

    fn raw_full(&self) -> bool {
        match self.geometry {
            Geometry::Point => self.raw.len() > Reject::MAX_RAW,
            Geometry::LineString => self.raw_chars >= LINE_RAW_CHARS,
        }
    }

    /// Reads the next piece of the text.
    pub(super) fn push(&mut self, text: &str) {
        for c in text.chars() {
            if !self.started {
                if c.is_whitespace() {
                    continue;
                }
                self.started = true;
            }
            if self.raw_full() {
                self.raw_continues |= !c.is_whitespace();
            } else {
                self.raw.push(c);
                self.raw_chars += 1;
            }
            if self.done() {
                continue;
            }
            if c.is_whitespace() {
                if self.space.len() >= self.limit {
                    self.too_long = Some("whitespace in <coordinates>");
                } else {
                    self.space.push(c);
                }
                continue;
            }
            if !self.space.is_empty() {
                self.end_of_space(c);
            }
            if self.tuple.len() >= self.limit {
                self.too_long = Some("a coordinate tuple");
            } else if !self.done() {
                self.tuple.push(c);
            }
        }
    }

    /// A run of whitespace ends at `next`: it stays inside the tuple when a
    /// comma is on either side of it; otherwise each ASCII whitespace in it
    /// ends a tuple, and other whitespace (U+00A0…) is part of a tuple.
    fn end_of_space(&mut self, next: char) {
        let space = std::mem::take(&mut self.space);
        if self.tuple.ends_with(',') || next == ',' {
            self.tuple.push_str(&space);
        } else {
            let mut in_tuple = true;
            for c in space.chars() {
                if c.is_ascii_whitespace() {
                    if in_tuple {
                        self.end_of_tuple();
                        in_tuple = false;
                    }
                } else {
                    in_tuple = true;
                    self.tuple.push(c);
                }
            }
        }
        self.space = space;
        self.space.clear();
    }

    /// The tuple in `self.tuple` is complete.
    fn end_of_tuple(&mut self) {
        let tuple = std::mem::take(&mut self.tuple);
        if !self.done() {
            let parsed = parse_tuple(&tuple, ',');
            match self.geometry {
                Geometry::Point => self.point = Some(parsed),
                Geometry::LineString => match parsed {
                    Ok((c, _)) => {
                        self.first.get_or_insert(c);
                        self.last = Some(c);
                        self.vertices += 1;
                    }
                    Err(why) => self.error = Some(why),
                },
            }
        }
        self.tuple = tuple;
        self.tuple.clear();
    }

    /// The Point's first tuple, and the raw text for a reject.
    pub(super) fn finish_point(mut self) -> (Result<Position3, String>, String) {
        self.finish();
        let coord = if let Some(what) = self.too_long {
            Err(crate::bounded::too_long(what))
        } else {
            self.point.take().unwrap_or_else(|| Err("Point without coordinates".to_owned()))
        };
        (coord, self.raw)
    }

    /// The LineString's summary, and the raw text for a reject.
    pub(super) fn finish_line(mut self) -> (Result<Line, String>, String) {
        self.finish();
        let line = if let Some(why) = self.error.take() {
            Err(why)
        } else if let Some(what) = self.too_long {
            Err(crate::bounded::too_long(what))
        } else {
            match (self.first, self.last) {
                (Some(first), Some(last)) => Ok(Line { first, last, vertices: self.vertices }),
                _ => Err("LineString without coordinates".to_owned()),
            }
        };
        (line, self.raw)
    }

    fn finish(&mut self) {
        // Trailing whitespace is trimmed.
        self.space.clear();
        if !self.tuple.is_empty() {
            self.end_of_tuple();
        }
        if !self.raw_continues {
            let kept = self.raw.trim_end().len();
            self.raw.truncate(kept);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole-text reading this module replaces, kept as the reference.
    fn tuples(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        let mut start = None;
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_whitespace() {
                let prev_comma = i > 0 && text[..i].trim_end().ends_with(',');
                let next_comma = text[i..].trim_start().starts_with(',');
                if let (Some(s), false, false) = (start, prev_comma, next_comma) {
                    out.push(&text[s..i]);
                    start = None;
                }
            } else if start.is_none() {
                start = Some(i);
            }
            i += 1;
        }
        if let Some(s) = start {
            out.push(&text[s..]);
        }
        out
    }

    fn whole_point(text: &str) -> (Result<Position3, String>, String) {
        let value = text.trim();
        let coord = match tuples(value).first() {
            None => Err("Point without coordinates".to_owned()),
            Some(t) => parse_tuple(t, ','),
        };
        (coord, value.to_owned())
    }

    fn whole_line(text: &str) -> (Result<(Coord, Coord, usize), String>, String) {
        let value = text.trim();
        let mut first = None;
        let mut last = None;
        let mut vertices = 0;
        let mut result = None;
        for t in tuples(value) {
            match parse_tuple(t, ',') {
                Ok((c, _)) => {
                    first.get_or_insert(c);
                    last = Some(c);
                    vertices += 1;
                }
                Err(why) => {
                    result = Some(Err(why));
                    break;
                }
            }
        }
        let result = result.unwrap_or_else(|| match (first, last) {
            (Some(f), Some(l)) => Ok((f, l, vertices)),
            _ => Err("LineString without coordinates".to_owned()),
        });
        (result, value.chars().take(LINE_RAW_CHARS).collect())
    }

    fn streamed(geometry: Geometry, text: &str, chunk: usize) -> Coordinates {
        let mut c = Coordinates::new(geometry);
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(chunk) {
            c.push(&piece.iter().collect::<String>());
        }
        c
    }

    const CASES: &[&str] = &[
        "",
        "   ",
        "1,2",
        " 1,2,3 ",
        "-122.08,37.42,0 -122.09,37.43,0\n  -122.10,37.44,0",
        " -122.0841 , 37.4220 , 10 ",
        "1,2 3,4\t5,6\r\n7,8",
        "1, 2 3 ,4 5 , 6",
        "1,2 \u{a0} ,3 4,5",
        "1,2 \u{a0} 3,4",
        "\u{a0}1,2 3,4\u{a0}",
        "\u{2003} 1,2\u{a0} ",
        "1,2\u{a0}3,4 5,6",
        "1,2 \u{a0}\u{a0} \u{a0}3,4",
        "1,2\x0b 3,4",
        "-122.0841",
        "east,10 1,2",
        "1,2 200,10 3,4",
        "0,0,0",
        "1,2,, 3,4",
        ",1,2 ,",
        "1,2 3",
    ];

    #[test]
    fn streamed_tuples_are_read_exactly_as_the_whole_text_was() {
        for text in CASES {
            for chunk in [1, 2, 3, 1000] {
                let (coord, raw) = streamed(Geometry::Point, text, chunk).finish_point();
                assert_eq!((coord, raw), whole_point(text), "Point {text:?} in pieces of {chunk}");
                let (line, raw) = streamed(Geometry::LineString, text, chunk).finish_line();
                let line = line.map(|l| (l.first, l.last, l.vertices));
                assert_eq!((line, raw), whole_line(text), "LineString {text:?} in pieces of {chunk}");
            }
        }
    }

    #[test]
    fn raw_heads_are_what_a_reject_kept_of_the_whole_text() {
        let long = format!("  {}  ", "1,2 ".repeat(10_000));
        let (_, raw) = streamed(Geometry::LineString, &long, 7).finish_line();
        assert_eq!(raw, whole_line(&long).1);
        let (_, raw) = streamed(Geometry::Point, &long, 7).finish_point();
        let whole = whole_point(&long).1;
        assert_eq!(
            Reject::new(crate::Position::Byte(0), "", &raw).raw,
            Reject::new(crate::Position::Byte(0), "", &whole).raw
        );
        assert!(raw.len() <= Reject::MAX_RAW + 4, "{}", raw.len());
    }

    #[test]
    fn a_tuple_or_space_over_the_limit_is_an_error_not_a_buffer() {
        let mut c = Coordinates::with_limit(Geometry::LineString, 8);
        c.push("1,2 3,4 123456789,1 5,6");
        let (line, _) = c.finish_line();
        assert_eq!(line.err().unwrap(), "a coordinate tuple longer than 1 MiB: skipped");
        let mut c = Coordinates::with_limit(Geometry::Point, 8);
        c.push(&format!(" 1,{}", " ".repeat(20)));
        c.push("3,4");
        assert_eq!(c.finish_point().0.unwrap_err(), "whitespace in <coordinates> longer than 1 MiB: skipped");
    }

    #[test]
    fn a_million_vertices_keep_only_their_summary() {
        let mut c = Coordinates::new(Geometry::LineString);
        for k in 0..1_000_000u32 {
            c.push(&format!("{}.{:06},{} ", k % 90, k, 10));
        }
        let (line, raw) = c.finish_line();
        let line = line.unwrap();
        assert_eq!(line.vertices, 1_000_000);
        assert_eq!(line.first, Coord::from_degrees(10.0, 0.0).unwrap());
        assert_eq!(raw.chars().count(), LINE_RAW_CHARS);
    }
}

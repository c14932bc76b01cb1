//! `gx:Track` (and KML 2.3's `Track`) in bounded memory.
//!
//! A track is parallel lists: the k-th `<when>`, `<gx:coord>`, `<gx:angles>`
//! and value of each `gx:SimpleArrayData` describe point k. Google Earth
//! writes all whens, then all coords, then the angles and the arrays, so a
//! point is complete only when the track ends. The lists are therefore queues
//! paired by index: each holds only the entries of points not yet emitted,
//! and a track is emitted at its end tag, as before, whenever what it holds
//! fits in [`HELD_BYTES`] (tens of thousands of points).
//!
//! Past that bound the oldest point is settled early: emitted when it has
//! both a time and a coordinate (with whatever angles and array values
//! arrived so far), otherwise its lone `<when>` or `<gx:coord>` is rejected,
//! because its partner is too far away to wait for. Entries that arrive later
//! for an already settled point are rejected (a time or a coordinate) or
//! counted and noted once (angles and array values, which are only extras).
//! At the end tag, surplus `<when>` or `<gx:coord>` entries are rejected with
//! the counts in the reason. Memory is bounded by [`HELD_BYTES`] plus one
//! text node, whatever the track's length.

use std::collections::VecDeque;

use polo_domain::time::ParsedTime;
use polo_domain::{Fix, SourceFormat};

use super::Position3;
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportOptions, Position, Reject, Sink, xml};

/// Most a track holds (approximate bytes of its queued entries) before it
/// settles its oldest points: about 200,000 points in Google Earth's layout
/// (a VecDeque may hold twice that in capacity).
pub(super) const HELD_BYTES: usize = 16 << 20;

/// Most `gx:SimpleArrayData` lists one track keeps; more are rejected.
const MAX_ARRAYS: usize = 64;

/// Longest text kept for a `<when>` that is not a time (for its reject).
const KEPT_TEXT: usize = 200;

/// One list of a track: the entries of points `base..base + items.len()`.
struct Queue<T> {
    items: VecDeque<T>,
    base: usize,
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self { items: VecDeque::new(), base: 0 }
    }
}

impl<T> Queue<T> {
    /// Appends the next entry, or hands it back when its point (`done` and
    /// all before it are settled) is already settled.
    fn push(&mut self, item: T, done: usize) -> Option<T> {
        if self.items.is_empty() && self.base < done {
            self.base += 1;
            return Some(item);
        }
        self.items.push_back(item);
        None
    }

    /// How many entries the list had so far.
    fn seen(&self) -> usize {
        self.base + self.items.len()
    }

    /// The entry of point `k`, when it is the oldest one held.
    fn pop(&mut self, k: usize) -> Option<T> {
        if self.base != k {
            return None;
        }
        let item = self.items.pop_front()?;
        self.base += 1;
        Some(item)
    }
}

type When = (Position, Result<ParsedTime, Box<str>>);
type CoordEntry = (Position, Result<Position3, Box<str>>);

/// The track being read.
#[derive(Default)]
pub(super) struct Track {
    whens: Queue<When>,
    coords: Queue<CoordEntry>,
    headings: Queue<Option<f64>>,
    arrays: Vec<(String, Queue<String>)>,
    /// The array begun last was one too many: its values are dropped.
    array_ignored: bool,
    /// Points `0..done` are settled (emitted or rejected).
    done: usize,
    /// Approximate bytes held in the queues.
    held: usize,
    /// Angles and array values that came after their point was settled.
    late_extras: usize,
}

fn when_size(when: &When) -> usize {
    std::mem::size_of::<When>() + when.1.as_ref().err().map_or(0, |e| e.len())
}

fn coord_size(coord: &CoordEntry) -> usize {
    std::mem::size_of::<CoordEntry>() + coord.1.as_ref().err().map_or(0, |e| e.len())
}

fn value_size(value: &str) -> usize {
    std::mem::size_of::<String>() + value.len()
}

fn shortened(text: &str) -> Box<str> {
    let mut end = text.len().min(KEPT_TEXT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}

impl Track {
    /// A `<when>` at `at`: its text, parsed.
    pub(super) fn when(&mut self, at: Position, text: &str, options: &ImportOptions, sink: &mut dyn Sink) {
        let entry = (at, polo_domain::time::parse_timestamp(text).map_err(|_| shortened(text)));
        let size = when_size(&entry);
        match self.whens.push(entry, self.done) {
            None => self.held += size,
            Some((at, _)) => sink.reject(Reject::new(
                at,
                format!(
                    "gx:Track <when> {} arrived after its <gx:coord> had to be settled: the track held over {} MiB \
                     of unpaired entries",
                    self.whens.seen(),
                    HELD_BYTES >> 20
                ),
                text,
            )),
        }
        self.settle(options, sink);
    }

    /// A `<gx:coord>` at `at`: its text, parsed.
    pub(super) fn coord(&mut self, at: Position, text: &str, options: &ImportOptions, sink: &mut dyn Sink) {
        let entry = (at, super::parse_tuple(text, ' ').map_err(|e| shortened(&format!("gx:coord {e}"))));
        let size = coord_size(&entry);
        match self.coords.push(entry, self.done) {
            None => self.held += size,
            Some((at, _)) => sink.reject(Reject::new(
                at,
                format!(
                    "gx:Track <gx:coord> {} arrived after its <when> had to be settled: the track held over {} MiB \
                     of unpaired entries",
                    self.coords.seen(),
                    HELD_BYTES >> 20
                ),
                text,
            )),
        }
        self.settle(options, sink);
    }

    /// A `<gx:angles>`: its heading, if it has one.
    pub(super) fn angles(&mut self, heading: Option<f64>, options: &ImportOptions, sink: &mut dyn Sink) {
        match self.headings.push(heading, self.done) {
            None => self.held += std::mem::size_of::<Option<f64>>(),
            Some(_) => self.late_extras += 1,
        }
        self.settle(options, sink);
    }

    /// A `gx:SimpleArrayData` called `name` begins at `at`.
    pub(super) fn array(&mut self, name: String, at: Position, sink: &mut dyn Sink) {
        self.array_ignored = self.arrays.len() >= MAX_ARRAYS;
        if self.array_ignored {
            let why = format!("gx:Track with more than {MAX_ARRAYS} gx:SimpleArrayData: {name:?} is left out");
            sink.reject(Reject::new(at, why, &name));
            return;
        }
        self.held += value_size(&name);
        self.arrays.push((name, Queue::default()));
    }

    /// A `gx:value` of the array begun last.
    pub(super) fn value(&mut self, value: &str, options: &ImportOptions, sink: &mut dyn Sink) {
        let done = self.done;
        if self.array_ignored {
            return;
        }
        let Some((_, values)) = self.arrays.last_mut() else { return };
        match values.push(value.to_owned(), done) {
            None => self.held += value_size(value),
            Some(_) => self.late_extras += 1,
        }
        self.settle(options, sink);
    }

    /// Settles the oldest points while the track holds more than [`HELD_BYTES`].
    fn settle(&mut self, options: &ImportOptions, sink: &mut dyn Sink) {
        while self.held > HELD_BYTES && self.settle_one(options, sink, true) {}
    }

    /// Emits point `done` or rejects what it has. False when no list holds
    /// an entry for it.
    fn settle_one(&mut self, options: &ImportOptions, sink: &mut dyn Sink, early: bool) -> bool {
        let k = self.done;
        let when = self.whens.pop(k);
        let coord = self.coords.pop(k);
        let angles = self.headings.pop(k);
        let mut values = Vec::new();
        for (name, queue) in &mut self.arrays {
            if let Some(v) = queue.pop(k) {
                self.held = self.held.saturating_sub(value_size(&v));
                values.push((name.as_str(), v));
            }
        }
        if when.is_none() && coord.is_none() && angles.is_none() && values.is_empty() {
            return false;
        }
        if angles.is_some() {
            self.held = self.held.saturating_sub(std::mem::size_of::<Option<f64>>());
        }
        let heading = angles.flatten();
        self.held = self.held.saturating_sub(when.as_ref().map_or(0, when_size) + coord.as_ref().map_or(0, coord_size));
        self.done += 1;
        match (when, coord) {
            (Some(when), Some(coord)) => emit(when, coord, heading, &values, options, sink),
            (Some((at, when)), None) if early => {
                let raw = when.map_or_else(|raw| raw.into(), |t| t.time.to_string());
                let why = format!(
                    "gx:Track <when> {} waited too long for its <gx:coord>: the track held over {} MiB of \
                     unpaired entries",
                    k + 1,
                    HELD_BYTES >> 20
                );
                sink.reject(Reject::new(at, why, &raw));
            }
            (None, Some((at, _))) if early => {
                let why = format!(
                    "gx:Track <gx:coord> {} waited too long for its <when>: the track held over {} MiB of \
                     unpaired entries",
                    k + 1,
                    HELD_BYTES >> 20
                );
                sink.reject(Reject::new(at, why, "<gx:coord>"));
            }
            (Some((at, when)), None) => {
                let raw = when.map_or_else(|raw| raw.into(), |t| t.time.to_string());
                let why = format!(
                    "gx:Track has {} <when> but {} <gx:coord>: this time has no coordinate",
                    self.whens.seen(),
                    self.coords.seen()
                );
                sink.reject(Reject::new(at, why, &raw));
            }
            (None, Some((at, _))) => {
                let why = format!(
                    "gx:Track has {} <when> but {} <gx:coord>: this coordinate has no time",
                    self.whens.seen(),
                    self.coords.seen()
                );
                sink.reject(Reject::new(at, why, "<gx:coord>"));
            }
            (None, None) => {}
        }
        true
    }

    /// The end tag: emits every point left and rejects the surplus.
    pub(super) fn finish(&mut self, options: &ImportOptions, sink: &mut dyn Sink) {
        while self.settle_one(options, sink, false) {}
        if self.late_extras > 0 {
            sink.note(&format!(
                "a gx:Track held over {} MiB of unpaired entries: {} gx:angles or gx:SimpleArrayData values came \
                 after their point had been emitted and are not in its extras",
                HELD_BYTES >> 20,
                self.late_extras
            ));
        }
        *self = Self::default();
    }
}

fn emit(
    (when_at, when): When,
    (coord_at, coord): CoordEntry,
    heading: Option<f64>,
    values: &[(&str, String)],
    options: &ImportOptions,
    sink: &mut dyn Sink,
) {
    let time = match when {
        Ok(t) => t,
        Err(raw) => {
            sink.reject(Reject::new(when_at, format!("gx:Track <when> {raw:?} is not a time"), &raw));
            return;
        }
    };
    let coord = match coord {
        Ok(c) => c,
        Err(why) => {
            sink.reject(Reject::new(coord_at, why.to_string(), &why));
            return;
        }
    };
    if let Err(why) = options.check_time(time.time) {
        sink.reject(Reject::new(when_at, why, &time.time.to_string()));
        return;
    }
    let mut fix = Fix::new(time.time, coord.0, SourceFormat::Kml);
    fix.utc_offset_minutes = time.offset_minutes;
    fix.zone_assumed = time.zone_assumed;
    let mut extras = ExtrasBuilder::new();
    let mut out_of_range = OutOfRange::default();
    if let Some(alt) = coord.1 {
        measure::set_as(&mut fix, Column::Altitude, alt, "altitude", &mut extras, &mut out_of_range);
    }
    if let Some(h) = heading {
        measure::set_as(&mut fix, Column::Course, h, "heading", &mut extras, &mut out_of_range);
    }
    out_of_range.report(sink);
    for (name, value) in values {
        xml::push_extra(&mut extras, name, value);
    }
    fix.extras = extras.finish();
    sink.point(fix, None);
}

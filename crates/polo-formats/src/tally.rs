//! Telling a file that yielded nothing from one that imported.
//!
//! An importer that reads a file to its end without an error may still have
//! produced nothing: a FIT file without a GPS fix, a Semantic Location
//! History month of visits with only candidate places, a GPX whose every
//! point lacks a time. Reporting that as a success (exit code 0, "0 points")
//! hides it. [`Tally`] wraps the sink for one file, counts what passes, and
//! [`Tally::conclude`] turns "nothing at all" into
//! [`ImportError::NothingToImport`] saying why (a device label, from Takeout
//! `Settings.json`, counts as something): the records seen without a
//! location, the rejects and the first reason, or no records at all.

use std::collections::BTreeMap;

use polo_domain::{Fix, Interval};

use crate::{Format, ImportError, Reject, Sink};

/// Counts what one file yields, passing everything on.
pub(crate) struct Tally<'s> {
    sink: &'s mut dyn Sink,
    yielded: u64,
    rejects: u64,
    first_reject: Option<String>,
    not_location: BTreeMap<&'static str, u64>,
}

impl<'s> Tally<'s> {
    pub(crate) fn new(sink: &'s mut dyn Sink) -> Self {
        Self { sink, yielded: 0, rejects: 0, first_reject: None, not_location: BTreeMap::new() }
    }

    /// The file's outcome: an error when it yielded no point and no interval.
    pub(crate) fn conclude(self, outcome: Result<Format, ImportError>) -> Result<Format, ImportError> {
        let format = outcome?;
        if self.yielded > 0 {
            return Ok(format);
        }
        let mut parts: Vec<String> = self.not_location.iter().map(|(kind, n)| format!("{n} × {kind}")).collect();
        if let Some(first) = &self.first_reject {
            let n = self.rejects;
            let s = if n == 1 { "" } else { "s" };
            parts.push(format!("{n} record{s} rejected (first: {first})"));
        }
        let why = if parts.is_empty() { "the file holds no records".to_owned() } else { parts.join("; ") };
        Err(ImportError::NothingToImport { why })
    }
}

impl Sink for Tally<'_> {
    fn point(&mut self, fix: Fix, device: Option<&str>) {
        self.yielded += 1;
        self.sink.point(fix, device);
    }
    fn interval(&mut self, interval: Interval, device: Option<&str>) {
        self.yielded += 1;
        self.sink.interval(interval, device);
    }
    fn reject(&mut self, reject: Reject) {
        self.rejects += 1;
        if self.first_reject.is_none() {
            self.first_reject = Some(format!("{}: {}", reject.position, reject.reason));
        }
        self.sink.reject(reject);
    }
    fn device_label(&mut self, device: &str, label: &str) {
        self.yielded += 1;
        self.sink.device_label(device, label);
    }
    fn not_location(&mut self, kind: &'static str) {
        *self.not_location.entry(kind).or_default() += 1;
        self.sink.not_location(kind);
    }
    fn out_of_range(&mut self, field: &'static str) {
        self.sink.out_of_range(field);
    }
    fn note(&mut self, note: &str) {
        self.sink.note(note);
    }
    fn entry_started(&mut self, name: &str) {
        self.sink.entry_started(name);
    }
    fn entry_finished(&mut self, name: &str, outcome: &Result<Format, ImportError>) {
        self.sink.entry_finished(name, outcome);
    }
}

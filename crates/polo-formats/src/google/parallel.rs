//! Parsing `Records.json` elements on a second thread.
//!
//! A Records.json is the one input where parsing, not storing, limits an
//! import: the splitter and the per-record `serde` visitor together cost
//! about 2 µs per record on one core. The importing thread therefore only
//! splits the `locations` array into batches of compact elements, a worker
//! thread parses each batch into buffered sink events, and the importing
//! thread replays those events into the real sink in file order. With the
//! CLI's writer thread that makes three pipeline stages, which two cores
//! keep busy instead of one.
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] batches of at most
//! [`BATCH_BYTES`] wait between the stages.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use polo_domain::{Fix, Interval};

use crate::{ImportOptions, Reject, Sink};

/// Elements per batch.
const BATCH_ELEMENTS: usize = 2048;
/// Bytes of elements per batch (a batch ends at whichever comes first).
const BATCH_BYTES: usize = 2 * 1024 * 1024;
/// Batches queued for the worker.
const IN_FLIGHT: usize = 4;

/// Compact elements with their file offsets.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// `(file offset, end in bytes)`; each element starts where the previous ended.
    spans: Vec<(u64, usize)>,
}

/// What a sink call was, to be replayed on the importing thread.
enum Event {
    Point(Fix, Option<Arc<str>>),
    Interval(Interval, Option<Arc<str>>),
    Reject(Reject),
    NotLocation(&'static str),
}

/// A sink that records events; device names are shared, not copied per point.
#[derive(Default)]
struct Buffered {
    events: Vec<Event>,
    last_device: Option<Arc<str>>,
}

impl Buffered {
    fn device(&mut self, device: Option<&str>) -> Option<Arc<str>> {
        let name = device?;
        match &self.last_device {
            Some(last) if &**last == name => Some(Arc::clone(last)),
            _ => {
                let shared: Arc<str> = Arc::from(name);
                self.last_device = Some(Arc::clone(&shared));
                Some(shared)
            }
        }
    }
}

impl Sink for Buffered {
    fn point(&mut self, fix: Fix, device: Option<&str>) {
        let device = self.device(device);
        self.events.push(Event::Point(fix, device));
    }
    fn interval(&mut self, interval: Interval, device: Option<&str>) {
        let device = self.device(device);
        self.events.push(Event::Interval(interval, device));
    }
    fn reject(&mut self, reject: Reject) {
        self.events.push(Event::Reject(reject));
    }
    fn not_location(&mut self, kind: &'static str) {
        self.events.push(Event::NotLocation(kind));
    }
}

fn replay(events: Vec<Event>, sink: &mut dyn Sink) {
    for event in events {
        match event {
            Event::Point(fix, device) => sink.point(fix, device.as_deref()),
            Event::Interval(interval, device) => sink.interval(interval, device.as_deref()),
            Event::Reject(reject) => sink.reject(reject),
            Event::NotLocation(kind) => sink.not_location(kind),
        }
    }
}

/// Feeds elements to a worker that runs `parse` on each, and replays the
/// results into the sink in order. Create it inside a thread scope with
/// [`ParallelElements::start`], [`push`](ParallelElements::push) every
/// element, then [`finish`](ParallelElements::finish).
pub(super) struct ParallelElements<'sink> {
    sink: &'sink mut dyn Sink,
    to_worker: Option<SyncSender<Batch>>,
    from_worker: Receiver<Vec<Event>>,
    pending: usize,
    batch: Batch,
}

/// The per-element parser the worker runs.
pub(super) type ParseElement = fn(&ImportOptions, &mut dyn Sink, u64, &[u8]);

impl<'sink> ParallelElements<'sink> {
    /// Spawns the worker in `scope`.
    pub(super) fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        options: &'env ImportOptions,
        parse: ParseElement,
        sink: &'sink mut dyn Sink,
    ) -> Self {
        let (to_worker, batches) = sync_channel::<Batch>(IN_FLIGHT);
        let (results, from_worker) = channel::<Vec<Event>>();
        scope.spawn(move || {
            for batch in batches {
                let mut buffered = Buffered { events: Vec::with_capacity(batch.spans.len()), last_device: None };
                let mut start = 0;
                for &(offset, end) in &batch.spans {
                    parse(options, &mut buffered, offset, &batch.bytes[start..end]);
                    start = end;
                }
                if results.send(buffered.events).is_err() {
                    return;
                }
            }
        });
        Self { sink, to_worker: Some(to_worker), from_worker, pending: 0, batch: Batch::default() }
    }

    /// Queues one element.
    pub(super) fn push(&mut self, offset: u64, raw: &[u8]) {
        self.batch.bytes.extend_from_slice(raw);
        self.batch.spans.push((offset, self.batch.bytes.len()));
        if self.batch.spans.len() >= BATCH_ELEMENTS || self.batch.bytes.len() >= BATCH_BYTES {
            self.send();
        }
    }

    fn send(&mut self) {
        if self.batch.spans.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        if let Some(to_worker) = &self.to_worker
            && to_worker.send(batch).is_ok()
        {
            self.pending += 1;
        }
        // Replay whatever is ready, so results never pile up.
        while let Ok(events) = self.from_worker.try_recv() {
            self.pending -= 1;
            replay(events, self.sink);
        }
    }

    /// Sends the last batch and replays everything still outstanding.
    pub(super) fn finish(mut self) {
        self.send();
        self.to_worker = None;
        while self.pending > 0 {
            match self.from_worker.recv() {
                Ok(events) => {
                    self.pending -= 1;
                    replay(events, self.sink);
                }
                Err(_) => break,
            }
        }
    }
}

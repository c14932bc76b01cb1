//! Parsing `Records.json` elements on worker threads.
//!
//! A Records.json is the one input where parsing, not storing, limits an
//! import: the splitter and the per-record `serde` visitor together cost
//! about 2 µs per record on one core. The importing thread therefore only
//! splits the `locations` array into batches of compact elements, worker
//! threads (one per core, at most [`MAX_WORKERS`]) parse the batches into
//! buffered sink events, and the importing thread replays those events into
//! the real sink in file order. Batches go to the workers in turn and their
//! results are taken back in the same turn, so the order needs no
//! bookkeeping. With the CLI's writer thread the stages keep every core
//! busy: with a single worker, a 1 GB import kept two cores only 80% busy
//! and took 12–30% longer (the splitter and the writer waited for it).
//!
//! Memory stays bounded: at most [`IN_FLIGHT`] batches of at most
//! [`BATCH_BYTES`] wait for each worker, and results are taken back as soon
//! as their turn comes.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};

use polo_domain::{Fix, Interval};

use crate::{ImportOptions, Reject, Sink};

/// Elements per batch.
const BATCH_ELEMENTS: usize = 2048;
/// Bytes of elements per batch (a batch ends at whichever comes first).
const BATCH_BYTES: usize = 1024 * 1024;
/// Batches queued for each worker.
const IN_FLIGHT: usize = 2;
/// Most parsing threads, whatever the core count: beyond this the splitter
/// (one thread) is the limit anyway.
const MAX_WORKERS: usize = 4;

/// Compact elements with their file offsets.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// `(file offset, end in bytes, why it is refused)`; each element
    /// starts where the previous ended. A refused element is only its head,
    /// rejected with that reason instead of parsed.
    spans: Vec<(u64, usize, Option<String>)>,
}

/// What a sink call was, to be replayed on the importing thread.
enum Event {
    Point(Fix, Option<Arc<str>>),
    Interval(Interval, Option<Arc<str>>),
    Reject(Reject),
    NotLocation(&'static str),
    OutOfRange(&'static str),
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
    fn out_of_range(&mut self, field: &'static str) {
        self.events.push(Event::OutOfRange(field));
    }
}

fn replay(events: Vec<Event>, sink: &mut dyn Sink) {
    for event in events {
        match event {
            Event::Point(fix, device) => sink.point(fix, device.as_deref()),
            Event::Interval(interval, device) => sink.interval(interval, device.as_deref()),
            Event::Reject(reject) => sink.reject(reject),
            Event::NotLocation(kind) => sink.not_location(kind),
            Event::OutOfRange(field) => sink.out_of_range(field),
        }
    }
}

/// Feeds elements to the workers that run `parse` on each, and replays the
/// results into the sink in order. Create it inside a thread scope with
/// [`ParallelElements::start`], [`push`](ParallelElements::push) every
/// element, then [`finish`](ParallelElements::finish).
pub(super) struct ParallelElements<'sink> {
    sink: &'sink mut dyn Sink,
    /// One input queue and one result queue per worker.
    workers: Vec<(SyncSender<Batch>, Receiver<Vec<Event>>)>,
    /// Batches sent so far; batch `n` went to worker `n % workers.len()`.
    sent: usize,
    /// Batches replayed so far, in the order they were sent.
    replayed: usize,
    batch: Batch,
}

/// The per-element parser the workers run.
pub(super) type ParseElement = fn(&ImportOptions, &mut dyn Sink, u64, &[u8]);

/// Parsing threads for this machine.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, MAX_WORKERS)
}

impl<'sink> ParallelElements<'sink> {
    /// Spawns the workers in `scope`.
    pub(super) fn start<'scope, 'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        options: &'env ImportOptions,
        parse: ParseElement,
        sink: &'sink mut dyn Sink,
    ) -> Self {
        let workers = (0..worker_count())
            .map(|_| {
                let (to_worker, batches) = sync_channel::<Batch>(IN_FLIGHT);
                let (results, from_worker) = channel::<Vec<Event>>();
                scope.spawn(move || {
                    for batch in batches {
                        if results.send(parse_batch(options, parse, &batch)).is_err() {
                            return;
                        }
                    }
                });
                (to_worker, from_worker)
            })
            .collect();
        Self { sink, workers, sent: 0, replayed: 0, batch: Batch::default() }
    }

    /// Queues one element.
    pub(super) fn push(&mut self, offset: u64, raw: &[u8]) {
        self.batch.bytes.extend_from_slice(raw);
        self.batch.spans.push((offset, self.batch.bytes.len(), None));
        if self.batch.spans.len() >= BATCH_ELEMENTS || self.batch.bytes.len() >= BATCH_BYTES {
            self.send();
        }
    }

    /// Queues the reject of an element that broke a size limit, in its
    /// place in the file order.
    pub(super) fn reject(&mut self, offset: u64, head: &[u8], why: String) {
        self.batch.bytes.extend_from_slice(head);
        self.batch.spans.push((offset, self.batch.bytes.len(), Some(why)));
    }

    fn send(&mut self) {
        if self.batch.spans.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let (to_worker, _) = &self.workers[self.sent % self.workers.len()];
        // A worker only stops early when its results are no longer wanted.
        if to_worker.send(batch).is_ok() {
            self.sent += 1;
        }
        // Replay whatever is ready in turn, so results never pile up.
        while self.replayed < self.sent {
            let (_, from_worker) = &self.workers[self.replayed % self.workers.len()];
            match from_worker.try_recv() {
                Ok(events) => self.replay_next(events),
                Err(_) => break,
            }
        }
    }

    fn replay_next(&mut self, events: Vec<Event>) {
        self.replayed += 1;
        replay(events, self.sink);
    }

    /// Sends the last batch and replays everything still outstanding.
    pub(super) fn finish(mut self) {
        self.send();
        while self.replayed < self.sent {
            let (_, from_worker) = &self.workers[self.replayed % self.workers.len()];
            match from_worker.recv() {
                Ok(events) => self.replay_next(events),
                Err(_) => break,
            }
        }
        // Dropping the input queues ends the workers.
        self.workers.clear();
    }
}

fn parse_batch(options: &ImportOptions, parse: ParseElement, batch: &Batch) -> Vec<Event> {
    let mut buffered = Buffered { events: Vec::with_capacity(batch.spans.len()), last_device: None };
    let mut start = 0;
    for (offset, end, refused) in &batch.spans {
        let raw = &batch.bytes[start..*end];
        match refused {
            None => parse(options, &mut buffered, *offset, raw),
            Some(why) => super::value::reject(&mut buffered, *offset, why.as_str(), raw),
        }
        start = *end;
    }
    buffered.events
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat, Timestamp};

    use super::*;

    #[derive(Default)]
    struct Times(Vec<i64>, Vec<u64>);

    impl Sink for Times {
        fn point(&mut self, fix: Fix, _: Option<&str>) {
            self.0.push(fix.time.0);
        }
        fn interval(&mut self, _: Interval, _: Option<&str>) {}
        fn reject(&mut self, reject: Reject) {
            self.1.push(match reject.position {
                crate::Position::Byte(b) => b,
                crate::Position::Line(l) => l,
            });
        }
        fn not_location(&mut self, _: &'static str) {}
    }

    /// Every 7th element is a reject; the rest are points timed by their offset.
    fn by_offset(_: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        if offset.is_multiple_of(7) {
            sink.reject(Reject {
                position: crate::Position::Byte(offset),
                reason: "seventh".into(),
                raw: String::new(),
            });
        } else {
            let time = Timestamp(i64::try_from(offset).unwrap() * 1000 + i64::try_from(raw.len()).unwrap());
            sink.point(Fix::new(time, Coord::from_degrees(1.0, 2.0).unwrap(), SourceFormat::GoogleRecords), None);
        }
    }

    #[test]
    fn many_batches_over_every_worker_replay_in_file_order() {
        let options = ImportOptions { now: Timestamp(0) };
        let mut sink = Times::default();
        let elements = BATCH_ELEMENTS * MAX_WORKERS * 3 + 17;
        std::thread::scope(|scope| {
            let mut parallel = ParallelElements::start(scope, &options, by_offset, &mut sink);
            for i in 0..elements {
                parallel.push(i as u64, &vec![b'x'; i % 5]);
            }
            parallel.finish();
        });
        let expected_points: Vec<i64> =
            (0..elements).filter(|i| i % 7 != 0).map(|i| i as i64 * 1000 + (i % 5) as i64).collect();
        let expected_rejects: Vec<u64> = (0..elements as u64).filter(|i| i % 7 == 0).collect();
        assert_eq!(sink.0, expected_points);
        assert_eq!(sink.1, expected_rejects);
    }
}

//! Assembling a feed page, without the I/O.
//!
//! A backend reads its change log in slices of [`LOG_SLICE`] after the
//! cursor and turns each change into a [`ReplicatedChange`]; a
//! [`FeedAssembly`] decides what the page holds: which seq it has covered
//! (filtered-out changes included), how much each entry weighs and when the
//! page is full. Point changes are filled in last, because one chunk scan
//! serves many of them: [`FeedAssembly::point_scans`] groups the page's
//! point changes of one device whose spans lie within [`MERGE_GAP_MS`] of
//! each other, and [`FeedAssembly::collect`] hands each scanned fix to the
//! entry of the change that stored it.

use std::collections::HashMap;

use polo_domain::{DeviceId, Seq};

use super::{EditRange, EditRow, FeedEntry, FeedPage, Hlc, ReplicatedChange, Version};
use crate::codec::StoredFix;
use crate::{DerivedBatch, DerivedScope, StoreResult};

/// Changes a backend reads from its log per query while filling a page.
pub const LOG_SLICE: usize = 512;

/// Point changes of one device whose spans are closer than this are served
/// by one chunk scan (live ingest: thousands of tiny changes a day).
pub const MERGE_GAP_MS: i64 = 3_600_000;

/// A point change whose fixes the page still has to collect.
#[derive(Debug, Clone, Copy)]
struct PendingPoints {
    entry: usize,
    user: i64,
    device: i64,
    seq: u64,
    first: i64,
    last: i64,
}

/// Where a point change's fixes are: its user's and device's backend ids
/// and the time span the change log recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PointsAt {
    /// The user's id in the source.
    pub user: i64,
    /// The device's id in the source.
    pub device: i64,
    /// The earliest fix's time (ms).
    pub first: i64,
    /// The latest fix's time (ms).
    pub last: i64,
}

/// One scan of a device's chunks serving one or more point changes: read
/// the chunks overlapping `[from, last]` (and the one before `from`, which
/// may reach into it) whose `max_seq` is at least `min_seq`, and pass their
/// fixes to [`FeedAssembly::collect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointScan {
    /// The user's id in the source.
    pub user: i64,
    /// The device's id in the source.
    pub device: i64,
    /// The earliest time any of the changes covers (ms).
    pub from: i64,
    /// The latest time any of the changes covers (ms).
    pub last: i64,
    /// The lowest seq of the changes: chunks with older fixes only are of
    /// no use.
    pub min_seq: Seq,
    entry_by_seq: HashMap<u64, usize>,
}

/// A feed page being filled.
#[derive(Debug)]
pub struct FeedAssembly {
    max_weight: usize,
    entries: Vec<FeedEntry>,
    pending: Vec<PendingPoints>,
    next: Seq,
    weight: usize,
}

impl FeedAssembly {
    /// A page starting after `after`, of about `max_weight` points (at
    /// least one entry).
    #[must_use]
    pub fn new(after: Seq, max_weight: usize) -> Self {
        Self { max_weight: max_weight.max(1), entries: Vec::new(), pending: Vec::new(), next: after, weight: 0 }
    }

    /// The last seq the page covers so far: the next log read starts after
    /// it.
    #[must_use]
    pub fn next(&self) -> Seq {
        self.next
    }

    /// Whether the page has room and the log, up to `head`, has more.
    #[must_use]
    pub fn wants_more(&self, head: Seq) -> bool {
        self.weight < self.max_weight && self.next < head
    }

    /// Passes over change `seq`: the filter leaves it out, or it has
    /// nothing to send. The page still covers it.
    pub fn skip(&mut self, seq: Seq) {
        self.next = seq;
    }

    /// Adds the entry of change `seq`; whether the page is now full.
    pub fn push(&mut self, seq: Seq, version: Version, change: ReplicatedChange) -> bool {
        self.add(seq, version, change.weight(), change)
    }

    /// Adds a point change of `user`'s `device` (names), whose fixes
    /// [`FeedAssembly::point_scans`] will find at `at`; it weighs the
    /// `count` points the log recorded. Whether the page is now full.
    pub fn push_points(
        &mut self,
        seq: Seq,
        version: Version,
        user: String,
        device: String,
        at: PointsAt,
        count: u64,
    ) -> bool {
        self.pending.push(PendingPoints {
            entry: self.entries.len(),
            user: at.user,
            device: at.device,
            seq: seq.0,
            first: at.first,
            last: at.last,
        });
        let weight = usize::try_from(count).unwrap_or(usize::MAX).max(1);
        self.add(seq, version, weight, ReplicatedChange::Points { user, device, fixes: Vec::new() })
    }

    fn add(&mut self, seq: Seq, version: Version, weight: usize, change: ReplicatedChange) -> bool {
        self.next = seq;
        self.weight = self.weight.saturating_add(weight);
        self.entries.push(FeedEntry { seq, version, change });
        self.weight >= self.max_weight
    }

    /// The chunk scans that collect every pending point change's fixes:
    /// per device, changes whose spans lie within [`MERGE_GAP_MS`] of each
    /// other share one.
    #[must_use]
    pub fn point_scans(&self) -> Vec<PointScan> {
        let mut pending = self.pending.clone();
        pending.sort_by_key(|p| (p.user, p.device, p.first));
        let mut scans = Vec::new();
        let mut at = 0;
        while at < pending.len() {
            let (user, device) = (pending[at].user, pending[at].device);
            let (from, mut last) = (pending[at].first, pending[at].last);
            let mut end = at + 1;
            while end < pending.len()
                && pending[end].user == user
                && pending[end].device == device
                && pending[end].first <= last.saturating_add(MERGE_GAP_MS)
            {
                last = last.max(pending[end].last);
                end += 1;
            }
            let group = &pending[at..end];
            scans.push(PointScan {
                user,
                device,
                from,
                last,
                min_seq: Seq(group.iter().map(|p| p.seq).min().unwrap_or(0)),
                entry_by_seq: group.iter().map(|p| (p.seq, p.entry)).collect(),
            });
            at = end;
        }
        scans
    }

    /// Hands the fixes `scan` read (in time order) to the entries of the
    /// changes that stored them; fixes of other changes are left out.
    pub fn collect(&mut self, scan: &PointScan, fixes: impl IntoIterator<Item = StoredFix>) {
        for sf in fixes {
            if let Some(&entry) = scan.entry_by_seq.get(&sf.seq.0)
                && let ReplicatedChange::Points { fixes, .. } = &mut self.entries[entry].change
            {
                fixes.push(sf.fix);
            }
        }
    }

    /// The page, read when the source's latest change was `head` (version
    /// `head_hlc`).
    #[must_use]
    pub fn finish(self, head: Seq, head_hlc: Hlc) -> FeedPage {
        FeedPage { entries: self.entries, next: self.next, head, head_hlc }
    }
}

/// The feed's form of an edit `batch` of `user`, its devices named by
/// `device_name`.
///
/// # Errors
/// What `device_name` returns.
pub fn edit_change(
    user: String,
    batch: DerivedBatch,
    device_name: &mut dyn FnMut(DeviceId) -> StoreResult<String>,
) -> StoreResult<ReplicatedChange> {
    let mut scope_name = |scope: DerivedScope| match scope {
        DerivedScope::User => Ok(None),
        DerivedScope::Device(d) => device_name(d).map(Some),
    };
    let delete = batch
        .delete
        .iter()
        .map(|d| Ok(EditRange { kind: d.kind.0, device: scope_name(d.scope)?, from: d.from, to: d.to }))
        .collect::<StoreResult<_>>()?;
    let put = batch
        .put
        .into_iter()
        .map(|p| Ok(EditRow { kind: p.kind.0, device: scope_name(p.scope)?, key: p.key, value: p.value }))
        .collect::<StoreResult<_>>()?;
    Ok(ReplicatedChange::Edit { user, delete, put })
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

    use super::*;
    use crate::{DerivedKind, DerivedRow};

    fn v(hlc: u64) -> Version {
        Version { hlc: Hlc(hlc), origin: "a".into() }
    }

    fn user_change() -> ReplicatedChange {
        ReplicatedChange::User { name: "alice".into(), password_hash: "h".into(), is_admin: false }
    }

    fn at(device: i64, first: i64, last: i64) -> PointsAt {
        PointsAt { user: 1, device, first, last }
    }

    #[test]
    fn a_page_covers_skipped_changes_and_stops_at_its_weight() {
        let mut page = FeedAssembly::new(Seq(10), 100);
        assert!(page.wants_more(Seq(20)));
        assert!(!page.wants_more(Seq(10)), "nothing after the head");
        page.skip(Seq(11));
        assert_eq!(page.next(), Seq(11));
        assert!(!page.push(Seq(12), v(1), user_change()));
        assert!(!page.push_points(Seq(13), v(2), "alice".into(), "phone".into(), at(1, 0, 10), 60));
        assert!(page.push_points(Seq(14), v(3), "alice".into(), "phone".into(), at(1, 20, 30), 60), "full at 121");
        assert!(!page.wants_more(Seq(20)));
        let done = page.finish(Seq(20), Hlc(9));
        assert_eq!((done.next, done.head, done.entries.len()), (Seq(14), Seq(20), 3));
        let mut tiny = FeedAssembly::new(Seq(0), 0);
        assert!(tiny.push(Seq(1), v(1), user_change()), "a page holds at least one entry");
    }

    #[test]
    fn close_point_changes_of_a_device_share_a_scan() {
        let mut page = FeedAssembly::new(Seq(0), 10_000);
        let hour = MERGE_GAP_MS;
        page.push_points(Seq(1), v(1), "alice".into(), "phone".into(), at(1, 0, 100), 1);
        page.push_points(Seq(2), v(2), "alice".into(), "watch".into(), at(2, 50, 60), 1);
        page.push_points(Seq(3), v(3), "alice".into(), "phone".into(), at(1, 100 + hour, 200 + hour), 1);
        page.push_points(Seq(4), v(4), "alice".into(), "phone".into(), at(1, 300 + 3 * hour, 400 + 3 * hour), 1);
        let scans = page.point_scans();
        let spans: Vec<_> = scans.iter().map(|s| (s.device, s.from, s.last, s.min_seq)).collect();
        assert_eq!(
            spans,
            [(1, 0, 200 + hour, Seq(1)), (1, 300 + 3 * hour, 400 + 3 * hour, Seq(4)), (2, 50, 60, Seq(2))]
        );
        let fix = |t| Fix::new(Timestamp(t), Coord { lat_e7: 0, lon_e7: 0 }, SourceFormat::Api);
        let stored = |t, seq| StoredFix { fix: fix(t), seq: Seq(seq) };
        page.collect(&scans[0], [stored(0, 1), stored(50, 9), stored(100 + hour, 3)]);
        let fixes = |i: usize, page: &FeedAssembly| match &page.entries[i].change {
            ReplicatedChange::Points { fixes, .. } => fixes.iter().map(|f| f.time.0).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(fixes(0, &page), [0], "a fix of another change is not this change's");
        assert_eq!(fixes(2, &page), [100 + hour]);
        assert!(fixes(1, &page).is_empty());
    }

    #[test]
    fn edits_name_their_devices() {
        let batch = DerivedBatch {
            delete: vec![],
            put: vec![DerivedRow {
                kind: DerivedKind(7),
                scope: DerivedScope::Device(DeviceId(3)),
                key: 1,
                value: b"x".to_vec(),
            }],
        };
        let change = edit_change("alice".into(), batch, &mut |d| Ok(format!("device {}", d.0))).unwrap();
        let ReplicatedChange::Edit { put, .. } = change else { panic!("not an edit") };
        assert_eq!(put[0].device.as_deref(), Some("device 3"));
    }
}

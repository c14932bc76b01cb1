//! The rules of applying a replicated change, without the I/O.
//!
//! Every backend applies a feed page the same way (see [the model](super)):
//! skip what it holds, last-writer-wins by [`Version`] for accounts and for
//! points of the same time, tombstones that beat older points only, and no
//! change logged for an entry that changed nothing. Those decisions live
//! here so that a backend only reads and writes rows: it asks
//! [`decide_account`] whether to touch a user or device, [`admit_points`]
//! which incoming fixes a stored tombstone buries, a [`PointArbiter`]
//! whether an incoming fix replaces a stored one and whether a stored one
//! survives a tombstone, and [`OriginNames`] how instance ids map to its
//! own small origin codes.

use std::collections::HashMap;

use polo_domain::{DeviceId, Fix, Seq, Timestamp, UserId};

use super::{EditRange, EditRow, Version};
use crate::codec::StoredFix;
use crate::{
    ApplyOutcome, Area, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, Hlc, PointQuery,
    PointSelection, StoreError, StoreResult,
};

/// What to do with a replicated user or device change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountDecision {
    /// It is not held yet: create it with the incoming content and version.
    Create,
    /// The incoming version is newer and says something else: overwrite.
    Update,
    /// The stored one is as new or newer, or already says the same.
    Skip,
}

/// Last-writer-wins for an account (a user, a device): `stored` is what the
/// target holds (its version and content), `content` what the entry says.
#[must_use]
pub fn decide_account<C: PartialEq + ?Sized>(
    stored: Option<(&Version, &C)>,
    incoming: &Version,
    content: &C,
) -> AccountDecision {
    match stored {
        None => AccountDecision::Create,
        Some((version, held)) if version >= incoming || held == content => AccountDecision::Skip,
        Some(_) => AccountDecision::Update,
    }
}

/// What to do with an incoming entry of an account, given the account's
/// tombstone (the version of its latest deletion, if it was ever deleted
/// here or learnt of a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountEntry {
    /// Apply it as usual.
    Apply,
    /// Leave it out: the account was deleted after (or as) it was made, or
    /// it is not the account's own change and the account does not exist
    /// here any more (a write made elsewhere while the deletion travelled).
    Skip,
    /// An [`ReplicatedChange::AccountDeleted`] to carry out: delete the
    /// account (if held) and keep the newer tombstone. With `keep_user`,
    /// the account itself was changed after the deletion was made (a newer
    /// password, say): its data goes, its user row and that change stay, as
    /// on the instance that made the change, which got the deletion first.
    ///
    /// [`ReplicatedChange::AccountDeleted`]: super::ReplicatedChange::AccountDeleted
    Delete {
        /// Keep the user row (and its latest change).
        keep_user: bool,
    },
}

/// What a target holds of an account whose name has an account tombstone.
#[derive(Debug, Clone, Copy)]
pub struct HeldAccount<'a> {
    /// The version of the user row (its latest account change).
    pub version: &'a Version,
    /// Since when the account exists again after the deletion: the earliest
    /// version of an account change of that name that came after it
    /// (`None`: not recorded, taken as the deletion's).
    pub revived: Option<&'a Version>,
}

/// The rule for an incoming entry of an account: `deleted` is the version
/// of the account tombstone the target holds for its name, `user` what it
/// holds of the account (`None`: no such user), and `incoming` the entry's
/// version.
///
/// * A deletion older than (or as old as) the held tombstone is skipped;
///   otherwise it deletes the account, keeping the user row only when the
///   row's own version is newer than the deletion.
/// * Any other change no newer than the tombstone is skipped: nothing the
///   account did before its deletion comes back.
/// * A newer change of the account itself (a user change) applies, and
///   creates the account again as a new account made after the deletion
///   does (the backend then notes it with [`revived_since`]).
/// * A newer change of anything else applies only to an account that exists
///   and only when it is newer than the account's revival: a point written
///   on a peer that had not heard of the deletion yet makes no account
///   without a password, and does not land in a new account of that name.
#[must_use]
pub fn account_entry(
    deleted: Option<&Version>,
    user: Option<HeldAccount<'_>>,
    incoming: &Version,
    is_deletion: bool,
    is_user_change: bool,
) -> AccountEntry {
    if is_deletion {
        return match deleted {
            Some(held) if held >= incoming => AccountEntry::Skip,
            _ => AccountEntry::Delete { keep_user: user.is_some_and(|u| u.version > incoming) },
        };
    }
    match (deleted, user) {
        (None, _) => AccountEntry::Apply,
        (Some(held), _) if held >= incoming => AccountEntry::Skip,
        (Some(_), _) if is_user_change => AccountEntry::Apply,
        (Some(held), Some(user)) if incoming > user.revived.unwrap_or(held) => AccountEntry::Apply,
        (Some(_), _) => AccountEntry::Skip,
    }
}

/// The revival to record after an account change of version `incoming`
/// was applied to a name with an account tombstone: the earlier of the
/// recorded one and `incoming` (`None`: nothing to write), so that every
/// replica counts the account from its first re-creation whatever order the
/// re-creations arrive in.
#[must_use]
pub fn revived_since(recorded: Option<&Version>, incoming: &Version) -> Option<Version> {
    match recorded {
        Some(r) if r <= incoming => None,
        _ => Some(incoming.clone()),
    }
}

/// The whole account rule for an incoming `entry`, as a backend applies it:
/// [`account_entry`]'s decision, and the revival to record
/// ([`revived_since`]) when a user change re-creates an account whose name
/// has a tombstone. `deleted` and `revived` are the tombstone's versions the
/// target holds for the entry's name, `user` the version of its user row.
#[must_use]
pub fn judge_account(
    entry: &super::FeedEntry,
    deleted: Option<&Version>,
    revived: Option<&Version>,
    user: Option<&Version>,
) -> (AccountEntry, Option<Version>) {
    let is_deletion = matches!(entry.change, super::ReplicatedChange::AccountDeleted { .. });
    let is_user_change = matches!(entry.change, super::ReplicatedChange::User { .. });
    let held = user.map(|version| HeldAccount { version, revived });
    let decision = account_entry(deleted, held, &entry.version, is_deletion, is_user_change);
    let revival = if is_user_change && deleted.is_some() && decision == AccountEntry::Apply {
        revived_since(revived, &entry.version)
    } else {
        None
    };
    (decision, revival)
}

/// A stored tombstone as replication compares it with incoming points:
/// inclusive bounds (`None` unbounded), an optional area, and its version.
/// Thinnings are not listed: they never bury a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionedTombstone {
    /// Inclusive lower bound (ms).
    pub from: Option<i64>,
    /// Inclusive upper bound (ms).
    pub last: Option<i64>,
    /// Only points inside this rectangle.
    pub area: Option<Area>,
    /// The delete's version.
    pub version: Version,
}

impl VersionedTombstone {
    /// Whether the fix lies in the tombstone's range (and area).
    #[must_use]
    pub fn covers(&self, fix: &Fix) -> bool {
        let t = fix.time.0;
        self.from.is_none_or(|from| from <= t)
            && self.last.is_none_or(|last| t <= last)
            && self.area.is_none_or(|a| a.contains(fix.coord.lat_e7, fix.coord.lon_e7))
    }
}

/// The incoming fixes (of version `incoming`) no newer tombstone covers,
/// and how many were refused: a tombstone beats older points only, so a
/// point written after the delete (elsewhere) still arrives.
#[must_use]
pub fn admit_points(fixes: &[Fix], covering: &[VersionedTombstone], incoming: &Version) -> (Vec<Fix>, u64) {
    let mut suppressed = 0;
    let admitted = fixes
        .iter()
        .filter(|f| {
            let buried = covering.iter().any(|t| t.version > *incoming && t.covers(f));
            suppressed += u64::from(buried);
            !buried
        })
        .cloned()
        .collect();
    (admitted, suppressed)
}

/// The earliest and latest time of `fixes`, `None` for none.
#[must_use]
pub fn time_span(fixes: &[Fix]) -> Option<(i64, i64)> {
    let lo = fixes.iter().map(|f| f.time.0).min()?;
    let hi = fixes.iter().map(|f| f.time.0).max()?;
    Some((lo, hi))
}

/// The versions of stored points, by the seq of the change that stored
/// them (chunks record a seq per fix, the change log the seq's version).
#[derive(Debug, Default)]
pub struct PointVersions {
    by_seq: HashMap<u64, Version>,
}

impl PointVersions {
    /// Remembers the version of change `seq` (a backend that reads them
    /// ahead).
    pub fn insert(&mut self, seq: Seq, version: Version) {
        self.by_seq.insert(seq.0, version);
    }

    /// The version of change `seq`, from memory or from `load`.
    ///
    /// # Errors
    /// What `load` returns.
    pub fn of(&mut self, seq: Seq, load: impl FnOnce(Seq) -> StoreResult<Version>) -> StoreResult<Version> {
        if let Some(v) = self.by_seq.get(&seq.0) {
            return Ok(v.clone());
        }
        let v = load(seq)?;
        self.by_seq.insert(seq.0, v.clone());
        Ok(v)
    }
}

/// The error for a stored point whose change is not logged.
#[must_use]
pub fn unlogged_point(seq: Seq) -> StoreError {
    StoreError::Corrupt(format!("a stored point names change {seq}, which is not logged"))
}

/// Last-writer-wins between one incoming change's points and the stored
/// ones, as the callbacks a backend's point writes take: an insert asks
/// [`PointArbiter::replaces`] for every stored fix of a time it brings, a
/// replicated delete asks [`PointArbiter::survives`] for every stored fix
/// (and interval) it covers. Version lookups that fail are kept and
/// returned by [`PointArbiter::finish`], since the callbacks cannot fail.
pub struct PointArbiter<'a, L> {
    incoming: &'a Version,
    versions: &'a mut PointVersions,
    load: L,
    replaced: u64,
    failure: Option<StoreError>,
}

impl<'a, L: FnMut(Seq) -> StoreResult<Version>> PointArbiter<'a, L> {
    /// Arbitrates for a change of version `incoming`; `load` finds the
    /// version of a change `versions` does not hold.
    pub fn new(incoming: &'a Version, versions: &'a mut PointVersions, load: L) -> Self {
        Self { incoming, versions, load, replaced: 0, failure: None }
    }

    fn version(&mut self, seq: Seq) -> Option<Version> {
        match self.versions.of(seq, &mut self.load) {
            Ok(v) => Some(v),
            Err(e) => {
                self.failure.get_or_insert(e);
                None
            }
        }
    }

    /// Whether the incoming `fix` replaces `stored` (same time): only when
    /// it says something else and is newer. Counts the replacements.
    pub fn replaces(&mut self, stored: &StoredFix, fix: &Fix) -> bool {
        if stored.fix == *fix {
            return false;
        }
        let wins = self.version(stored.seq).is_some_and(|v| *self.incoming > v);
        self.replaced += u64::from(wins);
        wins
    }

    /// Whether the stored point (or interval) written by change `seq`
    /// survives an incoming tombstone: when it is newer.
    pub fn survives(&mut self, seq: Seq) -> bool {
        // On a failed lookup keep it; `finish` fails the apply anyway.
        self.version(seq).is_none_or(|v| v > *self.incoming)
    }

    /// How many stored fixes were replaced.
    ///
    /// # Errors
    /// The first failed version lookup.
    pub fn finish(self) -> StoreResult<u64> {
        match self.failure {
            Some(e) => Err(e),
            None => Ok(self.replaced),
        }
    }
}

impl ApplyOutcome {
    /// Counts one entry: applied when it changed something, else skipped.
    pub fn count_entry(&mut self, changed: bool) {
        if changed {
            self.applied += 1;
        } else {
            self.skipped += 1;
        }
    }

    /// Counts an applied point change: the insert added `added` fixes, of
    /// which `replaced` replaced stored ones, and `suppressed` were refused.
    pub fn count_points(&mut self, added: u64, replaced: u64, suppressed: u64) {
        self.points_added += added - replaced;
        self.points_replaced += replaced;
        self.points_suppressed += suppressed;
    }
}

/// The selection a replicated tombstone deletes on the target (ids local).
#[must_use]
pub fn tombstone_selection(
    user: UserId,
    device: Option<DeviceId>,
    from: Option<i64>,
    last: Option<i64>,
    area: Option<Area>,
    keep_one_every_ms: Option<i64>,
) -> PointSelection {
    PointSelection {
        query: PointQuery { user, device, from: from.map(Timestamp), to: last.map(|l| Timestamp(l.saturating_add(1))) },
        area,
        keep_one_every_ms,
    }
}

/// The derived batch a replicated edit writes, its devices named by
/// `device` (name to the target's id, created when missing).
///
/// # Errors
/// What `device` returns.
pub fn edit_batch(
    delete: &[EditRange],
    put: &[EditRow],
    device: &mut dyn FnMut(&str) -> StoreResult<DeviceId>,
) -> StoreResult<DerivedBatch> {
    let mut scope = |name: &Option<String>| -> StoreResult<DerivedScope> {
        Ok(match name {
            None => DerivedScope::User,
            Some(name) => DerivedScope::Device(device(name)?),
        })
    };
    let mut batch = DerivedBatch::default();
    for d in delete {
        batch.delete.push(DerivedRange { kind: DerivedKind(d.kind), scope: scope(&d.device)?, from: d.from, to: d.to });
    }
    for p in put {
        batch.put.push(DerivedRow {
            kind: DerivedKind(p.kind),
            scope: scope(&p.device)?,
            key: p.key,
            value: p.value.clone(),
        });
    }
    Ok(batch)
}

/// Instance ids and a backend's small origin codes (0 is this instance,
/// other codes are rows of its `origins` table), both ways, remembered for
/// the length of a feed read or an apply.
#[derive(Debug)]
pub struct OriginNames {
    me: String,
    names: HashMap<i64, String>,
    codes: HashMap<String, i64>,
}

impl OriginNames {
    /// For the instance whose id is `me`.
    #[must_use]
    pub fn new(me: String) -> Self {
        Self { me, names: HashMap::new(), codes: HashMap::new() }
    }

    /// This instance's id.
    #[must_use]
    pub fn me(&self) -> &str {
        &self.me
    }

    /// The instance id of origin `code`; `load` reads an unknown code's
    /// (`None`: no such code).
    ///
    /// # Errors
    /// What `load` returns; [`StoreError::Corrupt`] for an unknown code.
    pub fn name(&mut self, code: i64, load: impl FnOnce(i64) -> StoreResult<Option<String>>) -> StoreResult<&str> {
        if code == 0 {
            return Ok(&self.me);
        }
        if !self.names.contains_key(&code) {
            let name = load(code)?.ok_or_else(|| StoreError::Corrupt(format!("unknown origin {code}")))?;
            self.codes.insert(name.clone(), code);
            self.names.insert(code, name);
        }
        Ok(&self.names[&code])
    }

    /// The version of a change stored with clock reading `hlc` and origin
    /// `code`.
    ///
    /// # Errors
    /// As [`OriginNames::name`].
    pub fn version(
        &mut self,
        hlc: i64,
        code: i64,
        load: impl FnOnce(i64) -> StoreResult<Option<String>>,
    ) -> StoreResult<Version> {
        Ok(Version { hlc: Hlc(hlc as u64), origin: self.name(code, load)?.to_owned() })
    }

    /// The code of `instance`: 0 for this instance, else what
    /// `find_or_create` returns (reading or adding the `origins` row).
    ///
    /// # Errors
    /// What `find_or_create` returns.
    pub fn code(&mut self, instance: &str, find_or_create: impl FnOnce(&str) -> StoreResult<i64>) -> StoreResult<i64> {
        if instance == self.me {
            return Ok(0);
        }
        if let Some(&code) = self.codes.get(instance) {
            return Ok(code);
        }
        let code = find_or_create(instance)?;
        self.codes.insert(instance.to_owned(), code);
        self.names.insert(code, instance.to_owned());
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat};

    use super::*;

    fn v(hlc: u64, origin: &str) -> Version {
        Version { hlc: Hlc(hlc), origin: origin.into() }
    }

    fn fix(t: i64, lat: i32) -> Fix {
        Fix::new(Timestamp(t), Coord { lat_e7: lat, lon_e7: 0 }, SourceFormat::Api)
    }

    #[test]
    fn a_deleted_account_stays_deleted_for_older_changes() {
        use AccountEntry::*;
        let d = v(10, "a");
        let held = |version, revived| Some(HeldAccount { version, revived });
        // Never deleted: everything applies.
        assert_eq!(account_entry(None, None, &v(5, "b"), false, false), Apply);
        // Older changes (and the deletion itself again) are skipped.
        assert_eq!(account_entry(Some(&d), None, &v(9, "b"), false, true), Skip, "an older password");
        assert_eq!(account_entry(Some(&d), None, &v(9, "b"), false, false), Skip, "older points");
        assert_eq!(account_entry(Some(&d), None, &d, true, false), Skip, "the deletion again");
        assert_eq!(account_entry(Some(&v(11, "a")), None, &d, true, false), Skip, "an older deletion");
        // Newer: the account's own change makes it again; other changes need it.
        assert_eq!(account_entry(Some(&d), None, &v(11, "b"), false, true), Apply);
        assert_eq!(account_entry(Some(&d), None, &v(11, "b"), false, false), Skip, "no account, no shell");
        let c = v(13, "b");
        assert_eq!(account_entry(Some(&d), held(&c, Some(&c)), &v(14, "b"), false, false), Apply);
        assert_eq!(
            account_entry(Some(&d), held(&c, Some(&c)), &v(12, "z"), false, false),
            Skip,
            "written before the account was made again"
        );
        // A deletion deletes, keeping the user row only when it is newer.
        let old = v(3, "a");
        assert_eq!(account_entry(None, held(&old, None), &d, true, false), Delete { keep_user: false });
        assert_eq!(account_entry(None, None, &d, true, false), Delete { keep_user: false });
        assert_eq!(account_entry(Some(&v(9, "z")), held(&c, None), &d, true, false), Delete { keep_user: true });
        // Revivals keep the earliest.
        assert_eq!(revived_since(None, &c), Some(c.clone()));
        assert_eq!(revived_since(Some(&v(12, "a")), &c), None);
        assert_eq!(revived_since(Some(&v(14, "a")), &c), Some(c.clone()));
    }

    #[test]
    fn accounts_take_the_newer_version_unless_it_says_the_same() {
        use AccountDecision::*;
        assert_eq!(decide_account(None, &v(5, "a"), "x"), Create);
        assert_eq!(decide_account(Some((&v(4, "a"), "y")), &v(5, "a"), "x"), Update);
        assert_eq!(decide_account(Some((&v(5, "a"), "y")), &v(5, "a"), "x"), Skip, "held: no echo");
        assert_eq!(decide_account(Some((&v(6, "a"), "y")), &v(5, "z"), "x"), Skip, "older: ignored");
        assert_eq!(decide_account(Some((&v(5, "a"), "y")), &v(5, "b"), "x"), Update, "ties break by origin");
        assert_eq!(decide_account(Some((&v(1, "a"), "x")), &v(5, "a"), "x"), Skip, "same content: nothing to do");
    }

    #[test]
    fn a_tombstone_buries_older_points_inside_it_only() {
        let stone = VersionedTombstone {
            from: Some(10),
            last: Some(20),
            area: Some(Area { west_e7: -1, south_e7: 0, east_e7: 1, north_e7: 5 }),
            version: v(100, "a"),
        };
        let fixes = [fix(9, 1), fix(10, 1), fix(20, 1), fix(21, 1), fix(15, 9)];
        let (kept, suppressed) = admit_points(&fixes, std::slice::from_ref(&stone), &v(50, "b"));
        assert_eq!(suppressed, 2, "10 and 20 are inside, edges included");
        assert_eq!(kept.iter().map(|f| f.time.0).collect::<Vec<_>>(), [9, 21, 15], "outside the range or area");
        let (kept, suppressed) = admit_points(&fixes, &[stone], &v(150, "b"));
        assert_eq!((kept.len(), suppressed), (5, 0), "points written after the delete come in");
        assert_eq!(time_span(&fixes), Some((9, 21)));
        assert_eq!(time_span(&[]), None);
    }

    #[test]
    fn the_newer_point_wins_and_newer_points_survive_tombstones() {
        let mut versions = PointVersions::default();
        versions.insert(Seq(1), v(10, "a"));
        versions.insert(Seq(2), v(30, "a"));
        let incoming = v(20, "b");
        let mut arbiter = PointArbiter::new(&incoming, &mut versions, |seq| Err(unlogged_point(seq)));
        let stored = |seq, lat| StoredFix { fix: fix(5, lat), seq: Seq(seq) };
        assert!(arbiter.replaces(&stored(1, 1), &fix(5, 2)), "older and different: replaced");
        assert!(!arbiter.replaces(&stored(1, 2), &fix(5, 2)), "same content: left alone");
        assert!(!arbiter.replaces(&stored(2, 1), &fix(5, 2)), "newer: kept");
        assert!(!arbiter.survives(Seq(1)));
        assert!(arbiter.survives(Seq(2)));
        assert_eq!(arbiter.finish().unwrap(), 1);
        let mut arbiter = PointArbiter::new(&incoming, &mut versions, |seq| Err(unlogged_point(seq)));
        assert!(!arbiter.replaces(&stored(3, 1), &fix(5, 2)));
        assert!(matches!(arbiter.finish(), Err(StoreError::Corrupt(_))), "an unlogged change fails the apply");
    }

    #[test]
    fn versions_are_loaded_once() {
        let mut versions = PointVersions::default();
        let mut loads = 0;
        for _ in 0..3 {
            let got = versions
                .of(Seq(7), |_| {
                    loads += 1;
                    Ok(v(1, "a"))
                })
                .unwrap();
            assert_eq!(got, v(1, "a"));
        }
        assert_eq!(loads, 1);
    }

    #[test]
    fn origins_map_both_ways_and_zero_is_me() {
        let mut origins = OriginNames::new("me".into());
        assert_eq!(origins.code("me", |_| unreachable!()).unwrap(), 0);
        assert_eq!(origins.code("peer", |_| Ok(4)).unwrap(), 4);
        assert_eq!(origins.code("peer", |_| unreachable!()).unwrap(), 4, "remembered");
        assert_eq!(origins.name(4, |_| unreachable!()).unwrap(), "peer");
        assert_eq!(origins.version(9, 0, |_| unreachable!()).unwrap(), v(9, "me"));
        assert!(matches!(origins.name(5, |_| Ok(None)), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn outcomes_count_entries_and_points() {
        let mut out = ApplyOutcome::default();
        out.count_entry(true);
        out.count_entry(false);
        out.count_points(10, 3, 2);
        assert_eq!((out.applied, out.skipped), (1, 1));
        assert_eq!((out.points_added, out.points_replaced, out.points_suppressed), (7, 3, 2));
    }

    #[test]
    fn edits_and_tombstones_use_local_ids() {
        let put = [EditRow { kind: 7, device: Some("phone".into()), key: 1, value: b"x".to_vec() }];
        let delete = [EditRange { kind: 7, device: None, from: 0, to: 5 }];
        let batch = edit_batch(&delete, &put, &mut |name| {
            assert_eq!(name, "phone");
            Ok(DeviceId(42))
        })
        .unwrap();
        assert_eq!(batch.put[0].scope, DerivedScope::Device(DeviceId(42)));
        assert_eq!(batch.delete[0].scope, DerivedScope::User);
        let s = tombstone_selection(UserId(1), None, Some(5), Some(9), None, Some(60_000));
        assert_eq!((s.query.from, s.query.to), (Some(Timestamp(5)), Some(Timestamp(10))), "last is inclusive");
        assert_eq!(s.keep_one_every_ms, Some(60_000));
    }
}

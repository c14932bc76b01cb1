//! Cases, rules, decisions and statuses: every write that changes what
//! someone's status is, with its audit entry in the same transaction.
//!
//! * The authority marks a case ([`mark_case`]) or withdraws it
//!   ([`withdraw_case`]; its contacts and undecided proposals go with it).
//! * After a batch, [`evaluate`] sums each touched contact's exposure to a
//!   case over every window and applies the rules (minimum minutes,
//!   minimum encounters): a contact that meets them gets a proposal, applied
//!   at once with auto-apply, otherwise pending until the authority decides
//!   ([`decide`]). A pending proposal whose evidence no longer meets the
//!   rules (late data moved the points) is dropped; a decided one stays
//!   decided.
//! * [`refresh_statuses`] gives every user a precomputed status row with a
//!   signed code, ends `exposed` statuses whose validity passed, and
//!   re-signs `clear` codes before they run out.
//!
//! Each function returns the users whose status changed, for the caller
//! to notify.

use std::collections::{BTreeMap, BTreeSet};

use polo_domain::{Timestamp, UserId};
use polo_store::{AuditEntry, RecordQuery, RecordWrite, Store, User};
use serde_json::json;

use crate::model::{
    CASE, CONTACT, Case, Contact, Evidence, PROPOSAL, Proposal, ProposalState, STATUS, Status, StatusRow, decode,
    delete, pad, put,
};
use crate::settings::Settings;
use crate::signing::{Claim, Signer};
use crate::{ExposureError, ExposureResult};

/// The actor of automatic decisions.
pub const SYSTEM: &str = "system";

/// The longest infectious period a case may have.
pub const MAX_INFECTIOUS_DAYS: i64 = 60;

/// An audit-log write.
#[must_use]
pub fn audit(
    at: Timestamp,
    actor: &str,
    action: &str,
    subject: Option<i64>,
    detail: &serde_json::Value,
) -> RecordWrite {
    RecordWrite::Audit(AuditEntry {
        id: 0,
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: subject.map(UserId),
        detail: detail.to_string(),
    })
}

/// Every case, by id (oldest first: ids start with the marking time).
///
/// # Errors
/// Store failures, damaged records.
pub fn cases(store: &dyn Store) -> ExposureResult<Vec<Case>> {
    store.records(&RecordQuery::kind(CASE))?.iter().map(decode).collect()
}

/// The case `id`.
///
/// # Errors
/// [`ExposureError::NotFound`], store failures.
pub fn case(store: &dyn Store, id: &str) -> ExposureResult<Case> {
    let record = store.record(CASE, id)?.ok_or_else(|| ExposureError::NotFound(format!("case {id:?}")))?;
    decode(&record)
}

/// Marks `subject` as a case infectious in `[from, to)`.
///
/// # Errors
/// [`ExposureError::Invalid`] for an empty, reversed or too long period, or
/// one that starts in the future; [`ExposureError::NotFound`] for an
/// unknown user.
pub fn mark_case(
    store: &dyn Store,
    actor: &User,
    subject: &User,
    from: Timestamp,
    to: Timestamp,
    note: &str,
    now: Timestamp,
) -> ExposureResult<Case> {
    if to <= from {
        return Err(ExposureError::Invalid(format!("the infectious period must end after it starts ({from} to {to})")));
    }
    if to.0 - from.0 > MAX_INFECTIOUS_DAYS * crate::DAY_MS {
        return Err(ExposureError::Invalid(format!("the infectious period may be at most {MAX_INFECTIOUS_DAYS} days")));
    }
    if from > now {
        return Err(ExposureError::Invalid(format!("the infectious period cannot start in the future ({from})")));
    }
    let id = format!("{}-{}", pad(now.0), &polo_store::clock::new_random_id()[..8]);
    let case = Case {
        id: id.clone(),
        user: subject.id.0,
        infectious_from: from.0,
        infectious_to: to.0,
        marked_by: actor.name.clone(),
        marked_at: now.0,
        note: note.to_owned(),
        withdrawn_at: None,
    };
    store.write_records(&[
        put(CASE, id.clone(), Some(subject.id.0), to.0, &case),
        audit(
            now,
            &actor.name,
            "exposure.case.mark",
            Some(subject.id.0),
            &json!({
                "case": id, "infectious_from": from.to_string(), "infectious_to": to.to_string(), "note": note,
            }),
        ),
    ])?;
    Ok(case)
}

/// The contacts of `case`, by window.
///
/// # Errors
/// Store failures, damaged records.
pub fn contacts_of(store: &dyn Store, case: &str) -> ExposureResult<Vec<Contact>> {
    let mut out = Vec::new();
    for record in store.records(&RecordQuery::kind(CONTACT))? {
        // Keys are window/case/contact: the case is the middle part.
        if record.key.split('/').nth(1) == Some(case) {
            out.push(decode(&record)?);
        }
    }
    Ok(out)
}

/// Every proposal, optionally only those in `state`.
///
/// # Errors
/// Store failures, damaged records.
pub fn proposals(store: &dyn Store, state: Option<ProposalState>) -> ExposureResult<Vec<Proposal>> {
    let all: Vec<Proposal> =
        store.records(&RecordQuery::kind(PROPOSAL))?.iter().map(decode).collect::<Result<_, _>>()?;
    Ok(all.into_iter().filter(|p| state.is_none_or(|s| p.state == s)).collect())
}

/// Withdraws case `id`: its contacts and pending proposals are deleted;
/// statuses already applied stay until they expire (the authority decided
/// them on the evidence of the time, which the audit log keeps).
///
/// # Errors
/// [`ExposureError::NotFound`], [`ExposureError::Conflict`] for a case
/// withdrawn already; store failures.
pub fn withdraw_case(store: &dyn Store, actor: &User, id: &str, reason: &str, now: Timestamp) -> ExposureResult<Case> {
    let mut case = case(store, id)?;
    if !case.active() {
        return Err(ExposureError::Conflict(format!("case {id:?} is withdrawn already")));
    }
    case.withdrawn_at = Some(now.0);
    let mut writes = vec![put(CASE, id.to_owned(), Some(case.user), case.infectious_to, &case)];
    for contact in contacts_of(store, id)? {
        writes.push(delete(CONTACT, contact.key()));
    }
    let mut dropped = 0;
    for proposal in proposals(store, Some(ProposalState::Pending))? {
        if proposal.case == id {
            writes.push(delete(PROPOSAL, Proposal::key(id, proposal.contact)));
            dropped += 1;
        }
    }
    writes.push(audit(
        now,
        &actor.name,
        "exposure.case.withdraw",
        Some(case.user),
        &json!({
            "case": id, "reason": reason, "pending_proposals_dropped": dropped,
        }),
    ));
    store.write_records(&writes)?;
    Ok(case)
}

/// The status row of `user` with a freshly signed code.
#[must_use]
pub fn status_row(
    signer: &Signer,
    user: i64,
    status: Status,
    since: i64,
    valid_until: i64,
    now: Timestamp,
) -> StatusRow {
    let code = signer.sign(&Claim { user, status, valid_until, issued: now.0 });
    StatusRow { user, status, since, valid_until, code, updated: now.0 }
}

fn status_write(row: &StatusRow) -> RecordWrite {
    put(STATUS, StatusRow::key(UserId(row.user)), Some(row.user), row.updated, row)
}

/// `user`'s precomputed status row.
///
/// # Errors
/// Store failures, a damaged row.
pub fn status(store: &dyn Store, user: UserId) -> ExposureResult<Option<StatusRow>> {
    store.record(STATUS, &StatusRow::key(user))?.as_ref().map(decode).transpose()
}

/// The `exposed` row a decision applies: valid for the configured period
/// from now, or longer if the user's current exposure lasts longer.
fn exposed_row(
    store: &dyn Store,
    signer: &Signer,
    settings: &Settings,
    user: i64,
    now: Timestamp,
) -> ExposureResult<StatusRow> {
    let current = status(store, UserId(user))?;
    let mut until = now.0 + settings.status_validity_ms();
    let mut since = now.0;
    if let Some(row) = current.filter(|r| r.status == Status::Exposed && r.valid_until > now.0) {
        until = until.max(row.valid_until);
        since = row.since;
    }
    Ok(status_row(signer, user, Status::Exposed, since, until, now))
}

/// The authority's decision on the pending proposal for `contact` of
/// `case`: approving applies the proposed status. Returns the proposal as
/// decided.
///
/// # Errors
/// [`ExposureError::NotFound`] without such a proposal,
/// [`ExposureError::Conflict`] when it is decided already; store failures.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    store: &dyn Store,
    signer: &Signer,
    settings: &Settings,
    actor: &User,
    case: &str,
    contact: i64,
    approve: bool,
    reason: &str,
    now: Timestamp,
) -> ExposureResult<Proposal> {
    let key = Proposal::key(case, contact);
    let record = store
        .record(PROPOSAL, &key)?
        .ok_or_else(|| ExposureError::NotFound(format!("proposal for user {contact} in case {case:?}")))?;
    let mut proposal: Proposal = decode(&record)?;
    if proposal.state != ProposalState::Pending {
        return Err(ExposureError::Conflict(format!(
            "the proposal was decided already ({:?} by {})",
            proposal.state,
            proposal.decided_by.as_deref().unwrap_or("?")
        )));
    }
    proposal.state = if approve { ProposalState::Approved } else { ProposalState::Rejected };
    proposal.decided_by = Some(actor.name.clone());
    proposal.decided_at = Some(now.0);
    proposal.reason = Some(reason.to_owned());
    let mut writes = vec![put(PROPOSAL, key, Some(contact), record.at.0, &proposal)];
    let mut detail = json!({
        "case": case, "status": proposal.status, "reason": reason, "evidence": proposal.evidence,
        "rule": {"min_minutes": proposal.rule.0, "min_encounters": proposal.rule.1},
    });
    if approve {
        let row = exposed_row(store, signer, settings, contact, now)?;
        detail["valid_until"] = Timestamp(row.valid_until).to_string().into();
        writes.push(status_write(&row));
    }
    let action = if approve { "exposure.proposal.approve" } else { "exposure.proposal.reject" };
    writes.push(audit(now, &actor.name, action, Some(contact), &detail));
    store.write_records(&writes)?;
    Ok(proposal)
}

/// Applies the rules to the contacts of each (case, contact) in `touched`;
/// returns the users whose status changed (auto-apply).
///
/// # Errors
/// Store failures, damaged records.
pub fn evaluate(
    store: &dyn Store,
    signer: &Signer,
    settings: &Settings,
    touched: &BTreeSet<(String, i64)>,
    now: Timestamp,
) -> ExposureResult<Vec<UserId>> {
    if touched.is_empty() {
        return Ok(Vec::new());
    }
    let mut evidence: BTreeMap<(String, i64), Evidence> = BTreeMap::new();
    for record in store.records(&RecordQuery::kind(CONTACT))? {
        let c: Contact = decode(&record)?;
        let pair = (c.case.clone(), c.contact);
        if !touched.contains(&pair) {
            continue;
        }
        let e = evidence.entry(pair).or_insert(Evidence {
            minutes: 0,
            encounters: 0,
            pairs: 0,
            first: c.first,
            last: c.last,
            min_distance_m: c.min_distance_m,
        });
        e.minutes += c.minutes;
        e.encounters += 1;
        e.pairs += c.pairs;
        e.first = e.first.min(c.first);
        e.last = e.last.max(c.last);
        e.min_distance_m = e.min_distance_m.min(c.min_distance_m);
    }
    let rule = (settings.min_minutes, settings.min_encounters);
    let mut writes = Vec::new();
    let mut changed = Vec::new();
    for (case, contact) in touched {
        let key = Proposal::key(case, *contact);
        let stored: Option<Proposal> = store.record(PROPOSAL, &key)?.as_ref().map(decode).transpose()?;
        let found = evidence.get(&(case.clone(), *contact));
        let meets = found.is_some_and(|e| f64::from(e.minutes) >= rule.0 && f64::from(e.encounters) >= rule.1);
        match (stored, found) {
            (Some(p), _) if p.state != ProposalState::Pending => {} // decided: stays decided
            (Some(mut p), Some(e)) if meets => {
                if p.evidence != *e {
                    p.evidence = e.clone();
                    writes.push(put(PROPOSAL, key, Some(*contact), e.last, &p));
                }
            }
            (Some(p), _) => {
                writes.push(delete(PROPOSAL, key));
                writes.push(audit(
                    now,
                    SYSTEM,
                    "exposure.proposal.drop",
                    Some(*contact),
                    &json!({
                        "case": case, "reason": "the evidence no longer meets the rules", "evidence": found,
                        "was": p.evidence,
                    }),
                ));
            }
            (None, Some(e)) if meets => {
                let mut p = Proposal {
                    case: case.clone(),
                    contact: *contact,
                    state: ProposalState::Pending,
                    status: Status::Exposed,
                    evidence: e.clone(),
                    rule,
                    created: now.0,
                    decided_by: None,
                    decided_at: None,
                    reason: None,
                };
                let detail = json!({
                    "case": case, "status": p.status, "evidence": e,
                    "rule": {"min_minutes": rule.0, "min_encounters": rule.1},
                });
                if settings.auto_apply {
                    p.state = ProposalState::Applied;
                    p.decided_by = Some(SYSTEM.to_owned());
                    p.decided_at = Some(now.0);
                    p.reason = Some("auto-apply: the rules were met".to_owned());
                    writes.push(status_write(&exposed_row(store, signer, settings, *contact, now)?));
                    writes.push(audit(now, SYSTEM, "exposure.proposal.apply", Some(*contact), &detail));
                    changed.push(UserId(*contact));
                } else {
                    writes.push(audit(now, SYSTEM, "exposure.proposal.create", Some(*contact), &detail));
                }
                writes.push(put(PROPOSAL, key, Some(*contact), e.last, &p));
            }
            (None, _) => {}
        }
    }
    if !writes.is_empty() {
        store.write_records(&writes)?;
    }
    Ok(changed)
}

/// What [`refresh_statuses`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Users whose status changed (an `exposed` status expired): to be notified.
    pub changed: Vec<UserId>,
    /// Users whose row was written at all (also a first row or a re-signed
    /// code): what a cache of the rows must forget.
    pub written: Vec<UserId>,
}

/// Gives every user a status row: `clear` for users without one, `clear`
/// again for `exposed` rows whose validity passed (audited), and a fresh
/// `clear` code for codes past half their validity.
///
/// # Errors
/// Store failures, damaged rows.
pub fn refresh_statuses(
    store: &dyn Store,
    signer: &Signer,
    settings: &Settings,
    now: Timestamp,
) -> ExposureResult<Refreshed> {
    let rows: BTreeMap<i64, StatusRow> = store
        .records(&RecordQuery::kind(STATUS))?
        .iter()
        .map(|r| decode::<StatusRow>(r).map(|row| (row.user, row)))
        .collect::<Result<_, _>>()?;
    let lifetime = settings.code_validity_ms();
    // One group per user: a status and its audit entry are written together.
    let mut groups: Vec<Vec<RecordWrite>> = Vec::new();
    let mut done = Refreshed::default();
    for user in store.list_users()? {
        let clear = || status_row(signer, user.id.0, Status::Clear, now.0, now.0 + lifetime, now);
        let before = groups.len();
        match rows.get(&user.id.0) {
            None => groups.push(vec![status_write(&clear())]),
            Some(row) if row.status == Status::Exposed && row.valid_until <= now.0 => {
                groups.push(vec![
                    status_write(&clear()),
                    audit(
                        now,
                        SYSTEM,
                        "exposure.status.expire",
                        Some(user.id.0),
                        &json!({
                            "was": row.status, "since": Timestamp(row.since).to_string(),
                            "valid_until": Timestamp(row.valid_until).to_string(),
                        }),
                    ),
                ]);
                done.changed.push(user.id);
            }
            Some(row) if row.status == Status::Clear && row.valid_until - now.0 < lifetime / 2 => {
                groups.push(vec![status_write(&StatusRow { since: row.since, ..clear() })]);
            }
            Some(_) => {}
        }
        if groups.len() > before {
            done.written.push(user.id);
        }
    }
    // A transaction per thousand users keeps each one short.
    for chunk in groups.chunks(1_000) {
        store.write_records(&chunk.concat())?;
    }
    Ok(done)
}

//! The workflow end to end on a store, without HTTP: a case marked, the
//! batch, rules, a decision, the signed status, late points, expiry,
//! withdrawal and retention. In-memory SQLite, or PostgreSQL with
//! `POLO_TEST_BACKEND=postgres` (`.ci/run` runs both).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use polo_exposure::batch::step;
use polo_exposure::model::{ProposalState, Status};
use polo_exposure::settings::Settings;
use polo_exposure::signing::{Signer, verify};
use polo_exposure::{windows, workflow};
use polo_store::{AuditQuery, Store, User};
use polo_test_support::TestStore;

const DAY: i64 = 86_400_000;
const MINUTE: i64 = 60_000;
/// 2024-05-01T00:00:00Z.
const D: i64 = 1_714_521_600_000;

fn settings(auto_apply: bool) -> Settings {
    Settings { enabled: true, completion_delay_hours: 0.0, auto_apply, ..Settings::default() }
}

/// `minutes` fixes a minute apart from `start`, at `(lat, lon)`.
fn walk(store: &dyn Store, user: &User, start: i64, minutes: i64, lat: f64, lon: f64) {
    let device = store.ensure_device(user.id, "phone").unwrap();
    let fixes: Vec<Fix> = (0..minutes)
        .map(|i| Fix::new(Timestamp(start + i * MINUTE), Coord::from_degrees(lat, lon).unwrap(), SourceFormat::Api))
        .collect();
    store.insert_points(user.id, device.id, &fixes).unwrap();
}

struct World {
    backend: TestStore,
    ha: User,
    carol: User,
    bob: User,
    dave: User,
}

/// Carol (the case) and Bob share 30 minutes at a café on day D; Dave is 5 km away.
fn world() -> World {
    let backend = TestStore::new();
    let store = &*backend.store;
    let ha = store.create_user("ha", "h", false).unwrap();
    let carol = store.create_user("carol", "h", false).unwrap();
    let bob = store.create_user("bob", "h", false).unwrap();
    let dave = store.create_user("dave", "h", false).unwrap();
    let cafe = (48.8566, 2.3522);
    walk(store, &carol, D + 10 * 60 * MINUTE, 30, cafe.0, cafe.1);
    walk(store, &bob, D + 10 * 60 * MINUTE, 30, cafe.0 + 0.0001, cafe.1);
    walk(store, &dave, D + 10 * 60 * MINUTE, 30, cafe.0 + 0.05, cafe.1);
    World { backend, ha, carol, bob, dave }
}

#[test]
fn a_case_its_contacts_a_decision_and_the_signed_status() {
    let w = world();
    let store: &dyn Store = &*w.backend.store;
    let settings = settings(false);
    let now = Timestamp(D + 3 * DAY);
    let signer = Signer::load_or_create(store, now).unwrap();
    let case = workflow::mark_case(store, &w.ha, &w.carol, Timestamp(D), Timestamp(D + 2 * DAY), "positive test", now)
        .unwrap();

    let first = step(store, &signer, &settings, now, 100, true).unwrap();
    assert_eq!((first.planned.enqueued, first.windows), (2, 2), "{first:?}");
    let contacts = workflow::contacts_of(store, &case.id).unwrap();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    // From the first pair (10:00) to the last (10:29).
    assert_eq!((contacts[0].contact, contacts[0].minutes), (w.bob.id.0, 29));
    assert!(contacts[0].min_distance_m < 25.0);
    let pending = workflow::proposals(store, Some(ProposalState::Pending)).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].contact, w.bob.id.0);
    assert!(first.notify.is_empty(), "nothing applied without the authority");
    // Everybody has a clear status now.
    for user in [&w.carol, &w.bob, &w.dave] {
        assert_eq!(workflow::status(store, user.id).unwrap().unwrap().status, Status::Clear);
    }

    // Idempotent: a second run computes nothing and writes nothing new.
    let again = step(store, &signer, &settings, now, 100, false).unwrap();
    assert_eq!((again.windows, again.changed_pairs), (0, 0));

    let decided =
        workflow::decide(store, &signer, &settings, &w.ha, &case.id, w.bob.id.0, true, "29 min indoors", now).unwrap();
    assert_eq!(decided.state, ProposalState::Approved);
    let row = workflow::status(store, w.bob.id).unwrap().unwrap();
    assert_eq!(row.status, Status::Exposed);
    assert_eq!(row.valid_until, now.0 + 14 * DAY);
    let claim = verify(signer.public_key(), &row.code).unwrap();
    assert_eq!((claim.user, claim.status, claim.valid_until), (w.bob.id.0, Status::Exposed, row.valid_until));
    assert_eq!(workflow::status(store, w.dave.id).unwrap().unwrap().status, Status::Clear, "others see nothing");
    let again = workflow::decide(store, &signer, &settings, &w.ha, &case.id, w.bob.id.0, false, "no", now);
    assert!(matches!(again, Err(polo_exposure::ExposureError::Conflict(_))), "decided once");

    let audit = store
        .audit_log(&AuditQuery { subject: Some(w.bob.id), before_id: None, limit: 10, ..AuditQuery::default() })
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["exposure.proposal.approve", "exposure.proposal.create"]);
    assert_eq!(audit[0].actor, "ha");
    let detail: serde_json::Value = serde_json::from_str(&audit[0].detail).unwrap();
    assert_eq!(detail["reason"], "29 min indoors");
    assert_eq!(detail["evidence"]["minutes"], 29);

    // A late point: Dave's phone was offline and now sends a minute at the café.
    walk(store, &w.dave, D + 10 * 60 * MINUTE + 5 * MINUTE + 30_000, 1, 48.8566, 2.3522);
    let bob_before = store.records(&polo_store::RecordQuery::kind(polo_exposure::model::CONTACT)).unwrap();
    let late = step(store, &signer, &settings, Timestamp(now.0 + MINUTE), 100, false).unwrap();
    assert_eq!((late.planned.requeued, late.windows), (1, 1), "only day D is computed again: {late:?}");
    let contacts = workflow::contacts_of(store, &case.id).unwrap();
    assert_eq!(
        contacts.iter().map(|c| (c.contact, c.minutes)).collect::<Vec<_>>(),
        [(w.bob.id.0, 29), (w.dave.id.0, 9)]
    );
    let after = store.records(&polo_store::RecordQuery::kind(polo_exposure::model::CONTACT)).unwrap();
    assert!(after.contains(&bob_before[0]), "Bob's contact is untouched: results change only where data changed");
    assert!(
        workflow::proposals(store, Some(ProposalState::Pending)).unwrap().is_empty(),
        "9 minutes are under the rule"
    );
    assert_eq!(windows::queue_stats(store).unwrap().depth, 0);

    // The status expires after its validity.
    let later = Timestamp(now.0 + 15 * DAY);
    let refreshed = workflow::refresh_statuses(store, &signer, &settings, later).unwrap();
    assert_eq!(refreshed.changed, vec![w.bob.id]);
    assert!(refreshed.written.contains(&w.bob.id), "{refreshed:?}");
    assert_eq!(workflow::status(store, w.bob.id).unwrap().unwrap().status, Status::Clear);
    let expired = store
        .audit_log(&AuditQuery { subject: Some(w.bob.id), before_id: None, limit: 1, ..AuditQuery::default() })
        .unwrap();
    assert_eq!(expired[0].action, "exposure.status.expire");

    // Withdrawn: its contacts go.
    workflow::withdraw_case(store, &w.ha, &case.id, "false positive", later).unwrap();
    assert!(workflow::contacts_of(store, &case.id).unwrap().is_empty());

    // Retention: everything older than the period goes, the audit log included.
    let far = Timestamp(D + 100 * DAY);
    polo_exposure::retention::purge(store, &settings, far).unwrap();
    assert!(workflow::cases(store).unwrap().is_empty());
    assert!(workflow::proposals(store, None).unwrap().is_empty());
    assert!(windows::windows(store).unwrap().is_empty());
    assert!(
        store
            .audit_log(&AuditQuery { subject: None, before_id: None, limit: 10, ..AuditQuery::default() })
            .unwrap()
            .is_empty()
    );
    let after_retention = step(store, &signer, &settings, far, 100, false).unwrap();
    assert_eq!(after_retention.planned.enqueued, 0, "no window older than the period is queued again");
}

#[test]
fn auto_apply_decides_at_once_and_says_so() {
    let w = world();
    let store: &dyn Store = &*w.backend.store;
    let settings = settings(true);
    let now = Timestamp(D + 3 * DAY);
    let signer = Signer::load_or_create(store, now).unwrap();
    workflow::mark_case(store, &w.ha, &w.carol, Timestamp(D), Timestamp(D + DAY), "", now).unwrap();
    let ran = step(store, &signer, &settings, now, 100, true).unwrap();
    assert_eq!(ran.notify, vec![w.bob.id]);
    assert_eq!(workflow::status(store, w.bob.id).unwrap().unwrap().status, Status::Exposed);
    let audit = store
        .audit_log(&AuditQuery { subject: Some(w.bob.id), before_id: None, limit: 10, ..AuditQuery::default() })
        .unwrap();
    assert_eq!((audit[0].actor.as_str(), audit[0].action.as_str()), ("system", "exposure.proposal.apply"));
}

#[test]
fn windows_wait_for_the_watermark_and_cases_are_checked() {
    let w = world();
    let store: &dyn Store = &*w.backend.store;
    let settings = Settings { completion_delay_hours: 6.0, ..settings(false) };
    let signer = Signer::load_or_create(store, Timestamp(D)).unwrap();
    let marked = Timestamp(D + DAY + 5 * 60 * MINUTE);
    workflow::mark_case(store, &w.ha, &w.carol, Timestamp(D), Timestamp(D + 2 * DAY), "", marked).unwrap();
    // Day D ended 5 hours ago: not complete under a 6-hour delay.
    assert_eq!(step(store, &signer, &settings, marked, 100, false).unwrap().windows, 0);
    let complete = Timestamp(D + DAY + 6 * 60 * MINUTE);
    assert_eq!(step(store, &signer, &settings, complete, 100, false).unwrap().windows, 1);

    for (from, to, why) in [
        (D, D, "must end after it starts"),
        (D, D + 61 * DAY, "at most 60 days"),
        (D + 10 * DAY, D + 11 * DAY, "cannot start in the future"),
    ] {
        let e = workflow::mark_case(store, &w.ha, &w.bob, Timestamp(from), Timestamp(to), "", complete).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
}

/// Carol and Bob meet twice on day D, ten minutes at 08:00 and ten at 18:00: the window's contact is
/// both encounters (18 minutes, 2 × 80 pairs), which meets the 15-minute rule; either alone would not.
#[test]
fn two_encounters_in_one_window_add_up() {
    let backend = TestStore::new();
    let store: &dyn Store = &*backend.store;
    let ha = store.create_user("ha", "h", false).unwrap();
    let carol = store.create_user("carol", "h", false).unwrap();
    let bob = store.create_user("bob", "h", false).unwrap();
    for hour in [8, 18] {
        walk(store, &carol, D + hour * 60 * MINUTE, 10, 48.8566, 2.3522);
        walk(store, &bob, D + hour * 60 * MINUTE, 10, 48.8567, 2.3522);
    }
    let now = Timestamp(D + 2 * DAY);
    let signer = Signer::load_or_create(store, now).unwrap();
    let case = workflow::mark_case(store, &ha, &carol, Timestamp(D), Timestamp(D + DAY), "", now).unwrap();
    step(store, &signer, &settings(false), now, 100, true).unwrap();
    let contacts = workflow::contacts_of(store, &case.id).unwrap();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    let c = &contacts[0];
    assert_eq!((c.contact, c.minutes, c.pairs), (bob.id.0, 18, 160), "{c:?}");
    assert_eq!((c.first, c.last), (D + 8 * 60 * MINUTE, D + 18 * 60 * MINUTE + 9 * MINUTE));
    let pending = workflow::proposals(store, Some(ProposalState::Pending)).unwrap();
    assert_eq!(pending.len(), 1, "18 minutes meet the rule: {pending:?}");
    assert_eq!(pending[0].evidence.minutes, 18);
}

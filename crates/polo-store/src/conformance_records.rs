//! Conformance tests for roles, instance records and the audit log
//! ([`crate::records`]).

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use polo_domain::{Timestamp, UserId};

use crate::{AuditEntry, AuditQuery, Record, RecordQuery, RecordWrite, Role, Store, StoreError};

/// The tests of this module, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("roles_are_set_listed_and_cleared", roles_are_set_listed_and_cleared),
    ("records_put_insert_query_and_delete", records_put_insert_query_and_delete),
    ("records_are_taken_once", records_are_taken_once),
    ("audit_log_appends_pages_and_forgets", audit_log_appends_pages_and_forgets),
    ("audit_log_filters", audit_log_filters),
    ("admin_role_is_set_and_cleared", admin_role_is_set_and_cleared),
    ("deleting_a_user_deletes_their_records", deleting_a_user_deletes_their_records),
];

fn rec(kind: &str, key: &str, user: Option<UserId>, at: i64, body: &str) -> Record {
    Record { kind: kind.to_owned(), key: key.to_owned(), user, at: Timestamp(at), body: body.to_owned() }
}

fn keys(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.key.as_str()).collect()
}

/// A role is kept on the user, listed by id, taken away, and refused for an
/// unknown user; a write that changes roles appends no change.
pub fn roles_are_set_listed_and_cleared(store: &dyn Store) {
    let admin = store.create_user("admin", "h", true).unwrap();
    let ha = store.create_user("ha", "h", false).unwrap();
    let seq = store.last_seq().unwrap();
    assert_eq!(store.user_role(ha.id).unwrap(), None);
    store.set_user_role(ha.id, Some(Role::HealthAuthority)).unwrap();
    assert_eq!(store.user_role(ha.id).unwrap(), Some(Role::HealthAuthority));
    assert_eq!(store.user_roles().unwrap(), vec![(ha.id, Role::HealthAuthority)]);
    assert_eq!(store.user_role(admin.id).unwrap(), None, "admin is not a role of this kind");
    assert!(matches!(store.set_user_role(UserId(9_999), Some(Role::HealthAuthority)), Err(StoreError::NotFound(_))));
    assert_eq!(store.user_role(UserId(9_999)).unwrap(), None);
    store.set_user_role(ha.id, None).unwrap();
    assert_eq!(store.user_roles().unwrap(), vec![]);
    assert_eq!(store.last_seq().unwrap(), seq, "roles are local to the instance");
}

/// Put replaces, Insert keeps the stored record, queries filter by kind,
/// key prefix (no wildcards) and user in byte order, deletes by key, prefix
/// and time; a batch naming an unknown user stores nothing.
pub fn records_put_insert_query_and_delete(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap();
    let b = store.create_user("b", "h", false).unwrap();
    let seq = store.last_seq().unwrap();
    store
        .write_records(&[
            RecordWrite::Put(rec("k", "w/2/x", Some(a.id), 20, "1")),
            RecordWrite::Put(rec("k", "w/1/x", Some(b.id), 10, "2")),
            RecordWrite::Put(rec("k", "w/1/y", Some(a.id), 10, "3")),
            RecordWrite::Put(rec("k", "w_1", None, 30, "4")),
            RecordWrite::Put(rec("k", "W/1", None, 30, "5")),
            RecordWrite::Put(rec("other", "w/1/x", None, 5, "6")),
        ])
        .unwrap();
    assert_eq!(store.last_seq().unwrap(), seq, "records are local to the instance");
    let all = store.records(&RecordQuery::kind("k")).unwrap();
    assert_eq!(keys(&all), ["W/1", "w/1/x", "w/1/y", "w/2/x", "w_1"], "byte order");
    assert_eq!(keys(&store.records(&RecordQuery::kind("k").prefix("w/1/")).unwrap()), ["w/1/x", "w/1/y"]);
    assert_eq!(keys(&store.records(&RecordQuery::kind("k").prefix("w_")).unwrap()), ["w_1"], "_ is no wildcard");
    assert_eq!(keys(&store.records(&RecordQuery::kind("k").prefix("w%")).unwrap()), Vec::<&str>::new());
    assert_eq!(keys(&store.records(&RecordQuery::kind("k").user(a.id)).unwrap()), ["w/1/y", "w/2/x"]);
    let mut limited = RecordQuery::kind("k");
    limited.limit = Some(2);
    assert_eq!(keys(&store.records(&limited).unwrap()), ["W/1", "w/1/x"]);
    assert_eq!(store.record("k", "w/1/x").unwrap(), Some(rec("k", "w/1/x", Some(b.id), 10, "2")));
    assert_eq!(store.record("k", "nope").unwrap(), None);

    store
        .write_records(&[
            RecordWrite::Put(rec("k", "w/1/x", Some(a.id), 11, "replaced")),
            RecordWrite::Insert(rec("k", "w/1/y", None, 99, "kept?")),
            RecordWrite::Insert(rec("k", "new", None, 1, "inserted")),
        ])
        .unwrap();
    assert_eq!(store.record("k", "w/1/x").unwrap(), Some(rec("k", "w/1/x", Some(a.id), 11, "replaced")));
    assert_eq!(store.record("k", "w/1/y").unwrap().unwrap().body, "3", "insert keeps what is stored");
    assert_eq!(store.record("k", "new").unwrap().unwrap().body, "inserted");

    let unknown = store.write_records(&[
        RecordWrite::Put(rec("k", "lost", None, 1, "x")),
        RecordWrite::Put(rec("k", "ghost", Some(UserId(9_999)), 1, "x")),
    ]);
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
    assert_eq!(store.record("k", "lost").unwrap(), None, "nothing of a failed batch is stored");

    store
        .write_records(&[
            RecordWrite::DeletePrefix { kind: "k".into(), prefix: "w/1/".into() },
            RecordWrite::Delete { kind: "k".into(), key: "new".into() },
            RecordWrite::DeleteBefore { kind: "k".into(), before: Timestamp(30) },
        ])
        .unwrap();
    assert_eq!(keys(&store.records(&RecordQuery::kind("k")).unwrap()), ["W/1", "w_1"]);
    assert_eq!(keys(&store.records(&RecordQuery::kind("other")).unwrap()), ["w/1/x"], "other kinds are untouched");
}

/// A taken record is returned and gone; of several callers taking the same
/// record at once, exactly one gets it.
pub fn records_are_taken_once(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap();
    store
        .write_records(&[
            RecordWrite::Put(rec("once", "x", Some(a.id), 7, "body")),
            RecordWrite::Put(rec("other", "x", None, 7, "kept")),
        ])
        .unwrap();
    assert_eq!(store.take_record("once", "x").unwrap(), Some(rec("once", "x", Some(a.id), 7, "body")));
    assert_eq!(store.take_record("once", "x").unwrap(), None, "taken already");
    assert_eq!(store.record("once", "x").unwrap(), None);
    assert_eq!(store.take_record("once", "never").unwrap(), None);
    assert_eq!(store.record("other", "x").unwrap().unwrap().body, "kept", "other kinds are untouched");

    for round in 0..5 {
        let key = format!("race-{round}");
        store.write_records(&[RecordWrite::Put(rec("once", &key, None, 1, "prize"))]).unwrap();
        let winners = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..4).map(|_| scope.spawn(|| store.take_record("once", &key).unwrap())).collect();
            racers.into_iter().filter_map(|r| r.join().unwrap()).count()
        });
        assert_eq!(winners, 1, "round {round}: one caller takes the record");
    }
}

/// Entries get increasing ids, are read newest first, by subject and in
/// pages, and are forgotten by age.
pub fn audit_log_appends_pages_and_forgets(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap();
    let entry = |at: i64, action: &str, subject: Option<UserId>| {
        RecordWrite::Audit(AuditEntry {
            id: 0,
            at: Timestamp(at),
            actor: "ha".to_owned(),
            action: action.to_owned(),
            subject,
            detail: format!("{{\"n\":{at}}}"),
        })
    };
    store.write_records(&[entry(10, "one", Some(a.id)), entry(20, "two", None)]).unwrap();
    store.write_records(&[entry(30, "three", Some(a.id))]).unwrap();
    let all =
        store.audit_log(&AuditQuery { subject: None, before_id: None, limit: 10, ..AuditQuery::default() }).unwrap();
    assert_eq!(all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["three", "two", "one"]);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    assert_eq!(all[0].detail, "{\"n\":30}");
    assert_eq!((all[0].actor.as_str(), all[0].subject, all[0].at), ("ha", Some(a.id), Timestamp(30)));
    let of_a = store
        .audit_log(&AuditQuery { subject: Some(a.id), before_id: None, limit: 10, ..AuditQuery::default() })
        .unwrap();
    assert_eq!(of_a.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["three", "one"]);
    let page = store
        .audit_log(&AuditQuery { subject: None, before_id: Some(all[0].id), limit: 1, ..AuditQuery::default() })
        .unwrap();
    assert_eq!(page.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["two"]);
    store.write_records(&[RecordWrite::AuditBefore(Timestamp(20))]).unwrap();
    let left =
        store.audit_log(&AuditQuery { subject: None, before_id: None, limit: 10, ..AuditQuery::default() }).unwrap();
    assert_eq!(left.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["three", "two"]);
}

/// Audit entries are filtered by action prefix (literally: `_` and `%` are
/// no wildcards), actor and time, together with subject and paging.
pub fn audit_log_filters(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap();
    let entry = |at: i64, actor: &str, action: &str, subject: Option<UserId>| {
        RecordWrite::Audit(AuditEntry {
            id: 0,
            at: Timestamp(at),
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject,
            detail: "{}".to_owned(),
        })
    };
    store
        .write_records(&[
            entry(10, "a", "auth.login", Some(a.id)),
            entry(20, "a", "auth.login_failed", Some(a.id)),
            entry(30, "root", "admin.user.create", Some(a.id)),
            entry(40, "root", "auth_x.other", None),
            entry(50, "system", "auth.totp.enable", None),
        ])
        .unwrap();
    let actions = |q: AuditQuery| {
        let got = store.audit_log(&q).unwrap();
        assert!(got.iter().all(|e| q.matches(e)), "the backend returned entries its query does not match");
        got.into_iter().map(|e| e.action).collect::<Vec<_>>()
    };
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut query = AuditQuery::newest(10);
        f(&mut query);
        query
    };
    assert_eq!(
        actions(q(&|q| q.action_prefix = Some("auth.".into()))),
        ["auth.totp.enable", "auth.login_failed", "auth.login"]
    );
    assert_eq!(actions(q(&|q| q.action_prefix = Some("auth_".into()))), ["auth_x.other"], "_ is literal");
    assert!(actions(q(&|q| q.action_prefix = Some("auth%".into()))).is_empty(), "% is literal");
    assert_eq!(actions(q(&|q| q.actor = Some("root".into()))), ["auth_x.other", "admin.user.create"]);
    assert_eq!(
        actions(q(&|q| {
            q.since = Some(Timestamp(20));
            q.until = Some(Timestamp(40));
        })),
        ["admin.user.create", "auth.login_failed"]
    );
    assert_eq!(
        actions(q(&|q| {
            q.subject = Some(a.id);
            q.action_prefix = Some("auth.".into());
            q.limit = 1;
        })),
        ["auth.login_failed"]
    );
    assert!(actions(q(&|q| q.actor = Some("nobody".into()))).is_empty());
    // Deleting by age and action prefix spares other actions and newer entries.
    store.write_records(&[RecordWrite::AuditActionBefore { prefix: "auth.".into(), before: Timestamp(50) }]).unwrap();
    assert_eq!(actions(AuditQuery::newest(10)), ["auth.totp.enable", "auth_x.other", "admin.user.create"]);
}

/// The administrator role is given and taken away; unknown users are not found.
pub fn admin_role_is_set_and_cleared(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap();
    store.set_admin(a.id, true).unwrap();
    assert!(store.user_by_id(a.id).unwrap().unwrap().is_admin);
    store.set_admin(a.id, false).unwrap();
    assert!(!store.user_by_name("a").unwrap().unwrap().is_admin);
    assert!(matches!(store.set_admin(UserId(a.id.0 + 1000), true), Err(StoreError::NotFound(_))));
}

/// An account's records go with it (its audit entries stay: they record
/// what was decided); its role goes with the user row.
pub fn deleting_a_user_deletes_their_records(store: &dyn Store) {
    let _admin = store.create_user("admin", "h", true).unwrap();
    let a = store.create_user("a", "h", false).unwrap();
    let b = store.create_user("b", "h", false).unwrap();
    store.set_user_role(a.id, Some(Role::HealthAuthority)).unwrap();
    store
        .write_records(&[
            RecordWrite::Put(rec("k", "a", Some(a.id), 1, "")),
            RecordWrite::Put(rec("k", "b", Some(b.id), 1, "")),
            RecordWrite::Put(rec("k", "none", None, 1, "")),
            RecordWrite::Audit(AuditEntry {
                id: 0,
                at: Timestamp(1),
                actor: "ha".into(),
                action: "x".into(),
                subject: Some(a.id),
                detail: "{}".into(),
            }),
        ])
        .unwrap();
    store.delete_user(a.id).unwrap();
    assert_eq!(keys(&store.records(&RecordQuery::kind("k")).unwrap()), ["b", "none"]);
    assert_eq!(store.user_roles().unwrap(), vec![]);
    assert_eq!(
        store
            .audit_log(&AuditQuery { subject: Some(a.id), before_id: None, limit: 10, ..AuditQuery::default() })
            .unwrap()
            .len(),
        1
    );
}

//! Conformance tests for zones, their states, the event log and the webhook
//! outbox ([`crate::zones`]).

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use polo_domain::{DeviceId, Timestamp, UserId};

use crate::zones::{DEVICE_STATE, idempotency_key};
use crate::{DeliveryStatus, DeliveryUpdate, EventBatch, NewEvent, StateWrite, Store, StoreError, ZoneStateRow};

/// The tests of this module, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("zones_are_created_listed_updated_and_deleted", zones_are_created_listed_updated_and_deleted),
    ("zone_states_and_events_commit_together_and_events_once", zone_states_and_events_commit_together_and_events_once),
    (
        "the_outbox_offers_each_subscriptions_oldest_pending_delivery",
        the_outbox_offers_each_subscriptions_oldest_pending_delivery,
    ),
    (
        "updating_a_webhook_replaces_its_body_and_may_drop_its_pending_deliveries",
        updating_a_webhook_replaces_its_body_and_may_drop_its_pending_deliveries,
    ),
    (
        "deleting_a_user_deletes_their_zones_events_and_webhooks",
        deleting_a_user_deletes_their_zones_events_and_webhooks,
    ),
];

fn event(key: &str, at: i64, device: DeviceId, deliver_to: Vec<i64>) -> NewEvent {
    NewEvent {
        dedup_key: key.to_owned(),
        at: Timestamp(at),
        kind: "zone.enter".to_owned(),
        device,
        zone: Some(1),
        body: format!("{{\"key\":\"{key}\"}}"),
        deliver_to,
    }
}

fn batch(user: UserId, states: Vec<StateWrite>, events: Vec<NewEvent>) -> EventBatch {
    EventBatch { user, states, events, made: Timestamp(1_000) }
}

/// Zones get increasing ids that are never reused, are listed per user or
/// for the instance, updated and deleted only by their owner; an unknown
/// user gets none; nothing appends a change.
pub fn zones_are_created_listed_updated_and_deleted(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let seq = store.last_seq().unwrap();
    let z1 = store.create_zone(a, "{\"n\":1}", Timestamp(10)).unwrap();
    let z2 = store.create_zone(b, "{\"n\":2}", Timestamp(11)).unwrap();
    let z3 = store.create_zone(a, "{\"n\":3}", Timestamp(12)).unwrap();
    assert!(z1 < z2 && z2 < z3);
    assert!(matches!(store.create_zone(UserId(9_999), "{}", Timestamp(1)), Err(StoreError::NotFound(_))));
    let ids = |user| store.zones(user).unwrap().iter().map(|z| z.id).collect::<Vec<_>>();
    assert_eq!(ids(Some(a)), [z1, z3]);
    assert_eq!(ids(None), [z1, z2, z3]);
    assert!(!store.update_zone(b, z1, "{\"n\":9}", Timestamp(20)).unwrap(), "not b's zone");
    assert!(store.update_zone(a, z1, "{\"n\":9}", Timestamp(20)).unwrap());
    let z = store.zones(Some(a)).unwrap().remove(0);
    assert_eq!((z.body.as_str(), z.updated, z.user), ("{\"n\":9}", Timestamp(20), a));
    assert!(!store.delete_zone(b, z3).unwrap());
    assert!(store.delete_zone(a, z3).unwrap());
    assert!(!store.delete_zone(a, z3).unwrap());
    let z4 = store.create_zone(a, "{}", Timestamp(30)).unwrap();
    assert!(z4 > z3, "ids are not reused");
    assert_eq!(store.last_seq().unwrap(), seq, "zones are local to the instance");
}

/// States are put, replaced and deleted per (device, zone) in the same
/// transaction as the events; an event whose key the user's log has is
/// skipped (`None`, no deliveries); the log reads from a cursor; deleting
/// a zone forgets its states.
pub fn zone_states_and_events_commit_together_and_events_once(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let phone = store.ensure_device(a, "phone").unwrap().id;
    let zone = store.create_zone(a, "{}", Timestamp(1)).unwrap();
    let put = |zone, body: &str| StateWrite::Put(ZoneStateRow { device: phone, zone, body: body.to_owned() });
    let ids = store
        .commit_events(&batch(
            a,
            vec![put(zone, "s1"), put(DEVICE_STATE, "d1")],
            vec![event("k1", 100, phone, vec![]), event("k2", 200, phone, vec![])],
        ))
        .unwrap();
    assert!(ids[0].is_some() && ids[1].is_some() && ids[0] < ids[1]);
    let states = store.zone_states(a, phone).unwrap();
    assert_eq!(
        states.iter().map(|s| (s.zone, s.body.as_str())).collect::<Vec<_>>(),
        [(DEVICE_STATE, "d1"), (zone, "s1")]
    );
    // The same key again is skipped; another user may use it.
    let again = store
        .commit_events(&batch(
            a,
            vec![put(zone, "s2")],
            vec![event("k2", 200, phone, vec![]), event("k3", 300, phone, vec![])],
        ))
        .unwrap();
    assert_eq!(again[0], None);
    assert!(again[1] > ids[1]);
    let theirs = store.commit_events(&batch(b, vec![], vec![event("k2", 200, DeviceId(77), vec![])])).unwrap();
    assert!(theirs[0].is_some());
    let log = store.events(a, 0, 10).unwrap();
    assert_eq!(
        log.iter().map(|e| e.body.as_str()).collect::<Vec<_>>(),
        ["{\"key\":\"k1\"}", "{\"key\":\"k2\"}", "{\"key\":\"k3\"}"]
    );
    assert_eq!(
        (log[0].at, log[0].kind.as_str(), log[0].device, log[0].zone, log[0].user),
        (Timestamp(100), "zone.enter", phone, Some(1), a)
    );
    assert_eq!(store.events(a, log[0].id, 1).unwrap(), vec![log[1].clone()]);
    assert_eq!(store.events(a, log[2].id, 10).unwrap(), vec![]);
    assert_eq!(store.zone_states(a, phone).unwrap()[1].body, "s2");
    // A failing batch (an unknown user's webhook is simply not delivered to) stores its states…
    store.commit_events(&batch(a, vec![StateWrite::Delete { device: phone, zone: DEVICE_STATE }], vec![])).unwrap();
    assert_eq!(store.zone_states(a, phone).unwrap().len(), 1);
    assert!(store.delete_zone(a, zone).unwrap());
    assert_eq!(store.zone_states(a, phone).unwrap(), vec![], "a deleted zone's states go with it");
    assert_eq!(store.events(a, 0, 10).unwrap().len(), 3, "its events stay in the log");
}

/// Deliveries are queued with their events, keyed once; the outbox offers
/// only each subscription's oldest pending delivery, when due; an attempt
/// is recorded once (a second recording of the same attempt is refused);
/// retries keep the key; a dead delivery lets the next one through; the
/// log pages newest first; deleting a subscription takes its deliveries.
pub fn the_outbox_offers_each_subscriptions_oldest_pending_delivery(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let phone = store.ensure_device(a, "phone").unwrap().id;
    assert!(matches!(store.create_webhook(UserId(9_999), "{}", "s", Timestamp(1)), Err(StoreError::NotFound(_))));
    let w1 = store.create_webhook(a, "{\"url\":1}", "secret1", Timestamp(1)).unwrap();
    let w2 = store.create_webhook(a, "{\"url\":2}", "secret2", Timestamp(2)).unwrap();
    let listed = store.webhooks(Some(a)).unwrap();
    assert_eq!(
        listed.iter().map(|w| (w.id, w.secret.as_str())).collect::<Vec<_>>(),
        [(w1, "secret1"), (w2, "secret2")]
    );
    assert_eq!(store.webhooks(None).unwrap().len(), 2);
    let ids = store
        .commit_events(&batch(
            a,
            vec![],
            vec![
                event("e1", 100, phone, vec![w1, w2]),
                event("e2", 200, phone, vec![w1]),
                event("e3", 300, phone, vec![w1, 9_999]),
            ],
        ))
        .unwrap();
    let (e1, e2, e3) = (ids[0].unwrap(), ids[1].unwrap(), ids[2].unwrap());
    assert_eq!(store.due_deliveries(Timestamp(999), 10).unwrap(), vec![], "not due before the batch was made");
    let due = store.due_deliveries(Timestamp(1_000), 10).unwrap();
    let heads: Vec<_> = due.iter().map(|d| (d.webhook.id, d.event.id)).collect();
    assert_eq!(heads.len(), 2);
    assert!(heads.contains(&(w1, e1)) && heads.contains(&(w2, e1)), "{heads:?}");
    let d1 = due.iter().find(|d| d.webhook.id == w1).unwrap().clone();
    assert_eq!(d1.delivery.key, idempotency_key(a, e1, w1));
    assert_eq!((d1.delivery.status, d1.delivery.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!((d1.webhook.secret.as_str(), d1.event.body.as_str()), ("secret1", "{\"key\":\"e1\"}"));
    // A failed attempt: due again later; nothing behind it passes meanwhile.
    let failed = DeliveryUpdate {
        user: a,
        id: d1.delivery.id,
        attempts_before: 0,
        status: DeliveryStatus::Pending,
        attempts: 1,
        next_attempt: Timestamp(5_000),
        last_status: Some(503),
        last_error: Some("unavailable".to_owned()),
        at: Timestamp(1_000),
    };
    assert!(store.update_delivery(&failed).unwrap());
    assert!(!store.update_delivery(&failed).unwrap(), "the same attempt is recorded once");
    let due: Vec<_> = store.due_deliveries(Timestamp(2_000), 10).unwrap().iter().map(|d| d.webhook.id).collect();
    assert_eq!(due, [w2]);
    let retry = store.due_deliveries(Timestamp(5_000), 10).unwrap().into_iter().find(|d| d.webhook.id == w1).unwrap();
    assert_eq!(
        (retry.delivery.id, retry.delivery.attempts, retry.delivery.last_status),
        (d1.delivery.id, 1, Some(503))
    );
    assert_eq!(retry.delivery.key, d1.delivery.key, "the same key on every retry");
    let done = |id, attempts_before, status| DeliveryUpdate {
        attempts_before,
        attempts: attempts_before + 1,
        status,
        id,
        last_status: Some(200),
        last_error: None,
        at: Timestamp(6_000),
        next_attempt: Timestamp(6_000),
        ..failed.clone()
    };
    assert!(store.update_delivery(&done(d1.delivery.id, 1, DeliveryStatus::Delivered)).unwrap());
    let next = store.due_deliveries(Timestamp(6_000), 10).unwrap().into_iter().find(|d| d.webhook.id == w1).unwrap();
    assert_eq!(next.event.id, e2, "in event order");
    assert!(store.update_delivery(&done(next.delivery.id, 0, DeliveryStatus::Dead)).unwrap());
    let next = store.due_deliveries(Timestamp(6_000), 10).unwrap().into_iter().find(|d| d.webhook.id == w1).unwrap();
    assert_eq!(next.event.id, e3, "a dead letter lets the next one through");
    assert_eq!(store.due_deliveries(Timestamp(6_000), 1).unwrap().len(), 1, "the limit holds");
    let log = store.deliveries(a, w1, None, 10).unwrap();
    assert_eq!(
        log.iter().map(|d| (d.event, d.status)).collect::<Vec<_>>(),
        [(e3, DeliveryStatus::Pending), (e2, DeliveryStatus::Dead), (e1, DeliveryStatus::Delivered)],
        "no delivery to an unknown subscription"
    );
    assert_eq!(store.deliveries(a, w1, Some(log[0].id), 1).unwrap(), vec![log[1].clone()]);
    assert!(store.delete_webhook(a, w1).unwrap());
    assert!(!store.delete_webhook(a, w1).unwrap());
    assert_eq!(store.deliveries(a, w1, None, 10).unwrap(), vec![]);
    assert!(store.due_deliveries(Timestamp(6_000), 10).unwrap().iter().all(|d| d.webhook.id == w2));
}

/// Updating a subscription replaces its body, only for its owner; with
/// `drop_pending` its pending deliveries end dead with the reason (their
/// attempts and the finished ones untouched), and nothing of it is due.
pub fn updating_a_webhook_replaces_its_body_and_may_drop_its_pending_deliveries(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let phone = store.ensure_device(a, "phone").unwrap().id;
    let w1 = store.create_webhook(a, "{\"url\":1}", "s1", Timestamp(1)).unwrap();
    let w2 = store.create_webhook(a, "{\"url\":2}", "s2", Timestamp(1)).unwrap();
    let ids = store
        .commit_events(&batch(
            a,
            vec![],
            vec![
                event("e1", 100, phone, vec![w1, w2]),
                event("e2", 200, phone, vec![w1]),
                event("e3", 300, phone, vec![w1]),
            ],
        ))
        .unwrap();
    let head = store.due_deliveries(Timestamp(1_000), 10).unwrap().into_iter().find(|d| d.webhook.id == w1).unwrap();
    let delivered = DeliveryUpdate {
        user: a,
        id: head.delivery.id,
        attempts_before: 0,
        status: DeliveryStatus::Delivered,
        attempts: 1,
        next_attempt: Timestamp(1_000),
        last_status: Some(200),
        last_error: None,
        at: Timestamp(1_000),
    };
    assert!(store.update_delivery(&delivered).unwrap());
    assert!(!store.update_webhook(b, w1, "{\"url\":9}", None, Timestamp(2_000)).unwrap(), "not b's");
    assert!(!store.update_webhook(a, 9_999, "{}", None, Timestamp(2_000)).unwrap());
    assert!(store.update_webhook(a, w1, "{\"url\":3}", None, Timestamp(2_000)).unwrap());
    let row = store.webhooks(Some(a)).unwrap().into_iter().find(|w| w.id == w1).unwrap();
    assert_eq!((row.body.as_str(), row.secret.as_str()), ("{\"url\":3}", "s1"));
    assert_eq!(
        store.deliveries(a, w1, None, 10).unwrap().iter().filter(|d| d.status == DeliveryStatus::Pending).count(),
        2
    );
    assert!(store.update_webhook(a, w1, "{\"url\":4}", Some("dropped"), Timestamp(3_000)).unwrap());
    let log = store.deliveries(a, w1, None, 10).unwrap();
    assert_eq!(
        log.iter().map(|d| (d.event, d.status, d.attempts, d.last_error.as_deref())).collect::<Vec<_>>(),
        [
            (ids[2].unwrap(), DeliveryStatus::Dead, 0, Some("dropped")),
            (ids[1].unwrap(), DeliveryStatus::Dead, 0, Some("dropped")),
            (ids[0].unwrap(), DeliveryStatus::Delivered, 1, None),
        ]
    );
    let due: Vec<_> = store.due_deliveries(Timestamp(10_000), 10).unwrap().iter().map(|d| d.webhook.id).collect();
    assert_eq!(due, [w2], "the other subscription keeps its delivery");
}

/// Deleting an account deletes its zones, states, events, subscriptions and
/// deliveries, and nobody else's.
pub fn deleting_a_user_deletes_their_zones_events_and_webhooks(store: &dyn Store) {
    let _admin = store.create_user("admin", "h", true).unwrap();
    let mut made = Vec::new();
    for name in ["a", "b"] {
        let user = store.create_user(name, "h", false).unwrap().id;
        let phone = store.ensure_device(user, "phone").unwrap().id;
        let zone = store.create_zone(user, "{}", Timestamp(1)).unwrap();
        let hook = store.create_webhook(user, "{}", "s", Timestamp(1)).unwrap();
        let state = StateWrite::Put(ZoneStateRow { device: phone, zone, body: "s".to_owned() });
        store.commit_events(&batch(user, vec![state], vec![event("e", 1, phone, vec![hook])])).unwrap();
        made.push((user, phone, hook));
    }
    let (a, a_phone, a_hook) = made[0];
    let (b, b_phone, b_hook) = made[1];
    store.delete_user(a).unwrap();
    assert_eq!(store.zones(Some(a)).unwrap(), vec![]);
    assert_eq!(store.zone_states(a, a_phone).unwrap(), vec![]);
    assert_eq!(store.events(a, 0, 10).unwrap(), vec![]);
    assert_eq!(store.webhooks(Some(a)).unwrap(), vec![]);
    assert_eq!(store.deliveries(a, a_hook, None, 10).unwrap(), vec![]);
    assert_eq!(store.zones(None).unwrap().len(), 1);
    assert_eq!(store.zone_states(b, b_phone).unwrap().len(), 1);
    assert_eq!(store.events(b, 0, 10).unwrap().len(), 1);
    assert_eq!(store.deliveries(b, b_hook, None, 10).unwrap().len(), 1);
    assert_eq!(store.due_deliveries(Timestamp(1_000), 10).unwrap().len(), 1);
}

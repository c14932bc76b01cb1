//! Zones, their states, the event log and the webhook outbox
//! ([`polo_store::zones`]), in per-user tables (distributed by `user_id`
//! under Citus; every statement but the outbox's due scan names the user).

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::zones::idempotency_key;
use polo_store::{
    Delivery, DeliveryStatus, DeliveryUpdate, DueDelivery, EventBatch, StateWrite, StoreError, StoreResult,
    StoredEvent, WebhookRow, ZoneRow, ZoneStateRow,
};
use postgres::Row;

use crate::PostgresStore;
use crate::auth::user_exists;
use crate::error::Db;

pub(crate) fn create_zone(store: &PostgresStore, user: UserId, body: &str, at: Timestamp) -> StoreResult<i64> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        let row = tx
            .query_one(
                "INSERT INTO zones (user_id, body, updated_ms) VALUES ($1, $2, $3) RETURNING id",
                &[&user.0, &body, &at.0],
            )
            .db()?;
        Ok(row.get(0))
    })
}

pub(crate) fn update_zone(
    store: &PostgresStore,
    user: UserId,
    id: i64,
    body: &str,
    at: Timestamp,
) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE zones SET body = $3, updated_ms = $4 WHERE user_id = $1 AND id = $2",
                &[&user.0, &id, &body, &at.0],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn delete_zone(store: &PostgresStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        let Some(row) =
            tx.query_opt("SELECT group_id FROM zones WHERE user_id = $1 AND id = $2", &[&user.0, &id]).db()?
        else {
            return Ok(false);
        };
        if row.get::<_, Option<i64>>(0).is_some() {
            // A group's zone has states of every member's devices, on their shards.
            tx.execute("DELETE FROM zone_states WHERE zone_id = $1", &[&id]).db()?;
        } else {
            tx.execute("DELETE FROM zone_states WHERE user_id = $1 AND zone_id = $2", &[&user.0, &id]).db()?;
        }
        Ok(tx.execute("DELETE FROM zones WHERE user_id = $1 AND id = $2", &[&user.0, &id]).db()? > 0)
    })
}

/// A [`ZoneRow`] from `id, user_id, group_id, body, updated_ms`.
pub(crate) fn zone_from_row(r: &Row) -> ZoneRow {
    ZoneRow { id: r.get(0), user: UserId(r.get(1)), group: r.get(2), body: r.get(3), updated: Timestamp(r.get(4)) }
}

pub(crate) fn zones(store: &PostgresStore, user: Option<UserId>) -> StoreResult<Vec<ZoneRow>> {
    store.read(|c| {
        // Two statements, not `$1 IS NULL OR user_id = $1`: a generic plan of that cannot use the
        // user index, so one user's zones would scan every zone of the instance.
        let rows = match user {
            Some(user) => c
                .query(
                    "SELECT id, user_id, group_id, body, updated_ms FROM zones WHERE user_id = $1 ORDER BY id",
                    &[&user.0],
                )
                .db()?,
            None => c.query("SELECT id, user_id, group_id, body, updated_ms FROM zones ORDER BY id", &[]).db()?,
        };
        Ok(rows.iter().map(zone_from_row).collect())
    })
}

pub(crate) fn zone_states(store: &PostgresStore, user: UserId, device: DeviceId) -> StoreResult<Vec<ZoneStateRow>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT zone_id, body FROM zone_states WHERE user_id = $1 AND device_id = $2 ORDER BY zone_id",
                &[&user.0, &device.0],
            )
            .db()?;
        Ok(rows.iter().map(|r| ZoneStateRow { device, zone: r.get(0), body: r.get(1) }).collect())
    })
}

pub(crate) fn commit_events(store: &PostgresStore, batch: &EventBatch) -> StoreResult<Vec<Option<i64>>> {
    let user = batch.user.0;
    store.write(|tx| {
        for write in &batch.states {
            match write {
                StateWrite::Put(row) => {
                    tx.execute(
                        "INSERT INTO zone_states (user_id, device_id, zone_id, body) VALUES ($1, $2, $3, $4) \
                         ON CONFLICT (user_id, device_id, zone_id) DO UPDATE SET body = excluded.body",
                        &[&user, &row.device.0, &row.zone, &row.body],
                    )
                    .db()?;
                }
                StateWrite::Delete { device, zone } => {
                    tx.execute(
                        "DELETE FROM zone_states WHERE user_id = $1 AND device_id = $2 AND zone_id = $3",
                        &[&user, &device.0, zone],
                    )
                    .db()?;
                }
            }
        }
        let mut ids = Vec::with_capacity(batch.events.len());
        for event in &batch.events {
            let row = tx
                .query_opt(
                    "INSERT INTO events (user_id, dedup_key, at_ms, kind, device_id, zone_id, body) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, dedup_key) DO NOTHING RETURNING id",
                    &[&user, &event.dedup_key, &event.at.0, &event.kind, &event.device.0, &event.zone, &event.body],
                )
                .db()?;
            let Some(row) = row else {
                ids.push(None);
                continue;
            };
            let id: i64 = row.get(0);
            for webhook in &event.deliver_to {
                tx.execute(
                    "INSERT INTO webhook_deliveries (user_id, webhook_id, event_id, idem_key, status, attempts, \
                     next_ms, updated_ms) SELECT $1, $2, $3, $4, 0, 0, $5, $5 \
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE user_id = $1 AND id = $2)",
                    &[&user, webhook, &id, &idempotency_key(batch.user, id, *webhook), &batch.made.0],
                )
                .db()?;
            }
            ids.push(Some(id));
        }
        Ok(ids)
    })
}

const EVENT_COLUMNS: &str = "e.id, e.user_id, e.at_ms, e.kind, e.device_id, e.zone_id, e.body";

fn event_from(r: &Row, at: usize) -> StoredEvent {
    StoredEvent {
        id: r.get(at),
        user: UserId(r.get(at + 1)),
        at: Timestamp(r.get(at + 2)),
        kind: r.get(at + 3),
        device: DeviceId(r.get(at + 4)),
        zone: r.get(at + 5),
        body: r.get(at + 6),
    }
}

pub(crate) fn events(store: &PostgresStore, user: UserId, after: i64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.read(|c| {
        let rows = c
            .query(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events e WHERE e.user_id = $1 AND e.id > $2 ORDER BY e.id LIMIT $3"
                ),
                &[&user.0, &after, &limit],
            )
            .db()?;
        Ok(rows.iter().map(|r| event_from(r, 0)).collect())
    })
}

pub(crate) fn create_webhook(
    store: &PostgresStore,
    user: UserId,
    body: &str,
    secret: &str,
    at: Timestamp,
) -> StoreResult<i64> {
    store.write(|tx| {
        if !user_exists(&mut **tx, user)? {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        let row = tx
            .query_one(
                "INSERT INTO webhooks (user_id, body, secret, created_ms) VALUES ($1, $2, $3, $4) RETURNING id",
                &[&user.0, &body, &secret, &at.0],
            )
            .db()?;
        Ok(row.get(0))
    })
}

const WEBHOOK_COLUMNS: &str = "w.id, w.user_id, w.body, w.secret, w.created_ms";

fn webhook_from(r: &Row, at: usize) -> WebhookRow {
    WebhookRow {
        id: r.get(at),
        user: UserId(r.get(at + 1)),
        body: r.get(at + 2),
        secret: r.get(at + 3),
        created: Timestamp(r.get(at + 4)),
    }
}

pub(crate) fn webhooks(store: &PostgresStore, user: Option<UserId>) -> StoreResult<Vec<WebhookRow>> {
    store.read(|c| {
        let rows = c
            .query(
                &format!(
                    "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE $1::BIGINT IS NULL OR w.user_id = $1 ORDER BY w.id"
                ),
                &[&user.map(|u| u.0)],
            )
            .db()?;
        Ok(rows.iter().map(|r| webhook_from(r, 0)).collect())
    })
}

pub(crate) fn delete_webhook(store: &PostgresStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        tx.execute("DELETE FROM webhook_deliveries WHERE user_id = $1 AND webhook_id = $2", &[&user.0, &id]).db()?;
        Ok(tx.execute("DELETE FROM webhooks WHERE user_id = $1 AND id = $2", &[&user.0, &id]).db()? > 0)
    })
}

pub(crate) fn update_webhook(
    store: &PostgresStore,
    user: UserId,
    id: i64,
    body: &str,
    drop_pending: Option<&str>,
    at: Timestamp,
) -> StoreResult<bool> {
    store.write(|tx| {
        let found =
            tx.execute("UPDATE webhooks SET body = $3 WHERE user_id = $1 AND id = $2", &[&user.0, &id, &body]).db()?
                > 0;
        if found && let Some(reason) = drop_pending {
            tx.execute(
                "UPDATE webhook_deliveries SET status = $3, next_ms = $4, last_status = NULL, last_error = $5, \
                 updated_ms = $4 WHERE user_id = $1 AND webhook_id = $2 AND status = 0",
                &[&user.0, &id, &DeliveryStatus::Dead.code(), &at.0, &reason],
            )
            .db()?;
        }
        Ok(found)
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.user_id, d.webhook_id, d.event_id, d.idem_key, d.status, d.attempts, \
                                d.next_ms, d.last_status, d.last_error, d.updated_ms";

fn delivery_from(r: &Row) -> StoreResult<Delivery> {
    let attempts: i32 = r.get(6);
    let last_status: Option<i32> = r.get(8);
    Ok(Delivery {
        id: r.get(0),
        user: UserId(r.get(1)),
        webhook: r.get(2),
        event: r.get(3),
        key: r.get(4),
        status: DeliveryStatus::from_code(r.get(5))?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt(format!("{attempts} attempts")))?,
        next_attempt: Timestamp(r.get(7)),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: r.get(9),
        updated: Timestamp(r.get(10)),
    })
}

pub(crate) fn due_deliveries(store: &PostgresStore, now: Timestamp, limit: usize) -> StoreResult<Vec<DueDelivery>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = store.read(|c| {
        c.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS}, {WEBHOOK_COLUMNS} \
                 FROM (SELECT user_id, webhook_id, min(id) AS id FROM webhook_deliveries WHERE status = 0 \
                       GROUP BY user_id, webhook_id) head \
                 JOIN webhook_deliveries d ON d.user_id = head.user_id AND d.id = head.id \
                 JOIN events e ON e.user_id = d.user_id AND e.id = d.event_id \
                 JOIN webhooks w ON w.user_id = d.user_id AND w.id = d.webhook_id \
                 WHERE d.next_ms <= $1 ORDER BY d.next_ms, d.id LIMIT $2"
            ),
            &[&now.0, &limit],
        )
        .db()
    })?;
    rows.iter()
        .map(|r| {
            Ok(DueDelivery { delivery: delivery_from(r)?, event: event_from(r, 11), webhook: webhook_from(r, 18) })
        })
        .collect()
}

pub(crate) fn update_delivery(store: &PostgresStore, update: &DeliveryUpdate) -> StoreResult<bool> {
    let to_i32 = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE webhook_deliveries SET status = $4, attempts = $5, next_ms = $6, last_status = $7, \
                 last_error = $8, updated_ms = $9 \
                 WHERE user_id = $1 AND id = $2 AND attempts = $3 AND status = 0",
                &[
                    &update.user.0,
                    &update.id,
                    &to_i32(update.attempts_before),
                    &update.status.code(),
                    &to_i32(update.attempts),
                    &update.next_attempt.0,
                    &update.last_status.map(i32::from),
                    &update.last_error,
                    &update.at.0,
                ],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn deliveries(
    store: &PostgresStore,
    user: UserId,
    webhook: i64,
    before: Option<i64>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = store.read(|c| {
        c.query(
            &format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d WHERE d.user_id = $1 AND d.webhook_id = $2 \
                 AND ($3::BIGINT IS NULL OR d.id < $3) ORDER BY d.id DESC LIMIT $4"
            ),
            &[&user.0, &webhook, &before, &limit],
        )
        .db()
    })?;
    rows.iter().map(delivery_from).collect()
}

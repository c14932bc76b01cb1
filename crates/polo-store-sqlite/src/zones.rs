//! Zones, their states, the event log and the webhook outbox
//! ([`polo_store::zones`]), in the tables of schema version 16 (a zone's group: version 17).

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::zones::idempotency_key;
use polo_store::{
    Delivery, DeliveryStatus, DeliveryUpdate, DueDelivery, EventBatch, StateWrite, StoreError, StoreResult,
    StoredEvent, WebhookRow, ZoneRow, ZoneStateRow,
};
use rusqlite::{Row, Transaction, params};

use crate::{Db, SqliteStore};

fn check_user(tx: &Transaction<'_>, user: UserId) -> StoreResult<()> {
    let known = tx.prepare_cached("SELECT 1 FROM users WHERE id = ?1").db()?.exists([user.0]).db()?;
    if known { Ok(()) } else { Err(StoreError::NotFound(format!("user {}", user.0))) }
}

pub(crate) fn create_zone(store: &SqliteStore, user: UserId, body: &str, at: Timestamp) -> StoreResult<i64> {
    store.write(|tx| {
        check_user(tx, user)?;
        tx.execute("INSERT INTO zones (user_id, body, updated_ms) VALUES (?1, ?2, ?3)", params![user.0, body, at.0])
            .db()?;
        Ok(tx.last_insert_rowid())
    })
}

pub(crate) fn update_zone(store: &SqliteStore, user: UserId, id: i64, body: &str, at: Timestamp) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE zones SET body = ?3, updated_ms = ?4 WHERE user_id = ?1 AND id = ?2",
                params![user.0, id, body, at.0],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn delete_zone(store: &SqliteStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        // A group's zone has states of every member's devices.
        tx.execute(
            "DELETE FROM zone_states WHERE zone_id = ?2 AND EXISTS (SELECT 1 FROM zones WHERE user_id = ?1 AND id = ?2)",
            params![user.0, id],
        )
        .db()?;
        Ok(tx.execute("DELETE FROM zones WHERE user_id = ?1 AND id = ?2", params![user.0, id]).db()? > 0)
    })
}

/// A [`ZoneRow`] from `id, user_id, group_id, body, updated_ms`.
pub(crate) fn zone_from_row(r: &Row<'_>) -> rusqlite::Result<ZoneRow> {
    Ok(ZoneRow {
        id: r.get(0)?,
        user: UserId(r.get(1)?),
        group: r.get(2)?,
        body: r.get(3)?,
        updated: Timestamp(r.get(4)?),
    })
}

pub(crate) fn zones(store: &SqliteStore, user: Option<UserId>) -> StoreResult<Vec<ZoneRow>> {
    store.read(|c| {
        // Two statements, not `?1 IS NULL OR user_id = ?1`: SQLite cannot use the user index for
        // that, so one user's zones would scan every zone of the instance.
        const COLUMNS: &str = "SELECT id, user_id, group_id, body, updated_ms FROM zones";
        match user {
            Some(user) => {
                let mut stmt = c.prepare_cached(&format!("{COLUMNS} WHERE user_id = ?1 ORDER BY id")).db()?;
                stmt.query_map([user.0], zone_from_row).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
            }
            None => {
                let mut stmt = c.prepare_cached(&format!("{COLUMNS} ORDER BY id")).db()?;
                stmt.query_map([], zone_from_row).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
            }
        }
    })
}

pub(crate) fn zone_states(store: &SqliteStore, user: UserId, device: DeviceId) -> StoreResult<Vec<ZoneStateRow>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT zone_id, body FROM zone_states WHERE user_id = ?1 AND device_id = ?2 ORDER BY zone_id",
            )
            .db()?;
        let rows =
            stmt.query_map([user.0, device.0], |r| Ok(ZoneStateRow { device, zone: r.get(0)?, body: r.get(1)? }));
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn commit_events(store: &SqliteStore, batch: &EventBatch) -> StoreResult<Vec<Option<i64>>> {
    let user = batch.user.0;
    store.write(|tx| {
        for write in &batch.states {
            match write {
                StateWrite::Put(row) => {
                    tx.prepare_cached(
                        "INSERT INTO zone_states (user_id, device_id, zone_id, body) VALUES (?1, ?2, ?3, ?4) \
                         ON CONFLICT (user_id, device_id, zone_id) DO UPDATE SET body = excluded.body",
                    )
                    .db()?
                    .execute(params![user, row.device.0, row.zone, row.body])
                    .db()?;
                }
                StateWrite::Delete { device, zone } => {
                    tx.prepare_cached("DELETE FROM zone_states WHERE user_id = ?1 AND device_id = ?2 AND zone_id = ?3")
                        .db()?
                        .execute(params![user, device.0, zone])
                        .db()?;
                }
            }
        }
        let mut ids = Vec::with_capacity(batch.events.len());
        for event in &batch.events {
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO events (user_id, dedup_key, at_ms, kind, device_id, zone_id, body) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (user_id, dedup_key) DO NOTHING",
                )
                .db()?
                .execute(params![user, event.dedup_key, event.at.0, event.kind, event.device.0, event.zone, event.body])
                .db()?;
            if inserted == 0 {
                ids.push(None);
                continue;
            }
            let id = tx.last_insert_rowid();
            for webhook in &event.deliver_to {
                tx.prepare_cached(
                    "INSERT INTO webhook_deliveries (user_id, webhook_id, event_id, idem_key, status, attempts, \
                     next_ms, updated_ms) SELECT ?1, ?2, ?3, ?4, 0, 0, ?5, ?5 \
                     WHERE EXISTS (SELECT 1 FROM webhooks WHERE user_id = ?1 AND id = ?2)",
                )
                .db()?
                .execute(params![user, webhook, id, idempotency_key(batch.user, id, *webhook), batch.made.0])
                .db()?;
            }
            ids.push(Some(id));
        }
        Ok(ids)
    })
}

const EVENT_COLUMNS: &str = "e.id, e.user_id, e.at_ms, e.kind, e.device_id, e.zone_id, e.body";

fn event_from(r: &Row<'_>, at: usize) -> rusqlite::Result<StoredEvent> {
    Ok(StoredEvent {
        id: r.get(at)?,
        user: UserId(r.get(at + 1)?),
        at: Timestamp(r.get(at + 2)?),
        kind: r.get(at + 3)?,
        device: DeviceId(r.get(at + 4)?),
        zone: r.get(at + 5)?,
        body: r.get(at + 6)?,
    })
}

pub(crate) fn events(store: &SqliteStore, user: UserId, after: i64, limit: usize) -> StoreResult<Vec<StoredEvent>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events e WHERE e.user_id = ?1 AND e.id > ?2 ORDER BY e.id LIMIT ?3"
            ))
            .db()?;
        let rows = stmt.query_map(params![user.0, after, limit as i64], |r| event_from(r, 0));
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn create_webhook(
    store: &SqliteStore,
    user: UserId,
    body: &str,
    secret: &str,
    at: Timestamp,
) -> StoreResult<i64> {
    store.write(|tx| {
        check_user(tx, user)?;
        tx.execute(
            "INSERT INTO webhooks (user_id, body, secret, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![user.0, body, secret, at.0],
        )
        .db()?;
        Ok(tx.last_insert_rowid())
    })
}

const WEBHOOK_COLUMNS: &str = "w.id, w.user_id, w.body, w.secret, w.created_ms";

fn webhook_from(r: &Row<'_>, at: usize) -> rusqlite::Result<WebhookRow> {
    Ok(WebhookRow {
        id: r.get(at)?,
        user: UserId(r.get(at + 1)?),
        body: r.get(at + 2)?,
        secret: r.get(at + 3)?,
        created: Timestamp(r.get(at + 4)?),
    })
}

pub(crate) fn webhooks(store: &SqliteStore, user: Option<UserId>) -> StoreResult<Vec<WebhookRow>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {WEBHOOK_COLUMNS} FROM webhooks w WHERE ?1 IS NULL OR w.user_id = ?1 ORDER BY w.id"
            ))
            .db()?;
        let rows = stmt.query_map([user.map(|u| u.0)], |r| webhook_from(r, 0));
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn delete_webhook(store: &SqliteStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        tx.execute("DELETE FROM webhook_deliveries WHERE user_id = ?1 AND webhook_id = ?2", params![user.0, id])
            .db()?;
        Ok(tx.execute("DELETE FROM webhooks WHERE user_id = ?1 AND id = ?2", params![user.0, id]).db()? > 0)
    })
}

pub(crate) fn update_webhook(
    store: &SqliteStore,
    user: UserId,
    id: i64,
    body: &str,
    drop_pending: Option<&str>,
    at: Timestamp,
) -> StoreResult<bool> {
    store.write(|tx| {
        let found = tx
            .execute("UPDATE webhooks SET body = ?3 WHERE user_id = ?1 AND id = ?2", params![user.0, id, body])
            .db()?
            > 0;
        if found && let Some(reason) = drop_pending {
            tx.execute(
                "UPDATE webhook_deliveries SET status = ?3, next_ms = ?4, last_status = NULL, last_error = ?5, \
                 updated_ms = ?4 WHERE user_id = ?1 AND webhook_id = ?2 AND status = 0",
                params![user.0, id, DeliveryStatus::Dead.code(), at.0, reason],
            )
            .db()?;
        }
        Ok(found)
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.user_id, d.webhook_id, d.event_id, d.idem_key, d.status, d.attempts, \
                                d.next_ms, d.last_status, d.last_error, d.updated_ms";

fn delivery_from(r: &Row<'_>) -> rusqlite::Result<(Delivery, i16)> {
    let status: i16 = r.get(5)?;
    let delivery = Delivery {
        id: r.get(0)?,
        user: UserId(r.get(1)?),
        webhook: r.get(2)?,
        event: r.get(3)?,
        key: r.get(4)?,
        status: DeliveryStatus::Pending,
        attempts: r.get(6)?,
        next_attempt: Timestamp(r.get(7)?),
        last_status: r.get(8)?,
        last_error: r.get(9)?,
        updated: Timestamp(r.get(10)?),
    };
    Ok((delivery, status))
}

fn with_status((mut delivery, code): (Delivery, i16)) -> StoreResult<Delivery> {
    delivery.status = DeliveryStatus::from_code(code)?;
    Ok(delivery)
}

pub(crate) fn due_deliveries(store: &SqliteStore, now: Timestamp, limit: usize) -> StoreResult<Vec<DueDelivery>> {
    let rows = store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS}, {EVENT_COLUMNS}, {WEBHOOK_COLUMNS} \
                 FROM (SELECT webhook_id, min(id) AS id FROM webhook_deliveries WHERE status = 0 \
                       GROUP BY webhook_id) head \
                 JOIN webhook_deliveries d ON d.id = head.id \
                 JOIN events e ON e.user_id = d.user_id AND e.id = d.event_id \
                 JOIN webhooks w ON w.user_id = d.user_id AND w.id = d.webhook_id \
                 WHERE d.next_ms <= ?1 ORDER BY d.next_ms, d.id LIMIT ?2"
            ))
            .db()?;
        let rows = stmt.query_map(params![now.0, limit as i64], |r| {
            Ok((delivery_from(r)?, event_from(r, 11)?, webhook_from(r, 18)?))
        });
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })?;
    rows.into_iter()
        .map(|(delivery, event, webhook)| Ok(DueDelivery { delivery: with_status(delivery)?, event, webhook }))
        .collect()
}

pub(crate) fn update_delivery(store: &SqliteStore, update: &DeliveryUpdate) -> StoreResult<bool> {
    store.write(|tx| {
        let n = tx
            .execute(
                "UPDATE webhook_deliveries SET status = ?4, attempts = ?5, next_ms = ?6, last_status = ?7, \
                 last_error = ?8, updated_ms = ?9 \
                 WHERE user_id = ?1 AND id = ?2 AND attempts = ?3 AND status = 0",
                params![
                    update.user.0,
                    update.id,
                    update.attempts_before,
                    update.status.code(),
                    update.attempts,
                    update.next_attempt.0,
                    update.last_status,
                    update.last_error,
                    update.at.0,
                ],
            )
            .db()?;
        Ok(n > 0)
    })
}

pub(crate) fn deliveries(
    store: &SqliteStore,
    user: UserId,
    webhook: i64,
    before: Option<i64>,
    limit: usize,
) -> StoreResult<Vec<Delivery>> {
    let rows = store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d \
                 WHERE d.user_id = ?1 AND d.webhook_id = ?2 AND (?3 IS NULL OR d.id < ?3) ORDER BY d.id DESC LIMIT ?4"
            ))
            .db()?;
        let rows = stmt.query_map(params![user.0, webhook, before, limit as i64], delivery_from);
        rows.db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })?;
    rows.into_iter().map(with_status).collect()
}

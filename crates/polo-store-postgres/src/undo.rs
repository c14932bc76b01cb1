//! Undo records ([`polo_store::undo`]): what a delete removed, in the
//! per-user `undo_records` table until it is taken or expires. Under Citus
//! the table is distributed by `user_id` like the points it holds.

use polo_domain::{Timestamp, UserId};
use polo_store::undo::UNDO_PER_USER;
use polo_store::{KeptUndo, StoreResult};

use crate::PostgresStore;
use crate::error::Db;

pub(crate) fn keep_undo(store: &PostgresStore, kept: &KeptUndo) -> StoreResult<()> {
    let limit = UNDO_PER_USER as i64;
    store.write(|tx| {
        // Every user's expired records first: the one statement that spans shards.
        tx.execute("DELETE FROM undo_records WHERE expires_ms <= $1", &[&kept.made.0]).db()?;
        tx.execute(
            "INSERT INTO undo_records (user_id, token_hash, made_ms, expires_ms, record) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, token_hash) DO UPDATE SET made_ms = excluded.made_ms, \
             expires_ms = excluded.expires_ms, record = excluded.record",
            &[&kept.user.0, &&kept.token_hash[..], &kept.made.0, &kept.expires.0, &kept.record],
        )
        .db()?;
        tx.execute(
            "DELETE FROM undo_records WHERE user_id = $1 AND token_hash NOT IN \
             (SELECT token_hash FROM undo_records WHERE user_id = $1 ORDER BY made_ms DESC, token_hash LIMIT $2)",
            &[&kept.user.0, &limit],
        )
        .db()?;
        Ok(())
    })
}

pub(crate) fn take_undo(
    store: &PostgresStore,
    user: UserId,
    token_hash: &[u8; 32],
    now: Timestamp,
) -> StoreResult<Option<KeptUndo>> {
    store.write(|tx| {
        let row = tx
            .query_opt(
                "DELETE FROM undo_records WHERE user_id = $1 AND token_hash = $2 \
                 RETURNING made_ms, expires_ms, record",
                &[&user.0, &&token_hash[..]],
            )
            .db()?;
        let kept = row.map(|r| KeptUndo {
            user,
            token_hash: *token_hash,
            made: Timestamp(r.get(0)),
            expires: Timestamp(r.get(1)),
            record: r.get(2),
        });
        Ok(kept.filter(|k| k.expires > now))
    })
}

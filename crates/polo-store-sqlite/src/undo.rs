//! Undo records ([`polo_store::undo`]): what a delete removed, in the
//! `undo_records` table until it is taken or expires.

use polo_domain::{Timestamp, UserId};
use polo_store::undo::UNDO_PER_USER;
use polo_store::{KeptUndo, StoreResult};
use rusqlite::{OptionalExtension, params};

use crate::{Db, SqliteStore};

pub(crate) fn keep_undo(store: &SqliteStore, kept: &KeptUndo) -> StoreResult<()> {
    store.write(|tx| {
        tx.execute("DELETE FROM undo_records WHERE expires_ms <= ?1", [kept.made.0]).db()?;
        tx.execute(
            "INSERT OR REPLACE INTO undo_records (token_hash, user_id, made_ms, expires_ms, record) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![&kept.token_hash[..], kept.user.0, kept.made.0, kept.expires.0, &kept.record],
        )
        .db()?;
        tx.execute(
            "DELETE FROM undo_records WHERE user_id = ?1 AND token_hash NOT IN \
             (SELECT token_hash FROM undo_records WHERE user_id = ?1 ORDER BY made_ms DESC, token_hash LIMIT ?2)",
            params![kept.user.0, UNDO_PER_USER as i64],
        )
        .db()?;
        Ok(())
    })
}

pub(crate) fn take_undo(
    store: &SqliteStore,
    user: UserId,
    token_hash: &[u8; 32],
    now: Timestamp,
) -> StoreResult<Option<KeptUndo>> {
    store.write(|tx| {
        let kept = tx
            .query_row(
                "DELETE FROM undo_records WHERE token_hash = ?1 AND user_id = ?2 \
                 RETURNING made_ms, expires_ms, record",
                params![&token_hash[..], user.0],
                |r| {
                    Ok(KeptUndo {
                        user,
                        token_hash: *token_hash,
                        made: Timestamp(r.get(0)?),
                        expires: Timestamp(r.get(1)?),
                        record: r.get(2)?,
                    })
                },
            )
            .optional()
            .db()?;
        Ok(kept.filter(|k| k.expires > now))
    })
}

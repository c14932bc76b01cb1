//! Live ingest's commit: the clock lock released before the WAL flush, the
//! write acknowledged only after it.
//!
//! # Why
//!
//! Every changing write holds the `change_clock` row lock until it commits
//! (that is what keeps seqs in commit order, see the crate docs), and
//! PostgreSQL releases a transaction's locks only after its commit record
//! is flushed. So with synchronous commits, every node's live commits took
//! turns through one WAL flush each, and no two flushes could be shared:
//! the nodes' commits, not their work, set the pace.
//!
//! Live ingest therefore commits asynchronously (`synchronous_commit` off
//! for that transaction alone, set with the lock: [`LOCK_CLOCK`]): the
//! commit record is written and the lock released at once, and the next
//! writer, on this node or another, can take the clock while the flush is
//! still to come. In the same message as the `COMMIT`, a small transaction
//! of its own is committed synchronously ([`FLUSH`]: a transactional
//! logical-decoding message, which takes a transaction id and writes WAL,
//! so its commit must flush). WAL is one sequence, so that flush covers
//! every commit record written before it, ours included; and since it waits
//! outside the lock, concurrent writers' flushes are shared by PostgreSQL's
//! group commit. The whole live write is three round trips when the tail
//! cache knows the phones: `BEGIN` with the lock, the writes, `COMMIT` with
//! the flush (see `statements::LiveTx`).
//!
//! * **No acknowledged point lost.** [`crate::PostgresStore::write_live`]
//!   returns only after the flush succeeded; a server crash before that
//!   loses at most writes nobody was told about, and the phones send them
//!   again. When the commit's message fails, the write is reported failed
//!   (it may be stored; the ingest writer then writes the groups again one
//!   by one, synchronously, where the stored points count as duplicates).
//! * **Readers.** Another session may see an asynchronously committed write
//!   for the moment before its flush. Whatever it writes from it commits
//!   later in the same WAL, so the database never keeps a result without
//!   its cause; the replication feed, which hands changes to other
//!   instances, waits for a flush first ([`wait`]), so a peer never holds a
//!   change that a crash could take back.

use std::time::Duration;

use polo_domain::Seq;
use polo_store::clock::ChangeClock;
use polo_store::{Hlc, StoreError, StoreResult};

use crate::PostgresStore;
use crate::error::Db;
use crate::statements::Prepared;

/// Takes the change clock for a live write, whose commit is made
/// asynchronous; sent with `BEGIN`.
pub(crate) const LOCK_CLOCK: &str = "SELECT last_seq, hlc, set_config('synchronous_commit', 'off', true) \
     FROM change_clock WHERE id = 1 FOR UPDATE";

/// Commits synchronously something that writes WAL, so that every commit
/// written before it is flushed; sent with `COMMIT`.
pub(crate) const FLUSH: &str = "SELECT pg_logical_emit_message(true, 'polo.flush', '')";

/// How often a flush is asked for before [`wait`] reports failure.
const ATTEMPTS: u32 = 3;

/// The clock from the text values of [`LOCK_CLOCK`]'s row.
pub(crate) fn clock_of(row: &[Option<String>]) -> StoreResult<ChangeClock> {
    let value = |i: usize| -> StoreResult<u64> {
        row.get(i)
            .and_then(|v| v.as_deref())
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("the change clock's row reads {row:?}")))
    };
    Ok(ChangeClock { last_seq: Seq(value(0)?), hlc: Hlc(value(1)?) })
}

/// Returns once every commit that finished before the call is flushed to
/// disk (and, with synchronous replication configured, on the standbys).
pub(crate) fn wait(store: &PostgresStore) -> StoreResult<()> {
    let mut attempt = 1;
    loop {
        let flushed = store.read(|c| {
            c.query_prepared_one(FLUSH, &[]).db()?;
            Ok(())
        });
        match flushed {
            Err(e) if e.is_retryable() && attempt < ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "retrying a PostgreSQL WAL flush");
                std::thread::sleep(Duration::from_millis(5 << attempt));
                attempt += 1;
            }
            done => return done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_is_read_from_the_lock_s_text_row() {
        let row = [Some("41".to_owned()), Some("1234567".to_owned()), Some("off".to_owned())];
        assert_eq!(clock_of(&row).unwrap(), ChangeClock { last_seq: Seq(41), hlc: Hlc(1_234_567) });
        assert!(clock_of(&[]).is_err());
        assert!(clock_of(&[Some("x".to_owned()), None]).is_err());
    }
}

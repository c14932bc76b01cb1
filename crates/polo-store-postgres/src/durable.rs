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
//! a flush costs 1–10 ms on the 2-core machine the benchmarks run on, which
//! capped two nodes at about a thousand commits per second together,
//! whatever they carried.
//!
//! Live ingest therefore commits asynchronously (`synchronous_commit` off
//! for that transaction alone, set by [`crate::lock_clock_live`]): the
//! commit record is written and the lock released at once, and the next
//! writer, on this node or another, can take the clock while the flush is
//! still to come. Then [`wait`] makes the commit durable before the caller
//! answers anybody: it commits a small transaction of its own synchronously
//! (a transactional logical-decoding message, which takes a transaction id
//! and writes WAL, so its commit must flush). WAL is one sequence, so that
//! flush covers every commit record written before it, ours included; and
//! since it waits outside the lock, concurrent writers' flushes are shared
//! by PostgreSQL's group commit.
//!
//! * **No acknowledged point lost.** The ingest writer answers a request
//!   only after [`wait`] returned; a server crash before that loses at
//!   most writes nobody was told about, and the phones send them again.
//! * **Readers.** Another session may see an asynchronously committed write
//!   for the moment before its flush. Whatever it writes from it commits
//!   later in the same WAL, so the database never keeps a result without
//!   its cause; the replication feed, which hands changes to other
//!   instances, waits for the flush first ([`wait`]), so a peer never holds
//!   a change that a crash could take back.
//! * **Retries.** The flush can be asked for on any connection: one lost
//!   with the first attempt is replaced by another from the pool.

use std::time::Duration;

use polo_store::StoreResult;

use crate::PostgresStore;
use crate::error::Db;
use crate::statements::Prepared;

/// How often a flush is asked for before the write is reported failed.
const ATTEMPTS: u32 = 3;

/// Returns once every commit that finished before the call is flushed to
/// disk (and, with synchronous replication configured, on the standbys).
pub(crate) fn wait(store: &PostgresStore) -> StoreResult<()> {
    let mut attempt = 1;
    loop {
        let flushed = store.read(|c| {
            c.query_prepared_one("SELECT pg_logical_emit_message(true, 'polo.flush', '')", &[]).db()?;
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

//! WAL checkpoints off the commit path.
//!
//! By default SQLite checkpoints inside the commit that pushes the WAL past
//! 1,000 pages: that one commit copies the WAL into the database file and
//! syncs it, and every live-ingest request waiting on it waits too. That
//! was the p99 of live ingest (13 ms instead of 3.6 ms at 16,000 points/s).
//! So the writer never checkpoints (`wal_autocheckpoint = 0`) and this
//! thread does, every [`CHECKPOINT_INTERVAL`], in two steps:
//!
//! 1. a `PASSIVE` checkpoint on its own connection copies the bulk of the
//!    WAL while the writer keeps appending;
//! 2. only when the WAL has grown past [`WAL_LIMIT_FRAMES`]: holding the
//!    writer for a moment, a second `PASSIVE` checkpoint copies the few
//!    frames appended meanwhile. The checkpoint is then complete, and the
//!    next write starts the WAL over from its beginning.
//!
//! A writer that pauses now and then (every real workload) lets step 1
//! complete by itself, and the WAL restarts without step 2. A writer busy
//! without a break stays ahead of step 1, and the WAL grew by about 50 MB/s
//! in the ingest benchmark; step 2 bounds that, at the cost of holding the
//! writer for one database sync every few seconds.
//!
//! After each round it gives memory back when the store is idle (`quiet`).
//! The thread stops when the store is dropped.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use polo_store::StoreResult;
use rusqlite::Connection;

use crate::Db;

/// How often the WAL is copied into the database.
pub(crate) const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(500);

/// WAL length (frames, one page each) beyond which a checkpoint holds the
/// writer to finish: 64 MB with the default 4 KiB pages.
const WAL_LIMIT_FRAMES: i64 = 16_384;

/// The checkpoint thread; stops and joins on drop.
pub(crate) struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path`.
    /// After each round it runs `housekeeping` (see `quiet`).
    pub(crate) fn start(
        path: &Path,
        writer: Arc<Mutex<Connection>>,
        housekeeping: Box<dyn Fn() + Send>,
    ) -> StoreResult<Self> {
        let conn = Connection::open(path).db()?;
        conn.busy_timeout(Duration::from_secs(10)).db()?;
        // A checkpoint copies WAL frames into the file; it needs few cached pages.
        conn.pragma_update(None, "cache_size", -256).db()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("polo-wal-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL) {
                    if let Err(e) = checkpoint(&conn, &writer) {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying later");
                    }
                    housekeeping();
                }
            })
            .map_err(|e| polo_store::StoreError::Backend(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Self { stop: Some(stop), thread: Some(thread) })
    }
}

/// One round: the bulk beside the writer, the rest with the writer held.
fn checkpoint(conn: &Connection, writer: &Mutex<Connection>) -> rusqlite::Result<()> {
    let wal_frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1))?;
    if wal_frames > WAL_LIMIT_FRAMES {
        let writer = writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    }
    Ok(())
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

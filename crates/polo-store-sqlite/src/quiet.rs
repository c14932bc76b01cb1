//! Giving memory back when the store is not being used.
//!
//! Each connection keeps a page cache (the writer up to 8 MiB, each reader
//! up to 4 MiB) and SQLite never shrinks one by itself: after an import, a
//! catch-up of the timeline and some browsing, a server that then sat idle
//! held every cache it had filled, tens of megabytes on a Raspberry Pi.
//! So once the store has seen no read and no write for [`QUIET`], the
//! checkpoint thread (which wakes every half second anyway) closes the
//! readers nobody holds and asks the writer to release its cache
//! (`sqlite3_db_release_memory`). The next read opens a reader again
//! (about 100 µs) and the next write refills the pages it touches, from the
//! kernel's page cache. Whether the freed heap goes back to the system is
//! the allocator's business (the server trims glibc's heap when idle).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::ReaderPool;

/// How long the store must go unused before its caches are given back.
pub(crate) const QUIET: Duration = Duration::from_secs(5);

/// When the store was last used.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: Instant,
    /// Milliseconds since `origin` of the last read or write.
    last: AtomicU64,
    /// Whether the caches were given back since then.
    released: AtomicBool,
}

impl Default for Activity {
    fn default() -> Self {
        Self { origin: Instant::now(), last: AtomicU64::new(0), released: AtomicBool::new(false) }
    }
}

impl Activity {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Notes a read or write.
    pub(crate) fn touch(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
        if self.released.load(Ordering::Relaxed) {
            self.released.store(false, Ordering::Relaxed);
        }
    }

    /// True once per quiet period: the store has been unused for [`QUIET`]
    /// and its caches were not given back yet.
    fn due(&self) -> bool {
        let quiet = self.now_ms().saturating_sub(self.last.load(Ordering::Relaxed));
        quiet >= u64::try_from(QUIET.as_millis()).unwrap_or(u64::MAX) && !self.released.swap(true, Ordering::Relaxed)
    }
}

/// What the checkpoint thread runs after each round.
pub(crate) fn housekeeping(
    activity: Arc<Activity>,
    readers: Arc<ReaderPool>,
    writer: Arc<Mutex<Connection>>,
) -> Box<dyn Fn() + Send> {
    Box::new(move || {
        if !activity.due() {
            return;
        }
        let closed = readers.close_idle();
        // A writer busy right now is not idle: leave it for the next quiet period.
        let released = match writer.try_lock() {
            Ok(conn) => conn.release_memory().is_ok(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().release_memory().is_ok(),
            Err(TryLockError::WouldBlock) => false,
        };
        tracing::debug!(closed, released, "store idle: page caches given back");
    })
}

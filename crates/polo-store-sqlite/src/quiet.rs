//! Giving memory back when the store is not being used.
//!
//! Each connection keeps a page cache (the writer up to 8 MiB, each reader
//! up to 4 MiB) and SQLite never shrinks one by itself: after an import, a
//! catch-up of the timeline and some browsing, a server that then sat idle
//! held every cache it had filled, tens of megabytes on a Raspberry Pi.
//! So once the store has been all but unused for [`QUIET_ROUNDS`] rounds of
//! the checkpoint thread (which wakes every half second anyway), that
//! thread closes the readers nobody holds and asks the writer to release
//! its cache (`sqlite3_db_release_memory`). "All but": the server's
//! timeline worker looks at the change log twice a second whatever
//! happens, so a round with at most [`IDLE_OPERATIONS`] reads and writes
//! counts as quiet. The next read opens a reader again (about 100 µs) and
//! the next write refills the pages it touches, from the kernel's page
//! cache. Whether the freed heap goes back to the system is the
//! allocator's business (see `polo serve`'s allocator settings).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

use rusqlite::Connection;

use crate::ReaderPool;

/// Rounds of the checkpoint thread (half a second each) the store must be
/// quiet before its caches are given back.
pub(crate) const QUIET_ROUNDS: u32 = 10;

/// Reads and writes a round may see and still count as quiet.
pub(crate) const IDLE_OPERATIONS: u64 = 8;

/// How much the store is used.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Reads and writes since the checkpoint thread last looked.
    operations: AtomicU64,
}

impl Activity {
    /// Notes a read or write.
    pub(crate) fn touch(&self) {
        self.operations.fetch_add(1, Ordering::Relaxed);
    }

    /// The operations since the last call, resetting the count.
    fn take(&self) -> u64 {
        self.operations.swap(0, Ordering::Relaxed)
    }
}

/// The checkpoint thread's view of how long the store has been quiet.
#[derive(Debug, Default)]
struct Quiet {
    rounds: u32,
    released: bool,
}

impl Quiet {
    /// Counts one round with `operations`; true from the round the quiet
    /// period has lasted [`QUIET_ROUNDS`] until the caches were given back
    /// ([`Quiet::released`]).
    fn due(&mut self, operations: u64) -> bool {
        if operations > IDLE_OPERATIONS {
            *self = Self::default();
            return false;
        }
        self.rounds = self.rounds.saturating_add(1);
        self.rounds >= QUIET_ROUNDS && !self.released
    }
}

/// What the checkpoint thread runs after each round.
pub(crate) fn housekeeping(
    activity: Arc<Activity>,
    readers: Arc<ReaderPool>,
    writer: Arc<Mutex<Connection>>,
) -> Box<dyn Fn() + Send> {
    let quiet = Mutex::new(Quiet::default());
    Box::new(move || {
        let mut quiet = quiet.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !quiet.due(activity.take()) {
            return;
        }
        let closed = readers.close_idle();
        // A writer busy right now is not idle: try again next round.
        let released = match writer.try_lock() {
            Ok(conn) => conn.release_memory().is_ok(),
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner().release_memory().is_ok(),
            Err(TryLockError::WouldBlock) => return,
        };
        quiet.released = true;
        tracing::debug!(closed, released, "store quiet: page caches given back");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caches_are_given_back_once_per_quiet_period() {
        let mut quiet = Quiet::default();
        let round = |quiet: &mut Quiet, operations| {
            let due = quiet.due(operations);
            if due {
                quiet.released = true;
            }
            due
        };
        let due: Vec<bool> = (0..QUIET_ROUNDS + 5).map(|_| round(&mut quiet, 2)).collect();
        assert_eq!(due.iter().filter(|&&d| d).count(), 1, "a timeline worker's polling is quiet");
        assert!(due[QUIET_ROUNDS as usize - 1]);
        assert!(!round(&mut quiet, IDLE_OPERATIONS + 1), "browsing is not");
        let again = (0..QUIET_ROUNDS).map(|_| round(&mut quiet, 0)).filter(|&d| d).count();
        assert_eq!(again, 1, "the next quiet period gives them back again");
        // Not given back (the writer was busy): due again the next round.
        let mut busy = Quiet::default();
        let due = (0..QUIET_ROUNDS + 2).filter(|_| busy.due(0)).count();
        assert_eq!(due, 3);
    }
}

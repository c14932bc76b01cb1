//! Serving the change feed from a store: where a cursor continues (epochs),
//! and long-polling until something changes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use polo_domain::Seq;
use polo_store::replication::{Resume, resume};
use polo_store::{Checkpoint, FeedFilter, Store, StoreError};

use crate::wire::WirePage;

/// How often a long-poll looks for new changes.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// A feed request.
#[derive(Debug, Clone, Default)]
pub struct FeedRequest {
    /// `EPOCH:SEQ`, or `None` for the beginning.
    pub since: Option<String>,
    /// About how many points a page carries at most.
    pub max_points: usize,
    /// Which changes.
    pub filter: FeedFilter,
    /// How long to wait for a change when there is none.
    pub wait: Duration,
}

/// Why a feed page could not be served.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The cursor does not parse.
    #[error("{0}")]
    BadCursor(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads one page for `request` on the blocking pool, waiting up to
/// `request.wait` for a change when the feed is caught up.
///
/// # Errors
/// A malformed cursor; store failures.
pub async fn serve_page(store: Arc<dyn Store>, request: FeedRequest) -> Result<WirePage, FeedError> {
    let deadline = Instant::now() + request.wait;
    let (after, rewound) = {
        let store = store.clone();
        let since = request.since.clone();
        blocking(move || start_of(&*store, since.as_deref())).await??
    };
    loop {
        let store2 = store.clone();
        let filter = request.filter.clone();
        let max = request.max_points.max(1);
        let (page, instance, epoch) = blocking(move || -> Result<_, StoreError> {
            let page = store2.replication_feed(after, max, &filter)?;
            Ok((page, store2.instance_id()?, store2.epoch()?))
        })
        .await??;
        let moved = page.next != after || !page.entries.is_empty();
        if moved || rewound.is_some() || Instant::now() >= deadline {
            return Ok(WirePage::from_feed(instance, &epoch, page, rewound));
        }
        tokio::time::sleep(POLL_EVERY.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Where a cursor continues in this store, and why it moved when it did.
fn start_of(store: &dyn Store, since: Option<&str>) -> Result<(Seq, Option<String>), FeedError> {
    let Some(since) = since else { return Ok((Seq(0), None)) };
    let cursor = Checkpoint::parse(since).map_err(FeedError::BadCursor)?;
    let epochs = store.epochs()?;
    Ok(match resume(&epochs, &cursor) {
        Resume::After(seq) => {
            let head = store.last_seq()?;
            if seq > head {
                // Only a restore can rewind a log, and a restore changes the epoch.
                return Err(FeedError::BadCursor(format!(
                    "cursor {since} is ahead of this instance's change log (last change {})",
                    head.0
                )));
            }
            (seq, None)
        }
        Resume::Rewound { after } => (
            after,
            Some(format!(
                "epoch {} ended when this instance was restored from a backup; continuing after change {}",
                cursor.epoch, after.0
            )),
        ),
        Resume::Unknown => (
            Seq(0),
            Some(format!("epoch {} is not in this instance's history; starting over from the beginning", cursor.epoch)),
        ),
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, FeedError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| FeedError::Store(StoreError::Backend(format!("feed task failed: {e}"))))
}

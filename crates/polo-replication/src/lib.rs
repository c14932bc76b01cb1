//! Replication between polo instances, Couchbase-XDCR style: a target
//! pulls a source's change feed, continuously if asked, and applies it
//! idempotently with its checkpoint in the same transaction.
//!
//! * [`wire`] — the JSON feed format (points as codec blocks).
//! * [`apply`] — applying an apply request as it is read, in groups.
//! * [`feed`] — serving feed pages from a store, with epochs and long-poll.
//! * [`peer`] — the ends of a replication: HTTP or the local store.
//! * [`task`] — the replicator loop, its status and its controls.
//!
//! The data model (versions, origins, tombstones, checkpoints) lives in
//! `polo_store::replication`; `docs/replication.md` is the runbook.

pub mod apply;
pub mod feed;
pub mod peer;
pub mod task;
pub mod wire;

pub use apply::{GroupLimits, apply_streaming};
pub use feed::{FeedError, FeedRequest, serve_page};
pub use peer::{HttpPeer, Peer, PeerError, apply_locally};
pub use task::{Control, Handle, ReplicateError, Spec, State, Status, checkpoint_name, run};
pub use wire::{ApplyRequest, PeerInfo, WireOutcome, WirePage};

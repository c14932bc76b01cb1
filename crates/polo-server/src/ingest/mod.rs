//! Live ingest: the tracker-app wire protocols, as pure parsers, and the
//! group-commit writer that stores what they produce.
//!
//! The parsers do no I/O and know nothing about HTTP or accounts, so every
//! quirk of `protocols.md` Part 1 is unit-tested against the spec's example
//! bodies, and the HTTP handlers stay thin: authenticate, pick a parser,
//! resolve the device, [`Ingestor::submit`], answer in the shape the app
//! expects. All parsers take "now" explicitly (fix times before 1985 or
//! more than a day ahead are refused) and set `Fix::source`.
//!
//! # Handler recipes
//!
//! **OwnTracks** (`POST /pub`, body = one message) — [`owntracks`]:
//! ```ignore
//! let opts = owntracks::ParseOptions { now, from_overland };
//! let mut msg = owntracks::parse(&body, &opts)?;             // Empty for a zero-length body
//! if let owntracks::Message::Encrypted { data } = &msg {      // key of lower(user)-lower(device)
//!     msg = owntracks::decrypt_message(&key, data, &opts)?;
//! }
//! // Location(l) / Transition(t): device = X-Limit-D, ?d=, or l.topic.device_hint();
//! // the authenticated user wins over X-Limit-U / ?u= / topic.
//! ingestor.submit(user, device, vec![l.fix]).await?;
//! let reply = owntracks::friends_reply(&friends);             // serde_json::Value array
//! // encrypted device: owntracks::encrypted_envelope(&key, reply.to_string().as_bytes())
//! ```
//! Answer 2xx with `[]` or the reply even for unusable messages (iOS drops
//! a message on 4xx, Android retries forever); 5xx only for temporary
//! trouble such as [`IngestError::Closed`] or a store backend error.
//! Overland's OwnTracks mode (`Authorization: Basic <token>:` unencoded) sets
//! [`owntracks::ParseOptions::from_overland`].
//!
//! **Overland** (`POST`, `{"locations":[…]}`) — [`overland::parse`] gives
//! points (with `device_id` hints), visit and trip [`polo_domain::Interval`]s
//! (for `Store::insert_intervals`), counted app events and per-feature
//! rejects; answer [`overland::OK_REPLY`] whenever the body parsed, even with
//! rejects, or the app resends the batch forever.
//!
//! **OsmAnd / Traccar / GPSLogger** — [`osmand::parse_request`]`(query,
//! content_type, body, now)` sniffs the body (JSON, form, query) and returns
//! [`osmand::Report`]s of `device_id` + fix; answer 200 with an empty body,
//! 400 for [`osmand::OsmandError::MissingDeviceId`].
//!
//! **polo's API** (`POST /api/v1/points`) — [`batch::parse`] reads a JSON
//! array of points or a GeoJSON FeatureCollection with per-item
//! [`batch::ItemError`]s (report them with their index).
//!
//! **Writing** — start one [`Ingestor`] per process over the store
//! (`Ingestor::start(store, IngestorConfig::default())`), keep a clone in the
//! app state, expose [`Ingestor::stats`] as metrics, and call
//! [`Ingestor::shutdown`] after the server stopped accepting requests.

mod json;

pub mod batch;
#[doc(hidden)]
pub mod fuzzing;
pub mod last_seen;
pub mod osmand;
pub mod overland;
pub mod owntracks;
pub(crate) mod routes;
pub(crate) mod schema;
pub mod writer;

pub use last_seen::LastSeen;
pub use writer::{IngestError, Ingestor, IngestorConfig, IngestorStats, PointWriter};

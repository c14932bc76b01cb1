//! Importing whole files: the pipeline `polo import` runs, and the HTTP
//! import jobs that run the same pipeline on an uploaded file.
//!
//! The pipeline ([`Importer`]) lives here rather than in the CLI so that the
//! command line and `POST /api/v1/imports` share one implementation: the
//! same batching, the same rejects files, the same per-entry reports. The
//! HTTP side ([`ImportJobs`]) spools an upload to disk, imports it on the
//! blocking pool and keeps its progress and summary in the store, where every
//! node sharing it sees them and a restart keeps them.

mod jobs;
mod pipeline;
pub(crate) mod routes;

pub use self::jobs::{
    HEARTBEAT_EVERY, ImportJobs, ImportJobsConfig, Job, JobError, JobStatus, JobView, NODE_STOPPED, NewJob,
    STALE_AFTER, view_of,
};
pub use self::pipeline::{
    CountingReader, DEFAULT_DEVICE, FileReport, Importer, NoProgress, Progress, RejectsWriter, Totals, WriteError,
    Written, run_stamp,
};

//! Importing whole files: the pipeline `polo import` runs, and the HTTP
//! import jobs that run the same pipeline on an uploaded file.
//!
//! The pipeline ([`Importer`]) lives here rather than in the CLI so that the
//! command line and `POST /api/v1/imports` share one implementation: the
//! same batching, the same rejects files, the same per-entry reports. The
//! HTTP side ([`ImportJobs`]) spools an upload to disk, imports it on the
//! blocking pool and keeps its progress and summary in memory (history is
//! lost on restart; the data itself is in the store).

mod jobs;
mod pipeline;
pub(crate) mod routes;

pub use self::jobs::{ImportJobs, ImportJobsConfig, Job, JobError, JobStatus, JobView, NewJob};
pub use self::pipeline::{
    CountingReader, DEFAULT_DEVICE, FileReport, Importer, NoProgress, Progress, RejectsWriter, Totals, WriteError,
    Written, run_stamp,
};

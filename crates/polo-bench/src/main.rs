//! `polo-bench`: benchmark commands that print figures next to their targets
//! and the baseline they are compared with.
//!
//! * `polo-bench import` — generates a Records.json of the requested size with
//!   the real field mix, imports it with the release `polo` binary (the same
//!   command a user runs) and with a Python baseline (streaming `ijson` +
//!   `sqlite3` `executemany`, installed from PyPI into a venv by the bench),
//!   and prints points/s, bytes/s, peak RSS and the ratio.
//! * `polo-bench serve` — drives `polo serve` with wrk (OwnTracks single
//!   points, Overland batches of 100) and prints points/s, latency
//!   percentiles and RSS.
//! * `polo-bench storage` — generates a typical phone history, imports it and
//!   prints the bytes per point the embedded store uses on disk.
//! * `polo-bench timeline` — stay and leg detection points/s on a synthetic
//!   track, against trackintel 1.4.2 on the same points (`POLO_PYTHON`).
//! * `polo-bench geocode` — offline reverse geocoding: load time, resident
//!   memory and lookups/s on land-weighted positions.
//! * `polo-bench map` — map levels of detail for a ten-year, ~5-million-point
//!   user: the refresh's points/s and memory, then overview and tile latency
//!   and bytes over HTTP against the ≤ 300 ms / ≤ 2 MB targets.
//! * `polo-bench restore` — restore-to-ready of a backed-up instance with 10 M
//!   points and its derived timeline: `polo restore`, `polo serve`, `/readyz`
//!   and the first correct day view, against the 30 s target.
//! * `polo-bench life` — writes the deterministic ten-year life fixture
//!   (`polo-life`: Records.json of two phones, Semantic Location History,
//!   GPX trips) and its ground-truth manifest, and prints the summary.
//! * `polo-bench life-bench` — the realistic life through the real binary:
//!   import, catch-up, idle RSS after it and after a scripted browsing
//!   session, each page's API p95, heatmap and fog tile p95, time to the
//!   first rows of Places and Trips, derived bytes against point bytes, and
//!   live ingest into that store against an empty one.
//! * `polo-bench postgres` — polo on a PostgreSQL server on the same
//!   machine, in one run: importing the generated Records.json (points/s,
//!   peak RSS), bytes per point in PostgreSQL beside a row-per-point table
//!   shaped like Traccar's, OwnTracks live ingest through two `polo serve`
//!   nodes, and the ten-year overview, each against the target.
//! * `polo-bench encounters` — the encounter engine (`polo-encounters`) on
//!   the synthetic co-location set of `algorithms.md` §2.3: the full join's
//!   pairs, candidates per pair, points/s and peak RSS, the exposure
//!   semi-join, and with `--postgis URL` PostGIS's `gist(geog, ts)`
//!   self-join on the same points, end to end, with identical counts.
//! * `polo-bench exposure-status` — the exposure read path: many users,
//!   each with a signed status row, read with wrk through `polo serve`,
//!   against ≥ 20,000 requests/s at p99 ≤ 5 ms.
//! * `polo-bench exposure-batch` — the exposure batch end to end through the
//!   store: planning, every complete window, the rules, the statuses, and a
//!   late point recomputing only its window.
//! * `polo-bench web` — the front-end performance check: the web app's map
//!   explorer opened on ten years of a 5-million-point user in headless
//!   Chromium: time to first map render, JS heap and the longest long task,
//!   against ≤ 2 s and no long task over 200 ms.
//!
//! * `polo-bench photos` — a metadata-only scan of a folder of 10,000
//!   photos and videos (`polo-photos`), against ≥ 1,000 photos/s, and
//!   geotagging the photos without a position from a month of history.
//! * `polo-bench zones` — one fix against 10,000 zones of the instance
//!   through the R-tree (`polo-zones`): µs per fix against the 2 µs target.
//!
//! Peak RSS is the child's `VmHWM` from `/proc`, sampled every 5 ms until it exits.
//! Run with `cargo run --release -p polo-bench -- import` after
//! `cargo build --release -p polo` (the bench finds `polo` beside itself).

mod encounters;
mod exposure;
mod generate;
mod geocode;
mod life;
mod lifebench;
mod liveday;
mod map;
mod photos;
mod postgres;
mod replicate;
mod restore;
mod run;
mod serve;
mod steal;
mod timeline;
mod web;
mod zones;
mod zones_live;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "polo-bench", about = "polo's benchmark commands")]
struct Cli {
    /// Where generated inputs, the venv and scratch stores go.
    #[arg(long, default_value = "bench-data", global = true)]
    work_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import throughput and memory on a generated Records.json, against Python.
    Import {
        /// Size of the generated Records.json in MB (1 MB = 10^6 bytes).
        #[arg(long, default_value_t = 1000)]
        size_mb: u64,
        /// Skip the Python baseline.
        #[arg(long)]
        no_baseline: bool,
    },
    /// Live ingest over loopback with wrk: OwnTracks single points and Overland batches.
    Serve {
        /// Seconds of load per protocol.
        #[arg(long, default_value_t = 10)]
        seconds: u32,
    },
    /// Bytes per point on disk for a typical phone history.
    Storage {
        /// Number of points to generate.
        #[arg(long, default_value_t = 1_000_000)]
        points: u64,
    },
    /// Stay and leg detection throughput, against trackintel (Python from POLO_PYTHON).
    Timeline {
        /// Number of points in the synthetic track.
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        /// Skip the trackintel baseline.
        #[arg(long)]
        no_baseline: bool,
        /// Skip the map overview run (a ten-year store and a server).
        #[arg(long)]
        no_map: bool,
    },
    /// OwnTracks live ingest with 100 zones per user and a webhook subscription each (wrk), then
    /// webhook delivery throughput.
    ZonesLive {
        /// Users, each with 100 zones and a webhook subscription.
        #[arg(long, default_value_t = 2_500)]
        users: usize,
        /// Devices per user, each sending a fix stamped now in turn (one new point a second each at most).
        #[arg(long, default_value_t = 10)]
        devices: usize,
        /// Seconds of measured load (after a warm-up that sends each device's first fixes).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// Longest time deliveries are counted after the load.
        #[arg(long, default_value_t = 30)]
        drain_seconds: u32,
    },
    /// Zone evaluation: one fix against every zone of the instance (R-tree), µs per fix.
    Zones {
        /// Zones on the instance.
        #[arg(long, default_value_t = 10_000)]
        zones: usize,
        /// Users they belong to (one device each).
        #[arg(long, default_value_t = 1_000)]
        users: usize,
        /// Fixes evaluated.
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
    },
    /// Offline reverse geocoding: load time, resident memory, lookups/s.
    Geocode {
        /// Number of positions to look up.
        #[arg(long, default_value_t = 1_000_000)]
        lookups: usize,
    },
    /// Map levels of detail: refresh throughput, overview and tile latency and bytes over HTTP.
    Map {
        /// Days of history per device (3653 = ten years).
        #[arg(long, default_value_t = 3653)]
        days: u32,
        /// Timed requests per route (after one warm-up).
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Photo metadata: scan a folder of photos and videos, and geotag those without a position.
    Photos {
        /// Photos and videos in the folder.
        #[arg(long, default_value_t = 10_000)]
        photos: usize,
    },
    /// One timeline-worker step while a phone posts at 1 Hz, early and late in its day.
    LiveDay {
        /// Days of history stored before the live day.
        #[arg(long, default_value_t = 30)]
        history_days: u32,
        /// Timed steps per checkpoint hour.
        #[arg(long, default_value_t = 30)]
        steps: usize,
    },
    /// Restore-to-ready: restore, serve, /readyz and the first correct timeline answer.
    Restore {
        /// Points in the backed-up instance.
        #[arg(long, default_value_t = 10_000_000)]
        points: usize,
        /// Build the source instance anew even if one with as many points exists.
        #[arg(long)]
        rebuild: bool,
        /// Empty the kernel's page cache before the timed part (Linux, root): a cold restore.
        #[arg(long)]
        cold: bool,
    },
    /// Replication over loopback: initial sync throughput and steady-state lag under live ingest.
    Replicate {
        /// Points in the source instance (the `restore` bench's, reused).
        #[arg(long, default_value_t = 10_000_000)]
        points: usize,
        /// Build the source instance anew.
        #[arg(long)]
        rebuild: bool,
        /// Seconds of live ingest for the lag measurement.
        #[arg(long, default_value_t = 30)]
        lag_seconds: u64,
    },
    /// Writes the ten-year life fixture (Takeout files, GPX) and its ground-truth manifest.
    Life {
        /// Directory the files go into (created).
        #[arg(long)]
        out: PathBuf,
        /// Where the manifest goes [default: OUT.manifest.json beside the directory].
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// small: six months for CI; full: --years years at realistic rates.
        #[arg(long, value_enum, default_value = "full")]
        scale: life::LifeScale,
        /// Years of life (full scale).
        #[arg(long, default_value_t = 10.0)]
        years: f64,
        /// The seed: the same seed writes the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day, YYYY-MM-DD [default: 2015-01-01 full, 2021-08-01 small].
        #[arg(long, value_parser = life::parse_date)]
        start: Option<polo_life::Date>,
    },
    /// The realistic life end to end: import, catch-up, idle RSS, page and tile latency, derived
    /// bytes against point bytes, live ingest against an empty store.
    LifeBench {
        /// small: six months; full: --years years.
        #[arg(long, value_enum, default_value = "full")]
        scale: life::LifeScale,
        /// Years of life (full scale).
        #[arg(long, default_value_t = 10.0)]
        years: f64,
        /// Seconds of OwnTracks load on each store (0 skips the live-ingest comparison; needs `wrk`).
        #[arg(long, default_value_t = 10)]
        ingest_seconds: u32,
        /// More users who get the same life, so the store is that many times larger (4 with ten
        /// years: a store of 10 M points) while the browsing and ingest stay one user's.
        #[arg(long, default_value_t = 0)]
        other_users: u32,
    },
    /// PostgreSQL on this machine: import, bytes per point beside Traccar's table, live ingest
    /// through two nodes, the ten-year overview; each in a schema of its own, dropped afterwards.
    Postgres {
        /// The PostgreSQL server (the bench adds a search_path of its own schemas).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
        database_url: String,
        /// Size of the generated Records.json in MB (1 MB = 10^6 bytes).
        #[arg(long, alias = "size-mb", default_value_t = 1000)]
        mb: u64,
        /// Seconds of OwnTracks load per run (one device per node, then 32 phones); 0 skips it.
        #[arg(long, default_value_t = 10)]
        ingest_seconds: u32,
        /// The life of the overview: small (six months) or full (--years years).
        #[arg(long, value_enum, default_value = "full")]
        scale: life::LifeScale,
        /// Years of life (full scale).
        #[arg(long, default_value_t = 10.0)]
        years: f64,
        /// Timed overview requests (after one cold request).
        #[arg(long, default_value_t = 20)]
        runs: usize,
        /// Which parts to run (comma-separated): import (and bytes per point), ingest (two
        /// nodes, then the same loads on SQLite), overview.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "import,ingest,overview")]
        parts: Vec<postgres::Part>,
    },
    /// The encounter engine on the synthetic co-location set, against PostGIS's best plan.
    Encounters {
        /// Points to generate (100 per user, one day).
        #[arg(long, default_value_t = 1_000_000)]
        points: usize,
        /// Share of users who are index cases in the semi-join.
        #[arg(long, default_value_t = 0.01)]
        index_fraction: f64,
        /// Worker threads (0: every core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// D, metres.
        #[arg(long, default_value_t = 25.0)]
        distance_m: f64,
        /// T, seconds.
        #[arg(long, default_value_t = 300)]
        gap_s: i64,
        /// The generator's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A PostgreSQL server with PostGIS to compare with (load, index and query, end to end).
        #[arg(long)]
        postgis: Option<String>,
        /// Timed runs of each polo part (the best is quoted).
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
    /// Exposure status reads through `polo serve` with wrk: many users, signed codes, ETags.
    ExposureStatus {
        /// People, each with a device token and a signed status row.
        #[arg(long, default_value_t = 20_000)]
        users: usize,
        /// Share of them whose status is `exposed`.
        #[arg(long, default_value_t = 0.02)]
        exposed_fraction: f64,
        /// Seconds of measured load (after 3 s of warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u32,
        /// wrk's keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: u32,
    },
    /// The exposure batch end to end through the store: windows, watermark, rules, statuses, late data.
    ExposureBatch {
        /// People, 100 points a day each.
        #[arg(long, default_value_t = 10_000)]
        users: usize,
        /// Days of points (one window each).
        #[arg(long, default_value_t = 3)]
        days: u32,
        /// Share of users marked as cases.
        #[arg(long, default_value_t = 0.01)]
        case_fraction: f64,
        /// The rule's minimum exposure minutes (the synthetic set's people meet briefly: its
        /// points are spread over the whole day, so few contacts last the default 15 minutes).
        #[arg(long, default_value_t = 5.0)]
        min_minutes: f64,
        /// The generator's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The web app in headless Chromium: first map render, JS heap, long tasks over ten years.
    Web {
        /// Points of the generated user (within ten years).
        #[arg(long, default_value_t = 5_000_000)]
        points: u64,
        /// Browser runs, each in a fresh context (the first is a cold load).
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Build the store anew even if one with as many points exists.
        #[arg(long)]
        rebuild: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    std::fs::create_dir_all(&cli.work_dir)?;
    let work = std::fs::canonicalize(&cli.work_dir)?;
    match cli.command {
        Command::Import { size_mb, no_baseline } => run::import(&work, size_mb, !no_baseline),
        Command::Storage { points } => run::storage(&work, points),
        Command::Serve { seconds } => serve::serve(&work, seconds),
        Command::Timeline { points, no_baseline, no_map } => timeline::timeline(&work, points, !no_baseline, !no_map),
        Command::Geocode { lookups } => geocode::geocode(lookups),
        Command::Zones { zones, users, points } => zones::zones_bench(zones, users, points),
        Command::ZonesLive { users, devices, seconds, drain_seconds } => {
            zones_live::zones_live(&work, users, devices, seconds, drain_seconds)
        }
        Command::Map { days, runs } => map::map(&work, days, runs),
        Command::Photos { photos: count } => photos::photos(&work, count),
        Command::LiveDay { history_days, steps } => liveday::live_day(&work, history_days, steps),
        Command::Restore { points, rebuild, cold } => restore::restore(&work, points, rebuild, cold),
        Command::Replicate { points, rebuild, lag_seconds } => {
            replicate::replicate(&work, points, rebuild, lag_seconds)
        }
        Command::Life { out, manifest, scale, years, seed, start } => {
            life::life(&out, manifest, scale, years, seed, start)
        }
        Command::LifeBench { scale, years, ingest_seconds, other_users } => {
            lifebench::life_bench(&work, scale, years, ingest_seconds, other_users)
        }
        Command::Postgres { database_url, mb, ingest_seconds, scale, years, runs, parts } => {
            let options = postgres::Options { database_url, mb, ingest_seconds, scale, years, runs, parts };
            postgres::postgres(&work, &options)
        }
        Command::Encounters { points, index_fraction, threads, distance_m, gap_s, seed, postgis, runs } => {
            let options = encounters::Options {
                points,
                index_fraction,
                threads,
                max_distance_m: distance_m,
                max_gap_ms: gap_s.saturating_mul(1000),
                seed,
                postgis,
                runs,
            };
            encounters::encounters_bench(&options)
        }
        Command::ExposureStatus { users, exposed_fraction, seconds, connections } => {
            let options = exposure::StatusOptions { users, exposed_fraction, seconds, connections };
            exposure::status_bench(&work, &options)
        }
        Command::ExposureBatch { users, days, case_fraction, min_minutes, seed } => {
            let options = exposure::BatchOptions { users, days, case_fraction, min_minutes, seed };
            exposure::batch_bench(&work, &options)
        }
        Command::Web { points, runs, rebuild } => web::web(&work, points, runs, rebuild),
    }
}

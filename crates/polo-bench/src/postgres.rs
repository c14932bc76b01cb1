//! `polo-bench postgres`: polo on a PostgreSQL server on the same machine,
//! in one run, against the targets of the scale-out issue (17):
//!
//! 1. **Import**: the generated Records.json (`--mb`, 1 GB by default, the
//!    same file `polo-bench import` uses) with
//!    `polo --database-url … import`: points/s (≥ 300,000) and the import
//!    process's peak RSS (≤ 64 MB; the PostgreSQL server's memory is its
//!    own and not counted).
//! 2. **Bytes per point in PostgreSQL, indexes included** (≤ 40 B): the sum
//!    of `pg_total_relation_size` (heap, TOAST, indexes, free-space and
//!    visibility maps) over polo's tables in its schema, divided by the
//!    points in its chunks. Beside it, the same points (`polo export
//!    --format csv`) loaded with binary `COPY` into a row-per-point table
//!    shaped like Traccar's `tc_positions`, with Traccar's index on
//!    `(deviceid, fixtime)` created before the load as Traccar has it;
//!    every field polo keeps that has no column of its own goes into
//!    `attributes` as JSON, as Traccar does with its extra attributes.
//! 3. **OwnTracks live ingest through two nodes**: two `polo serve
//!    --database-url …` on one schema, each driven by its own `wrk` (the
//!    scripts of `polo-bench serve`) with half of the 32 keep-alive
//!    connections, first one device per node, then 32 phones (each its own
//!    user and token, 16 through each node). Points/s of both together
//!    (≥ 15,000) and p99 (≤ 10 ms): client-side the worse node's wrk p99,
//!    server-side from both nodes' `/metrics` histograms added up.
//!    Afterwards the nodes are stopped and the stored points counted. Then,
//!    in the same run, the same two loads (two `wrk`, 16 connections each)
//!    drive one `polo serve` on the embedded SQLite store, and the bench
//!    prints PostgreSQL's figures beside SQLite's as ratios: on a machine
//!    shared with other work the absolute rates move from run to run, the
//!    ratio much less.
//! 4. **The ten-year overview** (≤ 300 ms): the realistic life of
//!    `polo-life` (`polo-bench life`) imported, `polo serve` started and the
//!    timeline caught up, then `GET /api/v1/map/overview` over the whole
//!    history, timed as `polo-bench map` times it (p95 of `--runs` after a
//!    cold request).
//!
//! Each part runs in a fresh schema of its own (`polo_bench_PID_import`,
//! `_ingest`, `_life`; `options=-csearch_path%3D…` in the URL the `polo`
//! commands get), so that no part's background work (the timeline worker
//! catching up an import) runs during another's measurement. The schemas
//! are dropped at the end, also when a part failed. A part that fails is
//! reported as not measured and the run goes on with the next. `--parts`
//! runs only some of the four (`ingest` alone is live ingest and its SQLite
//! reference).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use base64::Engine as _;
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

use crate::life::LifeScale;
use crate::lifebench::{catch_up, fixture, history_span};
use crate::map::{TARGET_BYTES, Timed, mb, mib, rfc3339, timed, verdict};
use crate::run::{Instance, add_user, measure, polo_import, records_input};
use crate::serve::{
    Load, OWNTRACKS_LUA, OWNTRACKS_PHONES_LUA, PHONES, Server, WrkResult, bearer, merge_histograms, phone_tokens,
    phone_user, print_owntracks, server_histogram, server_percentiles, start, stored_points, wrk_all,
};
use crate::steal::StealMeter;

/// The targets, on this 2-core machine with PostgreSQL beside polo.
const TARGET_IMPORT_POINTS_PER_S: f64 = 300_000.0;
const TARGET_IMPORT_RSS_MB: f64 = 64.0;
const TARGET_BYTES_PER_POINT: f64 = 40.0;
const TARGET_INGEST_POINTS_PER_S: f64 = 15_000.0;
const TARGET_INGEST_P99_MS: f64 = 10.0;
const TARGET_OVERVIEW_MS: f64 = crate::map::TARGET_MS;

/// What `polo-bench postgres` is asked to do.
pub struct Options {
    /// The server, without a schema: `postgres://postgres@127.0.0.1:5432/test`.
    pub database_url: String,
    /// Size of the generated Records.json, MB.
    pub mb: u64,
    /// Seconds of OwnTracks load per run (0 skips live ingest).
    pub ingest_seconds: u32,
    /// The life of the overview part.
    pub scale: LifeScale,
    pub years: f64,
    /// Timed overview requests after the cold one.
    pub runs: usize,
    /// Which parts to run.
    pub parts: Vec<Part>,
}

/// The parts of the benchmark, for `--parts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Import, then bytes per point beside a Traccar-shaped table.
    Import,
    /// OwnTracks live ingest through two nodes, and the same on SQLite.
    Ingest,
    /// The ten-year overview.
    Overview,
}

/// A figure and its target, for the closing table.
struct Figure {
    name: &'static str,
    /// The measured value, or why it could not be measured.
    value: Result<f64, String>,
    unit: &'static str,
    target: f64,
    /// Whether the target is a floor (points/s) rather than a ceiling.
    at_least: bool,
}

impl Figure {
    fn new(name: &'static str, value: f64, unit: &'static str, target: f64, at_least: bool) -> Self {
        Self { name, value: Ok(value), unit, target, at_least }
    }

    fn pass(&self) -> bool {
        match self.value {
            Ok(v) if self.at_least => v >= self.target,
            Ok(v) => v <= self.target,
            Err(_) => false,
        }
    }

    fn line(&self) -> String {
        let sign = if self.at_least { "≥" } else { "≤" };
        let target = format!("target {sign} {} {}", thousands(self.target), self.unit);
        match &self.value {
            Ok(v) => format!(
                "{:<34} {:>12} {:<9} {target:<27} {:>6.2}× target  {}",
                self.name,
                thousands(*v),
                self.unit,
                v / self.target,
                verdict(self.pass())
            ),
            Err(why) => format!("{:<34} {:>12} {:<9} {target:<27} {:>7}         MISS ({why})", self.name, "—", "", "—"),
        }
    }
}

/// `1234567.8` → `1,234,568`; small values keep one decimal.
fn thousands(v: f64) -> String {
    if v.abs() < 1000.0 {
        return if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") };
    }
    let digits = format!("{v:.0}");
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits.as_str()), |d| ("-", d));
    let mut out = String::from(sign);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The schemas of one run, dropped (with everything in them) when this is dropped.
struct Schemas {
    admin: Client,
    names: Vec<String>,
}

impl Schemas {
    /// Creates schema `name` anew and returns the URL that puts polo's tables in it.
    fn create(&mut self, base_url: &str, name: &str) -> anyhow::Result<String> {
        self.admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))
            .with_context(|| format!("cannot create schema {name}"))?;
        self.names.push(name.to_owned());
        with_search_path(base_url, name)
    }
}

impl Drop for Schemas {
    fn drop(&mut self) {
        for name in &self.names {
            match self.admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE")) {
                Ok(()) => eprintln!("dropped schema {name}"),
                Err(e) => eprintln!("could not drop schema {name}: {e}"),
            }
        }
    }
}

/// `url` without polo's own parameters (`pool_size`, `live_writers`), which
/// the bench's own client does not know; the `polo` commands get them.
fn server_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let kept: Vec<&str> =
        query.split('&').filter(|p| !p.starts_with("pool_size=") && !p.starts_with("live_writers=")).collect();
    if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) }
}

/// `url` with `options=-csearch_path=SCHEMA` (URL-encoded) added.
fn with_search_path(url: &str, schema: &str) -> anyhow::Result<String> {
    if url.contains("options=") {
        bail!("--database-url already sets options=; give the server's URL without it (the bench sets search_path)");
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}options=-csearch_path%3D{schema}"))
}

/// A fresh, empty data directory (reject files, the node's config) for a
/// `polo` that keeps its store in PostgreSQL at `url`.
fn instance(work: &Path, name: &str, url: &str) -> anyhow::Result<Instance> {
    let data = work.join(name);
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&data)?;
    Ok(Instance { data, database_url: Some(url.to_owned()) })
}

/// Runs the whole benchmark.
pub fn postgres(work: &Path, options: &Options) -> anyhow::Result<()> {
    let admin = Client::connect(&server_url(&options.database_url), NoTls).with_context(|| {
        format!("cannot connect to PostgreSQL at {} (start it, or give --database-url)", options.database_url)
    })?;
    let mut schemas = Schemas { admin, names: Vec::new() };
    let server_version: String = schemas.admin.query_one("SHOW server_version", &[])?.get(0);
    let prefix = format!("polo_bench_{}", std::process::id());
    println!("PostgreSQL {server_version} at {}, schemas {prefix}_*", options.database_url);
    println!();
    let mut figures = Vec::new();

    // 1 and 2: import, then bytes per point beside a Traccar-shaped table.
    if options.parts.contains(&Part::Import) {
        let schema = format!("{prefix}_import");
        let url = schemas.create(&options.database_url, &schema)?;
        match import_and_bytes(work, options.mb, &url, &schema, &mut schemas.admin) {
            Ok(mut measured) => figures.append(&mut measured),
            Err(e) => {
                println!("import failed: {e:#}");
                let why = format!("{e:#}");
                figures.push(failed("import points/s", "points/s", TARGET_IMPORT_POINTS_PER_S, true, &why));
                figures.push(failed("import peak RSS", "MB", TARGET_IMPORT_RSS_MB, false, &why));
                figures.push(failed("bytes per point, indexes included", "B", TARGET_BYTES_PER_POINT, false, &why));
            }
        }
    }

    // 3: live ingest through two nodes.
    if options.ingest_seconds > 0 && options.parts.contains(&Part::Ingest) {
        println!();
        let url = schemas.create(&options.database_url, &format!("{prefix}_ingest"))?;
        match ingest(work, &url, options.ingest_seconds) {
            Ok(mut measured) => figures.append(&mut measured),
            Err(e) => {
                println!("live ingest failed: {e:#}");
                let why = format!("{e:#}");
                figures.push(failed("ingest, 32 phones", "points/s", TARGET_INGEST_POINTS_PER_S, true, &why));
                figures.push(failed("ingest p99, 32 phones (wrk)", "ms", TARGET_INGEST_P99_MS, false, &why));
            }
        }
    }

    // 4: the ten-year overview.
    if options.parts.contains(&Part::Overview) {
        println!();
        let url = schemas.create(&options.database_url, &format!("{prefix}_life"))?;
        match overview(work, &url, options) {
            Ok(figure) => figures.push(figure),
            Err(e) => {
                println!("overview failed: {e:#}");
                let why = format!("{e:#}");
                figures.push(failed("overview of the whole life, p95", "ms", TARGET_OVERVIEW_MS, false, &why));
            }
        }
    }

    println!();
    println!("PostgreSQL targets (issue 17), this run:");
    for figure in &figures {
        println!("  {}", figure.line());
    }
    let missed = figures.iter().filter(|f| !f.pass()).count();
    println!("  {} of {} met", figures.len() - missed, figures.len());
    drop(schemas);
    Ok(())
}

fn failed(name: &'static str, unit: &'static str, target: f64, at_least: bool, why: &str) -> Figure {
    let why = why.lines().next().unwrap_or(why).chars().take(120).collect();
    Figure { name, value: Err(why), unit, target, at_least }
}

/// Parts 1 and 2.
fn import_and_bytes(
    work: &Path,
    size_mb: u64,
    url: &str,
    schema: &str,
    admin: &mut Client,
) -> anyhow::Result<Vec<Figure>> {
    let input = records_input(work, size_mb)?;
    let bytes = std::fs::metadata(&input)?.len();
    let at = instance(work, "pg-import", url)?;
    add_user(&at, "bench")?;
    let steal = StealMeter::start();
    let (run, summary) = polo_import(work, &at, &input)?;
    let steal = steal.describe();
    let points = summary["points_added"].as_u64().unwrap_or(0);
    let rejected = summary["rejected"].as_u64().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let rate = points as f64 / run.seconds;
    let rss = mib(run.peak_rss_kb);
    println!("input            {} ({:.1} MB, {points} points stored, {rejected} rejected)", input.display(), mb(bytes));
    println!(
        "import           {:.2} s  {rate:>10.0} points/s  {:.1} MB/s  peak RSS of polo import {rss:.1} MB  ({steal})",
        run.seconds,
        mb(bytes) / run.seconds
    );

    let (tables, stored) = polo_relations(admin, schema)?;
    let total: u64 = tables.iter().map(|t| t.1).sum();
    #[allow(clippy::cast_precision_loss)]
    let per_point = total as f64 / stored.max(1) as f64;
    let parts: Vec<String> =
        tables.iter().filter(|t| t.1 >= 100_000).map(|(name, size)| format!("{name} {:.1} MB", mb(*size))).collect();
    println!(
        "polo in PostgreSQL {:.1} MB for {stored} points = {per_point:.1} B/point, indexes, TOAST and free-space maps included ({}; {} tables)",
        mb(total),
        parts.join(", "),
        tables.len()
    );
    let traccar = traccar_positions(&at, admin, schema)?;
    #[allow(clippy::cast_precision_loss)]
    let traccar_per_point = traccar.bytes as f64 / traccar.rows.max(1) as f64;
    #[allow(clippy::cast_precision_loss)]
    let attributes_per_point = traccar.attribute_bytes as f64 / traccar.rows.max(1) as f64;
    println!(
        "tc_positions       {:.1} MB for {} rows = {traccar_per_point:.1} B/point (table {:.1} MB, index on (deviceid, fixtime) {:.1} MB, primary key {:.1} MB; attributes {attributes_per_point:.1} B/point); COPY took {:.1} s",
        mb(traccar.bytes),
        traccar.rows,
        mb(traccar.heap),
        mb(traccar.fixtime_index),
        mb(traccar.primary_key),
        traccar.seconds
    );
    println!(
        "ratio              the row-per-point table takes {:.1}× polo's bytes per point",
        traccar_per_point / per_point.max(f64::MIN_POSITIVE)
    );
    Ok(vec![
        Figure::new("import points/s", rate, "points/s", TARGET_IMPORT_POINTS_PER_S, true),
        Figure::new("import peak RSS", rss, "MB", TARGET_IMPORT_RSS_MB, false),
        Figure::new("bytes per point, indexes included", per_point, "B", TARGET_BYTES_PER_POINT, false),
    ])
}

/// Every table of `schema` with its total size (heap, TOAST, indexes,
/// maps), largest first, and the points in polo's chunks.
fn polo_relations(admin: &mut Client, schema: &str) -> anyhow::Result<(Vec<(String, u64)>, u64)> {
    let rows = admin.query(
        "SELECT c.relname::text, pg_total_relation_size(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'm') ORDER BY 2 DESC",
        &[&schema],
    )?;
    let tables: Vec<(String, u64)> =
        rows.iter().map(|r| (r.get::<_, String>(0), u64::try_from(r.get::<_, i64>(1)).unwrap_or(0))).collect();
    let stored: i64 =
        admin.query_one(&format!("SELECT COALESCE(sum(n), 0)::int8 FROM {schema}.point_chunks"), &[])?.get(0);
    Ok((tables, u64::try_from(stored).unwrap_or(0)))
}

/// What loading the points into `tc_positions` took and left.
struct Traccar {
    rows: u64,
    seconds: f64,
    bytes: u64,
    heap: u64,
    fixtime_index: u64,
    primary_key: u64,
    attribute_bytes: u64,
}

/// Traccar's `tc_positions` (its columns for a position and its index on
/// `(deviceid, fixtime)`); `protocol`, `network` and `geofenceids` stay
/// out, as polo has nothing for them.
const TC_POSITIONS: &str = "CREATE TABLE {schema}.tc_positions (
    id BIGSERIAL PRIMARY KEY,
    deviceid INTEGER NOT NULL,
    servertime TIMESTAMP NOT NULL,
    devicetime TIMESTAMP NOT NULL,
    fixtime TIMESTAMP NOT NULL,
    valid BOOLEAN NOT NULL,
    latitude DOUBLE PRECISION NOT NULL,
    longitude DOUBLE PRECISION NOT NULL,
    altitude DOUBLE PRECISION NOT NULL,
    speed DOUBLE PRECISION NOT NULL,
    course DOUBLE PRECISION NOT NULL,
    address VARCHAR(512),
    accuracy DOUBLE PRECISION NOT NULL DEFAULT 0,
    attributes VARCHAR
);
CREATE INDEX position_deviceid_fixtime ON {schema}.tc_positions (deviceid, fixtime);";

/// Knots per metre per second: Traccar keeps speeds in knots.
const KNOTS_PER_M_S: f64 = 1.943_844;

/// Streams `polo export --format csv` of the bench user into a
/// Traccar-shaped `tc_positions` in `schema` with one binary `COPY`.
fn traccar_positions(at: &Instance, admin: &mut Client, schema: &str) -> anyhow::Result<Traccar> {
    admin.batch_execute(&TC_POSITIONS.replace("{schema}", schema))?;
    let started = Instant::now();
    let mut export = at
        .polo()?
        .args(["export", "--user", "bench", "--format", "csv"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start polo export")?;
    let mut reader = csv::Reader::from_reader(export.stdout.take().context("no stdout")?);
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h == name).with_context(|| format!("no {name} column"));
    let [time, lat, lon, altitude, accuracy, vertical, speed, course, battery, motion, device, extras] = [
        "time",
        "lat",
        "lon",
        "altitude",
        "accuracy",
        "vertical_accuracy",
        "speed",
        "course",
        "battery",
        "motion",
        "device",
        "extras",
    ]
    .map(column);
    let (time, lat, lon, device) = (time?, lat?, lon?, device?);
    let (altitude, accuracy, vertical, speed, course) = (altitude?, accuracy?, vertical?, speed?, course?);
    let (battery, motion, extras) = (battery?, motion?, extras?);

    let mut tx = admin.transaction()?;
    let sink = tx.copy_in(&format!(
        "COPY {schema}.tc_positions (deviceid, servertime, devicetime, fixtime, valid, latitude, longitude, \
         altitude, speed, course, accuracy, attributes) FROM STDIN BINARY"
    ))?;
    let types = [
        Type::INT4,
        Type::TIMESTAMP,
        Type::TIMESTAMP,
        Type::TIMESTAMP,
        Type::BOOL,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::FLOAT8,
        Type::VARCHAR,
    ];
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut devices: HashMap<String, i32> = HashMap::new();
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    let mut attributes = String::new();
    while reader.read_record(&mut record)? {
        let field = |i: usize| record.get(i).filter(|v| !v.is_empty());
        let number = |i: usize| field(i).and_then(|v| v.parse::<f64>().ok());
        let ms = polo_domain::time::parse_timestamp(field(time).context("a point without time")?)
            .map_err(|e| anyhow::anyhow!("polo export wrote a time it cannot read: {e}"))?
            .time
            .0;
        let at_time = system_time(ms);
        let next_id = i32::try_from(devices.len())? + 1;
        let device_id = *devices.entry(field(device).unwrap_or("").to_owned()).or_insert(next_id);
        attributes.clear();
        attributes.push('{');
        if let Some(v) = number(battery) {
            let _ = write!(attributes, "\"batteryLevel\":{v},");
        }
        if let Some(v) = field(motion) {
            let _ = write!(attributes, "\"activity\":{},", serde_json::Value::from(v));
        }
        if let Some(v) = number(vertical) {
            let _ = write!(attributes, "\"verticalAccuracy\":{v},");
        }
        if let Some(v) = field(extras) {
            let value: serde_json::Value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::from(v));
            let _ = write!(attributes, "\"extras\":{value},");
        }
        if attributes.ends_with(',') {
            attributes.pop();
        }
        attributes.push('}');
        writer.write(&[
            &device_id,
            &at_time,
            &at_time,
            &at_time,
            &true,
            &number(lat).context("a point without lat")?,
            &number(lon).context("a point without lon")?,
            &number(altitude).unwrap_or(0.0),
            &(number(speed).unwrap_or(0.0) * KNOTS_PER_M_S),
            &number(course).unwrap_or(0.0),
            &number(accuracy).unwrap_or(0.0),
            &attributes.as_str(),
        ])?;
        rows += 1;
    }
    writer.finish()?;
    tx.commit()?;
    let status = export.wait()?;
    if !status.success() {
        bail!("polo export failed with {status}");
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut size = |sql: String| -> anyhow::Result<u64> {
        let v: i64 = admin.query_one(&sql, &[])?.get(0);
        Ok(u64::try_from(v).unwrap_or(0))
    };
    let table = format!("'{schema}.tc_positions'::regclass");
    Ok(Traccar {
        rows,
        seconds,
        bytes: size(format!("SELECT pg_total_relation_size({table})"))?,
        heap: size(format!("SELECT pg_table_size({table})"))?,
        fixtime_index: size(format!("SELECT pg_relation_size('{schema}.position_deviceid_fixtime'::regclass)"))?,
        primary_key: size(format!("SELECT pg_relation_size('{schema}.tc_positions_pkey'::regclass)"))?,
        attribute_bytes: size(format!(
            "SELECT COALESCE(sum(pg_column_size(attributes)), 0)::int8 FROM {schema}.tc_positions"
        ))?,
    })
}

/// Milliseconds since the epoch as a `SystemTime` (what a `TIMESTAMP` binds from).
fn system_time(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 { UNIX_EPOCH + magnitude } else { UNIX_EPOCH - magnitude }
}

/// One load through both nodes: per-node lines, then both together.
struct Together {
    rate: f64,
    client_p99_ms: f64,
    server: Option<[f64; 3]>,
    answered: u64,
}

fn drive_both(
    work: &Path,
    nodes: [&Server; 2],
    script: &str,
    name: &str,
    args: [Vec<String>; 2],
    seconds: u32,
    label: &str,
) -> anyhow::Result<Together> {
    let route = "/api/owntracks";
    // Both loads may drive one server (the SQLite reference): count it once.
    let histogram = || -> anyhow::Result<Vec<(f64, u64)>> {
        let first = server_histogram(nodes[0], route)?;
        if std::ptr::eq(nodes[0], nodes[1]) {
            return Ok(first);
        }
        Ok(merge_histograms(&first, &server_histogram(nodes[1], route)?))
    };
    let before = histogram()?;
    let [args_a, args_b] = args;
    let loads = [
        Load { server: nodes[0], args: args_a, connections: 16 },
        Load { server: nodes[1], args: args_b, connections: 16 },
    ];
    let results: Vec<WrkResult> = wrk_all(work, script, name, &loads, seconds)?;
    let after = histogram()?;
    let mut rate = 0.0;
    for (node, result) in ["A", "B"].iter().zip(&results) {
        rate += print_owntracks(&format!("{label}, node {node}"), result);
    }
    let client_p99_ms = results.iter().map(|r| r.percentiles_ms[2]).fold(0.0, f64::max);
    let server = server_percentiles(&before, &after);
    let answered = results.iter().map(|r| r.requests - r.non_2xx).sum();
    let through = if std::ptr::eq(nodes[0], nodes[1]) { "through one node" } else { "through both nodes" };
    print!("{label:<16} {rate:>9.0} points/s {through}  p99 {client_p99_ms:.2} ms (wrk, the worse load)");
    match server {
        Some([p50, p99, p999]) => {
            println!("  inside polo p50 ≤ {p50:.2} ms  p99 ≤ {p99:.2} ms  p99.9 ≤ {p999:.2} ms (both /metrics)");
        }
        None => println!(),
    }
    Ok(Together { rate, client_p99_ms, server, answered })
}

/// Part 3.
fn ingest(work: &Path, url: &str, seconds: u32) -> anyhow::Result<Vec<Figure>> {
    let a = instance(work, "pg-node-a", url)?;
    let b = instance(work, "pg-node-b", url)?;
    add_user(&a, "bench")?;
    let device_a = bearer(&a, "bench", "phone-a")?;
    let device_b = bearer(&a, "bench", "phone-b")?;
    let phones = phone_tokens(&a)?;
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let base = (now_s - 60 * 86_400).to_string();
    let nodes = [start(&a)?, start(&b)?];
    std::thread::sleep(Duration::from_secs(2));
    println!("two polo serve nodes on one schema: A at {}, B at {}", nodes[0].addr, nodes[1].addr);

    let devices = drive_both(
        work,
        [&nodes[0], &nodes[1]],
        OWNTRACKS_LUA,
        "pg-owntracks",
        [vec![base.clone(), device_a], vec![base.clone(), device_b]],
        seconds,
        "one device each",
    )?;
    let half = PHONES / 2;
    let mut args_a = vec![base.clone()];
    args_a.extend(phones[..half].iter().cloned());
    let mut args_b = vec![base.clone()];
    args_b.extend(phones[half..].iter().cloned());
    let many = drive_both(
        work,
        [&nodes[0], &nodes[1]],
        OWNTRACKS_PHONES_LUA,
        "pg-owntracks-phones",
        [args_a, args_b],
        seconds,
        &format!("{PHONES} phones"),
    )?;
    drop(nodes);
    let mut stored = stored_points(&a, "bench")?;
    for i in 0..PHONES {
        stored += stored_points(&a, &phone_user(i))?;
    }
    println!(
        "stored           {stored} points (answered 2xx: {}; wrk may count requests cut off at the end)",
        devices.answered + many.answered
    );
    let reference = match sqlite_reference(work, &base, seconds) {
        Ok(reference) => Some(reference),
        Err(e) => {
            println!("the SQLite reference failed: {e:#}");
            None
        }
    };
    if let Some([one, phones]) = &reference {
        println!();
        println!("PostgreSQL (two nodes) against SQLite (one node), this run:");
        let phones_label = format!("{PHONES} phones");
        for (label, pg, lite) in [("one device per node", &devices, one), (phones_label.as_str(), &many, phones)] {
            println!(
                "  {label:<20} {:>9.0} / {:>9.0} points/s = {:.2}×   p99 {:.2} / {:.2} ms = {:.2}×",
                pg.rate,
                lite.rate,
                pg.rate / lite.rate,
                pg.client_p99_ms,
                lite.client_p99_ms,
                pg.client_p99_ms / lite.client_p99_ms
            );
        }
    }
    let mut figures = vec![
        Figure::new("ingest, one device per node", devices.rate, "points/s", TARGET_INGEST_POINTS_PER_S, true),
        Figure::new("ingest p99, one device per node (wrk)", devices.client_p99_ms, "ms", TARGET_INGEST_P99_MS, false),
    ];
    if let Some([_, p99, _]) = devices.server {
        figures.push(Figure::new("  same, inside polo (/metrics)", p99, "ms", TARGET_INGEST_P99_MS, false));
    }
    figures.push(Figure::new("ingest, 32 phones", many.rate, "points/s", TARGET_INGEST_POINTS_PER_S, true));
    figures.push(Figure::new("ingest p99, 32 phones (wrk)", many.client_p99_ms, "ms", TARGET_INGEST_P99_MS, false));
    if let Some([_, p99, _]) = many.server {
        figures.push(Figure::new("  same, inside polo (/metrics)", p99, "ms", TARGET_INGEST_P99_MS, false));
    }
    Ok(figures)
}

/// Part 3's reference: the same two loads, through one `polo serve` on a
/// fresh embedded SQLite store.
fn sqlite_reference(work: &Path, base: &str, seconds: u32) -> anyhow::Result<[Together; 2]> {
    println!();
    let data = crate::run::fresh_store(work, "pg-sqlite-reference")?;
    let one = [bearer(&data, "bench", "phone-a")?, bearer(&data, "bench", "phone-b")?];
    let phones = phone_tokens(&data)?;
    let node = start(&data)?;
    std::thread::sleep(Duration::from_secs(2));
    println!("the same loads through one polo serve on SQLite at {}", node.addr);
    let [device_a, device_b] = one;
    let devices = drive_both(
        work,
        [&node, &node],
        OWNTRACKS_LUA,
        "sqlite-owntracks",
        [vec![base.to_owned(), device_a], vec![base.to_owned(), device_b]],
        seconds,
        "one device each",
    )?;
    let half = PHONES / 2;
    let mut args_a = vec![base.to_owned()];
    args_a.extend(phones[..half].iter().cloned());
    let mut args_b = vec![base.to_owned()];
    args_b.extend(phones[half..].iter().cloned());
    let many = drive_both(
        work,
        [&node, &node],
        OWNTRACKS_PHONES_LUA,
        "sqlite-owntracks-phones",
        [args_a, args_b],
        seconds,
        &format!("{PHONES} phones"),
    )?;
    Ok([devices, many])
}

/// Part 4.
fn overview(work: &Path, url: &str, options: &Options) -> anyhow::Result<Figure> {
    let dir: PathBuf = fixture(work, options.scale, options.years)?;
    let at = instance(work, "pg-life", url)?;
    add_user(&at, "bench")?;
    let imported = measure(at.polo()?.args(["import", "--json", "--user", "bench"]).arg(&dir))?;
    let report: serde_json::Value = serde_json::from_str(imported.stdout.trim()).unwrap_or_default();
    println!(
        "life import      {} points in {:.1} s, peak RSS {:.1} MB ({})",
        report["points_added"].as_u64().unwrap_or(0),
        imported.seconds,
        mib(imported.peak_rss_kb),
        dir.display()
    );
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("bench:bench-password"));
    let server = start(&at)?;
    let (seconds, peak_kb) = catch_up(&server, &auth)?;
    println!("catch-up         {seconds:.1} s (RSS of polo serve up to {:.1} MB)", mib(peak_kb));
    let (oldest, newest) = history_span(&server.addr, &auth)?;
    const DAY_MS: i64 = 86_400_000;
    let (from, to) = (oldest.div_euclid(DAY_MS) * DAY_MS, (newest.div_euclid(DAY_MS) + 1) * DAY_MS);
    let path = format!("/api/v1/map/overview?from={}&to={}", rfc3339(from), rfc3339(to));
    let t: Timed = timed(&server.addr, &path, &auth, options.runs)?;
    let body: serde_json::Value = serde_json::from_slice(&t.body)?;
    #[allow(clippy::cast_precision_loss)]
    let years = (to - from) as f64 / (365.25 * DAY_MS as f64);
    println!(
        "overview {years:.1} y   cold {:6.1} ms  p50 {:6.1}  p95 {:6.1}  max {:6.1} ms  {:>9} bytes (≤ {} MB {})  level {} ({} points, {} segments)",
        t.cold_ms,
        t.p50_ms,
        t.p95_ms,
        t.max_ms,
        t.body.len(),
        TARGET_BYTES / 1_000_000,
        verdict(t.body.len() <= TARGET_BYTES),
        body["level"],
        body["points"],
        body["segments"].as_array().map_or(0, Vec::len),
    );
    Ok(Figure::new("overview of the whole life, p95", t.p95_ms, "ms", TARGET_OVERVIEW_MS, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_goes_into_the_url_as_a_search_path() {
        assert_eq!(
            with_search_path("postgres://postgres@127.0.0.1:5432/test", "s1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/test?options=-csearch_path%3Ds1"
        );
        assert_eq!(
            with_search_path("postgres://p@h/db?sslmode=disable", "s1").unwrap(),
            "postgres://p@h/db?sslmode=disable&options=-csearch_path%3Ds1"
        );
        assert!(with_search_path("postgres://p@h/db?options=-cwork_mem%3D1MB", "s1").is_err());
    }

    #[test]
    fn the_bench_s_own_client_gets_the_url_without_polo_s_parameters() {
        assert_eq!(server_url("postgres://u@h/db?live_writers=2"), "postgres://u@h/db");
        assert_eq!(server_url("postgres://u@h/db?sslmode=disable&pool_size=4"), "postgres://u@h/db?sslmode=disable");
        assert_eq!(server_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn figures_compare_with_their_target_in_its_direction() {
        assert!(Figure::new("rate", 300_000.0, "points/s", 300_000.0, true).pass());
        assert!(!Figure::new("rate", 299_999.0, "points/s", 300_000.0, true).pass());
        assert!(Figure::new("p99", 9.9, "ms", 10.0, false).pass());
        assert!(!Figure::new("p99", 10.1, "ms", 10.0, false).pass());
        assert!(!failed("p99", "ms", 10.0, false, "no server").pass());
        assert!(Figure::new("rate", 450_000.0, "points/s", 300_000.0, true).line().contains("1.50× target  PASS"));
    }

    #[test]
    fn large_numbers_get_thousands_separators() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(300_000.0), "300,000");
        assert_eq!(thousands(38.26), "38.3");
        assert_eq!(thousands(64.0), "64");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn times_before_and_after_the_epoch_bind_as_system_times() {
        assert_eq!(system_time(1_500), UNIX_EPOCH + Duration::from_millis(1_500));
        assert_eq!(system_time(-1_500), UNIX_EPOCH - Duration::from_millis(1_500));
    }
}

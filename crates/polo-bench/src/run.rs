//! Running the release `polo` binary and the Python baseline, measuring
//! wall time and peak RSS, and printing the figures against their targets.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::generate;
use crate::steal::StealMeter;

/// Targets from the foundation issue, on a 2-core machine.
const TARGET_POINTS_PER_S: f64 = 500_000.0;
const TARGET_PEAK_RSS_MB: f64 = 64.0;
const TARGET_RATIO: f64 = 50.0;
const TARGET_BYTES_PER_POINT: f64 = 24.0;

/// What one measured child process did.
pub(crate) struct Measured {
    pub(crate) seconds: f64,
    pub(crate) peak_rss_kb: u64,
    pub(crate) stdout: String,
}

pub fn polo_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let candidate = exe.with_file_name("polo");
    if candidate.exists() {
        return Ok(candidate);
    }
    bail!("cannot find the polo binary at {}; run `cargo build --release -p polo` first", candidate.display())
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs a command to completion, sampling its peak RSS.
pub(crate) fn measure(command: &mut Command) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().context("no stdout")?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let mut peak = 0;
    let status = loop {
        if let Some(kb) = vm_hwm_kb(pid) {
            peak = peak.max(kb);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let seconds = started.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap_or_default();
    // polo exits 1 when records were rejected, which a benchmark input may contain.
    if !status.success() && status.code() != Some(1) {
        bail!("{command:?} failed with {status}");
    }
    Ok(Measured { seconds, peak_rss_kb: peak, stdout })
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

#[allow(clippy::cast_precision_loss)]
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// Where the `polo` commands of a bench keep their data: a data directory
/// (the embedded store's file, reject files), and the store named by
/// `--database-url` when it is not the embedded one.
#[derive(Debug, Clone)]
pub(crate) struct Instance {
    pub(crate) data: PathBuf,
    pub(crate) database_url: Option<String>,
}

impl Instance {
    /// `polo --data-dir DATA [--database-url URL]`, ready for a subcommand.
    pub(crate) fn polo(&self) -> anyhow::Result<Command> {
        let mut command = Command::new(polo_binary()?);
        command.arg("--data-dir").arg(&self.data);
        if let Some(url) = &self.database_url {
            command.arg("--database-url").arg(url);
        }
        Ok(command)
    }
}

impl From<&Path> for Instance {
    fn from(data: &Path) -> Self {
        Self { data: data.to_owned(), database_url: None }
    }
}

impl From<&PathBuf> for Instance {
    fn from(data: &PathBuf) -> Self {
        Self::from(data.as_path())
    }
}

impl From<&Instance> for Instance {
    fn from(instance: &Instance) -> Self {
        instance.clone()
    }
}

/// Creates a fresh data dir with a user `bench`.
pub fn fresh_store(work: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = work.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    add_user(&dir, "bench")?;
    Ok(dir)
}

/// `polo user add NAME` on the instance `at`, with the bench's password.
pub(crate) fn add_user(at: impl Into<Instance>, name: &str) -> anyhow::Result<()> {
    let mut child = at
        .into()
        .polo()?
        .args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(b"bench-password\n")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("polo user add {name} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// `polo import --user bench --json INPUT` into `at`, measured.
pub(crate) fn polo_import(
    work: &Path,
    at: impl Into<Instance>,
    input: &Path,
) -> anyhow::Result<(Measured, serde_json::Value)> {
    let run = measure(at.into().polo()?.args(["import", "--user", "bench", "--json"]).arg(input).current_dir(work))?;
    let summary: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).context("polo import did not print a JSON summary")?;
    Ok((run, summary))
}

const BASELINE_PY: &str = r#"
import json, sqlite3, sys, time
from datetime import datetime
import ijson

path, db = sys.argv[1], sys.argv[2]
start = time.perf_counter()
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("CREATE TABLE IF NOT EXISTS points (ts INTEGER PRIMARY KEY, lat INTEGER, lon INTEGER, acc INTEGER)")

def e7(v):
    return v - 4294967296 if v > 1800000000 else v

batch, n = [], 0
with open(path, "rb") as f:
    for rec in ijson.items(f, "locations.item", use_float=True):
        if "timestampMs" in rec:
            ts = int(rec["timestampMs"])
        else:
            ts = int(datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
        batch.append((ts, e7(rec["latitudeE7"]), e7(rec["longitudeE7"]), rec.get("accuracy")))
        n += 1
        if len(batch) >= 10000:
            con.executemany("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)", batch)
            batch.clear()
con.executemany("INSERT OR IGNORE INTO points VALUES (?, ?, ?, ?)", batch)
con.commit()
print(json.dumps({"points": n, "seconds": time.perf_counter() - start, "backend": ijson.backend}))
"#;

/// The same job as polo: every column polo has, the most probable activity,
/// and every other field kept as JSON, keyed by (device, time).
const BASELINE_FULL_PY: &str = r#"
import json, sqlite3, sys, time
from datetime import datetime
import ijson

path, db = sys.argv[1], sys.argv[2]
start = time.perf_counter()
con = sqlite3.connect(db)
con.execute("PRAGMA journal_mode=WAL")
con.execute("PRAGMA synchronous=NORMAL")
con.execute("""CREATE TABLE IF NOT EXISTS points (device TEXT, ts INTEGER, lat INTEGER, lon INTEGER,
    acc INTEGER, alt INTEGER, vacc INTEGER, speed REAL, heading INTEGER, motion TEXT, extras TEXT,
    PRIMARY KEY (device, ts))""")
COLUMNS = {"latitudeE7", "longitudeE7", "timestamp", "timestampMs", "accuracy", "altitude",
           "verticalAccuracy", "velocity", "heading"}

def e7(v):
    return v - 4294967296 if v > 1800000000 else v

def motion(rec):
    acts = rec.get("activity") or rec.get("activitys")
    if not acts:
        return None
    inner = acts[0].get("activity") or acts[0].get("activities") or []
    best = max(inner, key=lambda a: a.get("confidence", 0), default=None)
    return best and best.get("type")

batch, n = [], 0
with open(path, "rb") as f:
    for rec in ijson.items(f, "locations.item", use_float=True):
        if "timestamp" in rec:
            ts = int(datetime.fromisoformat(rec["timestamp"].replace("Z", "+00:00")).timestamp() * 1000)
        else:
            ts = int(rec["timestampMs"])
        extras = {k: v for k, v in rec.items() if k not in COLUMNS}
        batch.append((str(rec.get("deviceTag", "")), ts, e7(rec["latitudeE7"]), e7(rec["longitudeE7"]),
                      rec.get("accuracy"), rec.get("altitude"), rec.get("verticalAccuracy"), rec.get("velocity"),
                      rec.get("heading"), motion(rec), json.dumps(extras, separators=(",", ":"))))
        n += 1
        if len(batch) >= 10000:
            con.executemany("INSERT OR IGNORE INTO points VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
            batch.clear()
con.executemany("INSERT OR IGNORE INTO points VALUES (?,?,?,?,?,?,?,?,?,?,?)", batch)
con.commit()
print(json.dumps({"points": n, "seconds": time.perf_counter() - start, "backend": ijson.backend}))
"#;

fn python_venv(work: &Path) -> anyhow::Result<PathBuf> {
    let venv = work.join("venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("creating the baseline venv (ijson from PyPI)…");
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?.success();
        if !ok {
            bail!("python3 -m venv failed");
        }
    }
    let ok = Command::new(venv.join("bin/pip")).args(["install", "--quiet", "ijson>=3.2"]).status()?.success();
    if !ok {
        bail!("pip install ijson failed");
    }
    Ok(python)
}

/// The generated Records.json of `size_mb` MB in `work`, written unless it is there already.
pub(crate) fn records_input(work: &Path, size_mb: u64) -> anyhow::Result<PathBuf> {
    let input = work.join(format!("records-{size_mb}MB.json"));
    if !input.exists() {
        eprintln!("generating {} …", input.display());
        let records = generate::records_json(&input, size_mb * 1_000_000, 42)?;
        eprintln!("  {records} records");
    }
    Ok(input)
}

pub fn import(work: &Path, size_mb: u64, baseline: bool) -> anyhow::Result<()> {
    let input = records_input(work, size_mb)?;
    let bytes = std::fs::metadata(&input)?.len();
    let data = fresh_store(work, "store-import")?;
    let steal = StealMeter::start();
    let (run, summary) = polo_import(work, &data, &input)?;
    let steal = steal.describe();
    let points = summary["points_added"].as_u64().unwrap_or(0);
    let rejected = summary["rejected"].as_u64().unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let points_per_s = points as f64 / run.seconds;
    let bytes_per_s = mb(bytes) / run.seconds;
    #[allow(clippy::cast_precision_loss)]
    let rss_mb = run.peak_rss_kb as f64 / 1024.0;
    let db_bytes = std::fs::metadata(data.join("polo.sqlite")).map(|m| m.len()).unwrap_or(0);
    println!("input            {} ({:.1} MB, {points} points stored, {rejected} rejected)", input.display(), mb(bytes));
    println!(
        "polo import      {:.2} s  {points_per_s:>10.0} points/s  {bytes_per_s:.1} MB/s  peak RSS {rss_mb:.1} MB  ({steal})",
        run.seconds
    );
    #[allow(clippy::cast_precision_loss)]
    let per_point = if points > 0 { db_bytes as f64 / points as f64 } else { 0.0 };
    println!(
        "store on disk    {:.1} MB, {per_point:.1} bytes/point (extras such as Wi-Fi scans included)",
        mb(db_bytes)
    );
    let mut ratio = None;
    if baseline {
        let python = python_venv(work)?;
        let baselines = [
            ("python baseline", BASELINE_PY, "4 columns, the issue's baseline"),
            ("python, same job", BASELINE_FULL_PY, "every column + extras, like polo"),
        ];
        for (index, (label, script_text, what)) in baselines.into_iter().enumerate() {
            let script = work.join(format!("baseline-{index}.py"));
            std::fs::write(&script, script_text)?;
            let db = work.join(format!("baseline-{index}.sqlite"));
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(PathBuf::from(format!("{}{suffix}", db.display())));
            }
            let steal = StealMeter::start();
            let py = measure(Command::new(&python).arg(&script).arg(&input).arg(&db))?;
            let steal = steal.describe();
            let out: serde_json::Value = serde_json::from_str(py.stdout.trim()).context("baseline printed no JSON")?;
            let py_points = out["points"].as_u64().unwrap_or(0);
            #[allow(clippy::cast_precision_loss)]
            let py_rate = py_points as f64 / py.seconds;
            #[allow(clippy::cast_precision_loss)]
            let py_rss = py.peak_rss_kb as f64 / 1024.0;
            println!(
                "{label:<16} {:.2} s  {py_rate:>10.0} points/s  {:.1} MB/s  peak RSS {py_rss:.1} MB  (ijson {} + sqlite3 executemany; {what}; {steal})",
                py.seconds,
                mb(bytes) / py.seconds,
                out["backend"].as_str().unwrap_or("?")
            );
            println!("ratio            {:.1}x {label}", points_per_s / py_rate);
            if index == 0 {
                ratio = Some(points_per_s / py_rate);
            }
        }
    }
    if let Some(r) = ratio {
        let needed = points_per_s / r * TARGET_RATIO;
        #[allow(clippy::cast_precision_loss)]
        let needed_mb_s = needed * mb(bytes) / points.max(1) as f64;
        let seconds = json_ceiling(&input)?;
        #[allow(clippy::cast_precision_loss)]
        let ceiling = points as f64 / seconds;
        println!(
            "json ceiling     {seconds:.2} s  {ceiling:>10.0} points/s  {:.1} MB/s  (serde_json only validating the file in memory, one core, nothing stored)",
            mb(bytes) / seconds
        );
        println!(
            "{TARGET_RATIO}x baseline    would need {needed:.0} points/s = {needed_mb_s:.0} MB/s of JSON: {:.1}x the one-core ceiling",
            needed / ceiling
        );
    }
    println!();
    println!("target ≥ {TARGET_POINTS_PER_S:.0} points/s      {}", verdict(points_per_s >= TARGET_POINTS_PER_S));
    println!("target peak RSS ≤ {TARGET_PEAK_RSS_MB} MB      {}", verdict(rss_mb <= TARGET_PEAK_RSS_MB));
    if let Some(r) = ratio {
        println!("target ≥ {TARGET_RATIO}x Python           {}", verdict(r >= TARGET_RATIO));
    }
    Ok(())
}

/// The least any importer must do with the input: read it as JSON. Times
/// serde_json validating the whole file from memory (one core, no values
/// built, nothing stored), the ceiling for an importer on one core, so
/// that the ratio target can be judged against the machine.
fn json_ceiling(input: &Path) -> anyhow::Result<f64> {
    let text = std::fs::read(input)?;
    let started = Instant::now();
    let raw: &serde_json::value::RawValue = serde_json::from_slice(&text).context("the input is not JSON")?;
    std::hint::black_box(raw);
    Ok(started.elapsed().as_secs_f64())
}

pub fn storage(work: &Path, points: u64) -> anyhow::Result<()> {
    let input = work.join(format!("phone-{points}.csv"));
    if !input.exists() {
        eprintln!("generating {} …", input.display());
        generate::phone_history_csv(&input, points, 7)?;
    }
    let data = fresh_store(work, "store-phone")?;
    let (run, summary) = polo_import(work, &data, &input)?;
    let stored = summary["points_added"].as_u64().unwrap_or(0);
    let db_bytes = std::fs::metadata(data.join("polo.sqlite"))?.len();
    #[allow(clippy::cast_precision_loss)]
    let per_point = db_bytes as f64 / stored.max(1) as f64;
    println!(
        "input            {} ({stored} points: time, lat, lon, altitude, accuracy, speed, course, battery)",
        input.display()
    );
    println!(
        "store on disk    {:.2} MB = {per_point:.2} bytes/point  (import took {:.2} s)",
        mb(db_bytes),
        run.seconds
    );
    println!("target ≤ {TARGET_BYTES_PER_POINT} bytes/point   {}", verdict(per_point <= TARGET_BYTES_PER_POINT));
    Ok(())
}

//! `polo-bench restore`: restore-to-ready of an instance with N points
//! (default 10 million), against the 30 s target of the backups issue.
//!
//! Setup (not timed): a data directory made by the release `polo` (`polo
//! user add`, `polo token create`), N fixes of a synthetic phone history
//! (`polo_timeline::synthetic`) inserted in-process in large batches, the
//! derived timeline computed to completion by `polo_derived::Engine` (what
//! `polo serve`'s worker would do), and the reference answer of one day's
//! timeline from `polo serve` on that directory. Then `polo backup` to a
//! local directory.
//!
//! Timed: `polo restore` into a new data directory, `polo serve` on it,
//! `/readyz` answering 200, and the first `GET /api/v1/timeline/day` whose
//! body equals the reference (non-empty entries), each phase and the total.
//! Exits non-zero when the total misses the target.
//!
//! The source directory is kept and reused by later runs with the same N
//! (`--rebuild` forces a new one): generating and deriving 10 M points takes
//! minutes, restoring it should take seconds. The backup is read from local
//! disk, from the page cache unless `--cold` empties it first (Linux, root);
//! from an object store add the transfer of the backup's size at the link's
//! speed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use polo_derived::Engine;
use polo_domain::{Fix, SourceFormat};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;
use polo_timeline::synthetic::SyntheticTrack;

use crate::run::{fresh_store, polo_binary};

/// Restore start to the first correct timeline answer.
const TARGET_SECONDS: f64 = 30.0;

/// Points per `insert_points` call (one transaction each).
const BATCH: usize = 200_000;

/// One GET with `Connection: close`: status and body.
pub(crate) fn get(addr: &str, path: &str, auth: Option<&str>) -> anyhow::Result<(u16, String)> {
    let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"))
}

/// One POST of a JSON body with `Connection: close`: the status and the body.
pub(crate) fn post_json(addr: &str, path: &str, auth: &str, body: &str) -> anyhow::Result<(u16, String)> {
    exchange(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// Sends one request and reads the answer to the end: status and (de-chunked) body.
fn exchange(addr: &str, request: &str) -> anyhow::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

fn polo(data: &Path) -> anyhow::Result<Command> {
    let mut command = Command::new(polo_binary()?);
    command.arg("--data-dir").arg(data).env("POLO_LOG", "warn");
    Ok(command)
}

fn run_json(command: &mut Command) -> anyhow::Result<serde_json::Value> {
    let out = command.stderr(Stdio::inherit()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed with {}", out.status);
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("{command:?} printed no JSON"))
}

/// What the setup leaves for the timed part.
pub(crate) struct Source {
    pub(crate) data: PathBuf,
    bearer: String,
    /// `/api/v1/timeline/day?date=…` of a day in the middle of the history.
    day_path: String,
}

pub(crate) fn build_source(work: &Path, points: usize, rebuild: bool) -> anyhow::Result<Source> {
    let data = work.join(format!("restore-source-{points}"));
    let marker = data.join("bench-source.json");
    if !rebuild && let Ok(text) = std::fs::read_to_string(&marker) {
        let saved: serde_json::Value = serde_json::from_str(&text)?;
        if let (Some(bearer), Some(day_path)) = (saved["bearer"].as_str(), saved["day_path"].as_str()) {
            eprintln!("reusing {} (pass --rebuild for a new one)", data.display());
            return Ok(Source { data, bearer: bearer.to_owned(), day_path: day_path.to_owned() });
        }
    }
    let started = Instant::now();
    let data = fresh_store(work, &format!("restore-source-{points}"))?;
    let token = Command::new(polo_binary()?)
        .arg("--data-dir")
        .arg(&data)
        .args(["token", "create", "--user", "bench", "--device", "phone"])
        .output()?;
    let bearer = format!("Bearer {}", String::from_utf8(token.stdout)?.trim());
    let store = Arc::new(SqliteStore::open(data.join("polo.sqlite"))?);
    let user = store.user_by_name("bench")?.context("no user bench")?.id;
    let device = store.ensure_device(user, "phone")?.id;
    let mut track = SyntheticTrack::new(2024);
    let (mut inserted, mut pending, mut middle) = (0usize, Vec::with_capacity(BATCH), None);
    while inserted < points {
        track = track.days(1);
        for p in std::mem::take(&mut track.points) {
            if inserted + pending.len() == points {
                break;
            }
            if middle.is_none() && inserted + pending.len() == points / 2 {
                middle = Some((p.time, p.utc_offset_minutes.unwrap_or(0)));
            }
            let mut fix = Fix::new(p.time, p.coord, SourceFormat::Unknown);
            fix.utc_offset_minutes = p.utc_offset_minutes;
            pending.push(fix);
            if pending.len() == BATCH {
                store.insert_points(user, device, &pending)?;
                inserted += pending.len();
                pending.clear();
            }
        }
        if inserted + pending.len() == points && !pending.is_empty() {
            store.insert_points(user, device, &pending)?;
            inserted += pending.len();
            pending.clear();
        }
    }
    eprintln!("inserted {inserted} points in {:.1} s", started.elapsed().as_secs_f64());
    let derive = Instant::now();
    let engine = Engine::new(store.clone() as Arc<dyn Store>, None);
    loop {
        let step = engine.catch_up()?;
        if step.changes == 0 {
            break;
        }
    }
    eprintln!(
        "derived the timeline in {:.1} s (cursor {} of {})",
        derive.elapsed().as_secs_f64(),
        engine.cursor()?.0,
        store.last_seq()?.0
    );
    drop(engine);
    drop(store);
    let (time, offset) = middle.context("no middle point")?;
    let (y, m, d, ..) = time.civil(offset);
    let day_path = format!("/api/v1/timeline/day?date={y:04}-{m:02}-{d:02}");
    std::fs::write(&marker, serde_json::json!({"bearer": bearer, "day_path": day_path}).to_string())?;
    Ok(Source { data, bearer, day_path })
}

fn is_correct(status: u16, body: &str, reference: &str) -> bool {
    status == 200 && body == reference
}

/// Writes dirty pages and empties the kernel's page cache (Linux, root).
fn drop_page_cache() -> anyhow::Result<()> {
    let synced = Command::new("sync").status().context("cannot run sync")?;
    if !synced.success() {
        bail!("sync failed");
    }
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
        .context("cannot drop the page cache (needs root on Linux); run without --cold")
}

pub fn restore(work: &Path, points: usize, rebuild: bool, cold: bool) -> anyhow::Result<()> {
    let source = build_source(work, points, rebuild)?;
    // The reference answer, from the source itself.
    let reference = {
        let server = crate::serve::start(&source.data)?;
        let (status, body) = get(&server.addr, &source.day_path, Some(&source.bearer))?;
        let entries =
            serde_json::from_str::<serde_json::Value>(&body).ok().and_then(|v| v["entries"].as_array().map(Vec::len));
        if status != 200 || entries.unwrap_or(0) == 0 {
            bail!("the source answers {status} with no entries for {}: {body}", source.day_path);
        }
        eprintln!("reference: {} has {} entries", source.day_path, entries.unwrap_or(0));
        body
    };
    let backups = work.join(format!("restore-backups-{points}"));
    if backups.exists() {
        std::fs::remove_dir_all(&backups)?;
    }
    let backup_started = Instant::now();
    let backup = run_json(polo(&source.data)?.args(["backup", "--json", "--to"]).arg(&backups))?;
    let backup_seconds = backup_started.elapsed().as_secs_f64();
    let size = backup["size"].as_u64().unwrap_or(0);
    let stored: u64 = walk_size(&backups)?;
    let restored = work.join(format!("restore-target-{points}"));
    if restored.exists() {
        std::fs::remove_dir_all(&restored)?;
    }

    if cold {
        drop_page_cache()?;
    }

    // Timed from here.
    let started = Instant::now();
    let report = run_json(polo(&restored)?.args(["restore", "--json", "--from"]).arg(&backups))?;
    let restore_done = started.elapsed().as_secs_f64();
    let server = crate::serve::start(&restored)?;
    let listening = started.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ready = loop {
        if let Ok((200, _)) = get(&server.addr, "/readyz", None) {
            break started.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            bail!("/readyz did not answer 200 within 120 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let answered = loop {
        let (status, body) = get(&server.addr, &source.day_path, Some(&source.bearer))?;
        if is_correct(status, &body, &reference) {
            break started.elapsed().as_secs_f64();
        }
        if Instant::now() > deadline {
            bail!("no correct timeline answer within 120 s (last: {status} {body})");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(server);

    #[allow(clippy::cast_precision_loss)]
    let mb = |b: u64| b as f64 / 1e6;
    println!("restore-to-ready, {points} points{}", if cold { ", page cache dropped first" } else { "" });
    println!(
        "  database            {:>9.1} MB, backup {:.1} MB in {} blocks (polo backup: {backup_seconds:.1} s)",
        mb(size),
        mb(stored),
        backup["blocks"]
    );
    println!(
        "  polo restore        {restore_done:>9.2} s  ({:.0} MB/s; new epoch {})",
        mb(size) / restore_done.max(1e-9),
        report["epoch"].as_str().unwrap_or("?")
    );
    println!("  polo serve listening{listening:>9.2} s");
    println!("  /readyz 200         {ready:>9.2} s");
    println!("  first correct day   {answered:>9.2} s  ({})", source.day_path);
    let ok = answered <= TARGET_SECONDS;
    println!(
        "  total               {answered:>9.2} s  target <= {TARGET_SECONDS:.0} s  {}",
        if ok { "PASS" } else { "MISS" }
    );
    if !ok {
        bail!("restore-to-ready took {answered:.1} s, over the {TARGET_SECONDS:.0} s target");
    }
    Ok(())
}

fn walk_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { walk_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

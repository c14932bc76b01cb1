//! `polo-bench exposure-status` and `polo-bench exposure-batch`: the two
//! exposure paths the issue wants optimised apart, each measured end to end
//! through the store (`docs/exposure.md`).
//!
//! **Status reads** (`exposure-status`): a store with `--users` people, each
//! with a phone's device token and a real signed status row (a share of them
//! `exposed`), written with the instance's key the way the batch writes
//! them. The release `polo serve` then answers `GET /api/v1/exposure/status`
//! under wrk, every request as another person (pseudo-random order, so
//! nothing is served twice in a row from one connection), first for a few
//! seconds to warm up, then measured. Before the load a sample of answers is
//! checked: the code verifies with the instance's public key and states the
//! user and status that were written. Prints requests/s, latency percentiles
//! (wrk's and the server's own), server CPU per request and RSS against the
//! target: ≥ 20,000 requests/s, p99 ≤ 5 ms.
//!
//! **The batch** (`exposure-batch`): `--users` people × `--days` days of the
//! synthetic co-location set (`encounters::synth`, 100 points a day each in
//! a 20 × 20 km square, 70 % at favourite places) stored through the
//! embedded store, `--case-fraction` of them marked as cases with the
//! authority's workflow, then the batch exactly as the server's worker runs
//! it, timed by phase: planning (the watermark, and the change log from the
//! start), computing every complete window (reading everyone's points back
//! from the store, the semi-join per case, writing contacts), the rules
//! (proposals), and the first status rows for everybody (signing). Then a
//! late point for a closed window: only that window is computed again, and
//! a second run changes nothing. Peak RSS is this process's.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use polo_domain::{Fix, SourceFormat, Timestamp};
use polo_exposure::model::{CONTACT, STATUS, Status, StatusRow, put};
use polo_exposure::settings::Settings;
use polo_exposure::signing::{self, Signer};
use polo_exposure::{batch, windows, workflow};
use polo_store::{RecordQuery, Role, Store, TokenGrant};
use polo_store_sqlite::SqliteStore;
use sha2::{Digest, Sha256};

use crate::encounters::synth;
use crate::map::{get, mib, verdict};
use crate::run::fresh_store;
use crate::serve::{print_server_side, server_histogram, start, status_kb, wrk};
use crate::steal::StealMeter;

const TARGET_READS_PER_S: f64 = 20_000.0;
const TARGET_P99_MS: f64 = 5.0;
const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const ROUTE: &str = "/api/v1/exposure/status";

/// What `polo-bench exposure-status` is asked to do.
pub struct StatusOptions {
    pub users: usize,
    pub exposed_fraction: f64,
    pub seconds: u32,
    pub connections: u32,
}

/// wrk script: every request another person's token (read from the file given as the first
/// argument), in a pseudo-random order that differs between wrk's two threads.
const STATUS_LUA: &str = r#"
function init(args)
  auths = {}
  for line in io.lines(args[1]) do auths[#auths + 1] = "Bearer " .. line end
  n = #auths
end
function request()
  counter = counter + 1
  local i = (counter * 7919 + lane * 104729) % n
  return wrk.format("GET", "/api/v1/exposure/status", {["Authorization"] = auths[i + 1]})
end
"#;

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn share_of(n: usize, fraction: f64) -> usize {
    ((n as f64) * fraction).round() as usize
}

pub fn status_bench(work: &Path, options: &StatusOptions) -> anyhow::Result<()> {
    if options.users == 0 || !(0.0..=1.0).contains(&options.exposed_fraction) {
        bail!("--users must be at least 1 and --exposed-fraction between 0 and 1");
    }
    let data = fresh_store(work, "store-exposure-status")?;
    let store = SqliteStore::open(data.join("polo.sqlite"))?;
    let started = Instant::now();
    let now = polo_store::clock::now();
    let signer = Signer::load_or_create(&store, now)?;
    let exposed = share_of(options.users, options.exposed_fraction);
    let mut tokens = Vec::with_capacity(options.users);
    let mut users = Vec::with_capacity(options.users);
    let mut rows = Vec::with_capacity(1_000);
    for i in 0..options.users {
        // Nobody logs in with a password here: an unusable hash.
        let user = store.create_user(&format!("person-{i:06}"), "!", false)?;
        let device = store.ensure_device(user.id, "phone")?;
        let token = format!("bench-status-{i:06}-{}", polo_store::clock::new_random_id());
        store.create_token(user.id, device.id, "exposure bench", &sha256(&token), TokenGrant::default())?;
        tokens.push(token);
        // The exposed are spread over the users: every `every`-th, `exposed` of them.
        let every = (options.users / exposed.max(1)).max(1);
        let is_exposed = exposed > 0 && i % every == 0 && i / every < exposed;
        let (status, since, until) = if is_exposed {
            (Status::Exposed, now.0 - 2 * DAY_MS, now.0 + 12 * DAY_MS)
        } else {
            (Status::Clear, now.0 - HOUR_MS, now.0 + 23 * HOUR_MS)
        };
        let row = workflow::status_row(&signer, user.id.0, status, since, until, now);
        rows.push(put(STATUS, StatusRow::key(user.id), Some(user.id.0), row.updated, &row));
        users.push((user.id, status));
        if rows.len() == 1_000 {
            store.write_records(&rows)?;
            rows.clear();
        }
    }
    store.write_records(&rows)?;
    store.set_instance_setting("exposure.enabled", Some("true"))?;
    let exposed_count = users.iter().filter(|u| u.1 == Status::Exposed).count();
    println!(
        "input            {} users, each with a device token and a signed status row ({exposed_count} exposed), \
         stored in {:.1} s",
        options.users,
        started.elapsed().as_secs_f64()
    );
    drop(store);
    let tokens_file = work.join("exposure-status-tokens.txt");
    let mut file = std::fs::File::create(&tokens_file)?;
    for token in &tokens {
        writeln!(file, "{token}")?;
    }
    drop(file);

    let server = start(&data)?;
    let idle_kb = status_kb(server.child.id(), "VmRSS:").unwrap_or(0);
    // The answers are what was written, and their codes verify with the instance's key.
    let key = signer.public_key().to_vec();
    let step = (options.users / 50).max(1);
    let mut checked = 0;
    for (i, (user, status)) in users.iter().enumerate().filter(|(i, u)| i % step == 0 || u.1 == Status::Exposed) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let body = loop {
            let (_, code, body) = get(&server.addr, ROUTE, &format!("Bearer {}", tokens[i]))?;
            if code == 200 {
                break body;
            }
            if Instant::now() > deadline {
                bail!("GET {ROUTE} for user {} answered {code}: {}", user.0, String::from_utf8_lossy(&body));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let answer: serde_json::Value = serde_json::from_slice(&body)?;
        let code = answer["code"].as_str().context("no code in the answer")?;
        let claim = signing::verify(&key, code).map_err(|e| anyhow::anyhow!("user {}'s code: {e}", user.0))?;
        if claim.user != user.0 || claim.status != *status || answer["status"] != status.name() {
            bail!("user {} was written {status:?} but is served {answer}", user.0);
        }
        checked += 1;
    }
    println!("checked          {checked} answers: each the row written for its user, each code verifies");

    let args = vec![tokens_file.display().to_string()];
    let warm = wrk(work, &server, STATUS_LUA, "exposure-status", &args, 3, options.connections)?;
    #[allow(clippy::cast_precision_loss)]
    let warm_rate = (warm.requests - warm.non_2xx) as f64 / warm.seconds;
    println!(
        "warm-up          {warm_rate:>9.0} requests/s over 3 s ({} requests, {} non-2xx; the first read of each user goes to the store)",
        warm.requests, warm.non_2xx
    );
    let before = server_histogram(&server, ROUTE)?;
    let run = wrk(work, &server, STATUS_LUA, "exposure-status", &args, options.seconds, options.connections)?;
    let after = server_histogram(&server, ROUTE)?;
    #[allow(clippy::cast_precision_loss)]
    let rate = (run.requests - run.non_2xx) as f64 / run.seconds;
    let [p50, p75, p99, p999] = run.percentiles_ms;
    println!(
        "status reads     {rate:>9.0} requests/s  ({} requests, {} non-2xx, {} users, {} connections)  p50 {p50:.2} ms  \
         p75 {p75:.2} ms  p99 {p99:.2} ms  p99.9 {p999:.2} ms  server CPU {:.1} µs/request  idle RSS {:.1} MB, \
         under load {:.1} MB  ({})",
        run.requests,
        run.non_2xx,
        options.users,
        options.connections,
        run.cpu_us_per_request(),
        mib(idle_kb),
        mib(run.peak_rss_kb),
        run.steal
    );
    print_server_side(&before, &after);
    drop(server);
    println!();
    println!(
        "target status reads ≥ {TARGET_READS_PER_S:.0} requests/s: {rate:.0} = {:.2}×  {}",
        rate / TARGET_READS_PER_S,
        verdict(rate >= TARGET_READS_PER_S && run.non_2xx == 0)
    );
    println!(
        "target status p99 ≤ {TARGET_P99_MS} ms: {p99:.2} ms = {:.2}×  {}",
        p99 / TARGET_P99_MS,
        verdict(p99 <= TARGET_P99_MS)
    );
    Ok(())
}

/// What `polo-bench exposure-batch` is asked to do.
pub struct BatchOptions {
    pub users: usize,
    pub days: u32,
    pub case_fraction: f64,
    pub min_minutes: f64,
    pub seed: u64,
}

/// This process's resident and peak memory, KiB.
fn own_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()).unwrap_or(0)
}

#[allow(clippy::cast_precision_loss)]
fn per_s(n: u64, seconds: f64) -> f64 {
    n as f64 / seconds.max(1e-9)
}

#[allow(clippy::too_many_lines)]
pub fn batch_bench(work: &Path, options: &BatchOptions) -> anyhow::Result<()> {
    if options.users < 2 || options.days == 0 || !(0.0..=1.0).contains(&options.case_fraction) {
        bail!("--users must be at least 2, --days at least 1 and --case-fraction between 0 and 1");
    }
    let dir = work.join("store-exposure-batch");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let store = SqliteStore::open(dir.join("polo.sqlite"))?;
    let store: &dyn Store = &store;

    // The people and their days, stored as phones' points.
    let started = Instant::now();
    let mut people = Vec::with_capacity(options.users);
    for i in 0..options.users {
        let user = store.create_user(&format!("person-{i:06}"), "!", false)?;
        let device = store.ensure_device(user.id, "phone")?;
        people.push((user, device.id));
    }
    let first_day = synth::DAY_START_MS;
    let mut points = 0_u64;
    for day in 0..options.days {
        let samples = synth::generate(options.users * synth::POINTS_PER_USER, options.seed + u64::from(day));
        let shift = i64::from(day) * DAY_MS;
        for chunk in samples.chunks(synth::POINTS_PER_USER) {
            let index = usize::try_from(chunk[0].user.0 - 1)?;
            let (user, device) = &people[index];
            let mut fixes: Vec<Fix> =
                chunk.iter().map(|s| Fix::new(Timestamp(s.at.0 + shift), s.coord, SourceFormat::Api)).collect();
            fixes.sort_by_key(|f| f.time);
            points += store.insert_points(user.id, *device, &fixes)?.added;
        }
    }
    println!(
        "input            {} users × {} days × {} points = {points} points in a 20 × 20 km square (seed {}), \
         stored in {:.1} s",
        options.users,
        options.days,
        synth::POINTS_PER_USER,
        options.seed,
        started.elapsed().as_secs_f64()
    );

    // The authority marks the cases, infectious over every day.
    let authority = store.create_user("authority", "!", false)?;
    store.set_user_role(authority.id, Some(Role::HealthAuthority))?;
    let cases = share_of(options.users, options.case_fraction).max(1);
    let end = first_day + i64::from(options.days) * DAY_MS;
    let settings = Settings { enabled: true, min_minutes: options.min_minutes, ..Settings::default() };
    #[allow(clippy::cast_possible_truncation)]
    let delay_ms = (settings.completion_delay_hours * HOUR_MS as f64) as i64;
    let now = Timestamp(end + delay_ms + HOUR_MS);
    for (user, _) in people.iter().take(cases) {
        workflow::mark_case(store, &authority, user, Timestamp(first_day), Timestamp(end), "bench", now)?;
    }
    let signer = Signer::load_or_create(store, now)?;
    println!(
        "cases            {cases} ({:.1} % of users), infectious over all {} days; D = {} m, T = {} s, windows of {} h, \
         rule ≥ {} min",
        100.0 * options.case_fraction,
        options.days,
        settings.max_distance_m,
        settings.max_gap_s,
        settings.window_hours,
        settings.min_minutes
    );

    let steal = StealMeter::start();
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = own_kb("VmRSS:");
    let total = Instant::now();
    let t = Instant::now();
    let planned = windows::plan(store, &settings, now)?;
    let plan_s = t.elapsed().as_secs_f64();
    println!(
        "plan             {plan_s:.3} s: {} change-log entries read, {} complete windows queued",
        planned.changes, planned.enqueued
    );
    let t = Instant::now();
    let computed = batch::step(store, &signer, &settings, now, usize::MAX, false)?;
    let compute_s = t.elapsed().as_secs_f64();
    let contacts = store.records(&RecordQuery::kind(CONTACT))?.len();
    let pending = workflow::proposals(store, None)?.len();
    println!(
        "windows + rules  {compute_s:.3} s: {} windows, {} points read back from the store ({:.2} M points/s), \
         {contacts} contacts (window × case × contact), {} (case, contact) pairs evaluated, {pending} proposals",
        computed.windows,
        computed.points,
        per_s(computed.points, compute_s) / 1e6,
        computed.changed_pairs
    );
    let t = Instant::now();
    let refreshed = workflow::refresh_statuses(store, &signer, &settings, now)?;
    let refresh_s = t.elapsed().as_secs_f64();
    println!(
        "statuses         {refresh_s:.3} s: {} signed status rows written ({:.0} rows/s)",
        refreshed.written.len(),
        per_s(refreshed.written.len() as u64, refresh_s)
    );
    let batch_s = total.elapsed().as_secs_f64();
    let peak = own_kb("VmHWM:");
    println!(
        "batch            {batch_s:.2} s end to end for {} days of {} users ({:.2} s a day's window), \
         peak RSS {:.0} MiB ({:.0} MiB before)  ({})",
        options.days,
        options.users,
        batch_s / f64::from(options.days),
        mib(peak),
        mib(rss_before),
        steal.describe()
    );

    // A phone that was offline sends, a day late, an hour at the first case's busiest place.
    let (case_user, _) = &people[0];
    let (late_user, late_device) = &people[options.users - 1];
    let mut case_fixes = Vec::new();
    store.scan_points(
        &polo_store::PointQuery {
            user: case_user.id,
            device: None,
            from: Some(Timestamp(first_day)),
            to: Some(Timestamp(first_day + DAY_MS)),
        },
        &mut |p| {
            case_fixes.push(p.fix);
            std::ops::ControlFlow::Continue(())
        },
    )?;
    let late: Vec<Fix> = case_fixes.iter().take(20).map(|f| Fix::new(f.time, f.coord, SourceFormat::Api)).collect();
    store.insert_points(late_user.id, *late_device, &late)?;
    let t = Instant::now();
    let again = batch::step(store, &signer, &settings, Timestamp(now.0 + 60_000), usize::MAX, false)?;
    let late_s = t.elapsed().as_secs_f64();
    let first_case =
        workflow::cases(store)?.into_iter().find(|c| c.user == case_user.id.0).context("the first case")?;
    let met_late = workflow::contacts_of(store, &first_case.id)?.iter().any(|c| c.contact == late_user.id.0);
    println!(
        "late point       {late_s:.3} s: {} window(s) queued again from the change log, {} computed, {} changed \
         (case, contact) pairs; the late phone is now a contact of the case: {met_late}",
        again.planned.requeued, again.windows, again.changed_pairs
    );
    let t = Instant::now();
    let idle = batch::step(store, &signer, &settings, Timestamp(now.0 + 120_000), usize::MAX, false)?;
    println!(
        "run again        {:.3} s: {} windows computed, {} changed pairs (idempotent)",
        t.elapsed().as_secs_f64(),
        idle.windows,
        idle.changed_pairs
    );
    println!();
    println!(
        "target  a day's window computed long before the next one is complete (24 h): {:.2} s a day  {}",
        batch_s / f64::from(options.days),
        verdict(batch_s / f64::from(options.days) < 3_600.0)
    );
    println!(
        "check   late data recomputes only its window, a second run changes nothing  {}",
        verdict(again.windows == 1 && met_late && idle.windows == 0 && idle.changed_pairs == 0)
    );
    Ok(())
}

//! The PostGIS baseline: the same points in PostGIS, the best plan of
//! `algorithms.md` §2.3 (one composite `gist(geog, ts)` index through
//! `btree_gist`), and the self-join that defines a point pair.
//!
//! polo measures distances on a sphere of PostGIS's radius, so the baseline
//! is `ST_DWithin(geography, geography, D, false)` (`false`: on the sphere,
//! not the spheroid) rather than a UTM geometry: the two then decide every
//! pair alike, up to rounding in the last bits, and the counts must be
//! identical. Coordinates travel as the E7 integers polo holds and become
//! degrees in SQL by the same division (`lat_e7 / 1e7` in `float8`), and
//! times as milliseconds, so both sides see the same numbers.
//!
//! The reference's own plan measured planar distances in UTM metres
//! (`geometry(Point, 32650)`), which PostGIS answers faster than it answers
//! the sphere. [`Variant::Utm`] runs that plan too, so the speed-up is also
//! quoted against PostGIS's fastest plan; its counts differ from polo's (and
//! from PostGIS's own sphere) by the pairs that the projection's scale error
//! (up to a few parts in ten thousand in a zone) moves across 25 m.
//!
//! Everything lives in a schema of its own, dropped afterwards (also after a
//! failure); the extensions are created in `public` when missing.

use std::time::Instant;

use anyhow::Context;
use polo_encounters::{Params, Sample};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;
use postgres::{Client, NoTls};

/// How the points are stored and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// `geography` and `ST_DWithin(…, false)`: on polo's sphere, identical counts.
    Sphere,
    /// `geometry` in UTM zone 50N (EPSG:32650) and planar `ST_DWithin`: the reference's plan.
    Utm,
}

/// What PostGIS did and found.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    /// `COPY` into a staging table and building the geography table, seconds.
    pub load_s: f64,
    /// `CREATE INDEX … gist (geog, ts)` and `ANALYZE`, seconds.
    pub index_s: f64,
    /// The self-join, seconds.
    pub query_s: f64,
    pub point_pairs: u64,
    pub user_pairs: u64,
}

impl Baseline {
    /// Load, index and query, seconds.
    pub fn total_s(&self) -> f64 {
        self.load_s + self.index_s + self.query_s
    }
}

/// A connection with PostGIS and `btree_gist` available, or why not.
pub fn connect(url: &str) -> Result<Client, String> {
    let mut client = Client::connect(url, NoTls).map_err(|e| format!("no PostgreSQL at {url}: {e}"))?;
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS postgis; CREATE EXTENSION IF NOT EXISTS btree_gist")
        .map_err(|e| format!("PostGIS is not available at {url} (apt-get install postgresql-15-postgis-3): {e}"))?;
    Ok(client)
}

/// A schema dropped on drop.
struct Schema<'c> {
    client: &'c mut Client,
    name: String,
}

impl Drop for Schema<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name)) {
            eprintln!("could not drop schema {}: {e}", self.name);
        }
    }
}

/// Loads `samples`, indexes them and counts the pairs within `params`.
pub fn run(
    client: &mut Client,
    samples: &[Sample],
    params: &Params,
    variant: Variant,
    verbose: bool,
) -> anyhow::Result<Baseline> {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name =
        format!("polo_bench_enc_{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    client.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"))?;
    let schema = Schema { client, name };
    let client = &mut *schema.client;
    client.batch_execute(&format!(
        "SET search_path = {}, public; SET max_parallel_workers_per_gather = 2; SET work_mem = '256MB'; \
         SET maintenance_work_mem = '512MB'",
        schema.name
    ))?;

    let started = Instant::now();
    client.batch_execute("CREATE UNLOGGED TABLE raw (uid int8, ms int8, lat_e7 int4, lon_e7 int4)")?;
    let sink = client.copy_in("COPY raw (uid, ms, lat_e7, lon_e7) FROM STDIN (FORMAT binary)")?;
    let mut writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::INT4, Type::INT4]);
    for s in samples {
        writer.write(&[&s.user.0, &s.at.0, &s.coord.lat_e7, &s.coord.lon_e7])?;
    }
    writer.finish()?;
    let point = "ST_SetSRID(ST_MakePoint(lon_e7 / 1e7::float8, lat_e7 / 1e7::float8), 4326)";
    let (column, within) = match variant {
        Variant::Sphere => {
            (format!("{point}::geography"), format!("ST_DWithin(a.geog, b.geog, {:?}, false)", params.max_distance_m))
        }
        Variant::Utm => (
            format!("ST_Transform({point}, 32650)"),
            format!("ST_DWithin(a.geog, b.geog, {:?})", params.max_distance_m),
        ),
    };
    client.batch_execute(&format!(
        "CREATE UNLOGGED TABLE pts AS SELECT uid, timestamptz 'epoch' + ms * interval '1 millisecond' AS ts, \
         {column} AS geog FROM raw; DROP TABLE raw"
    ))?;
    let load_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    client.batch_execute("CREATE INDEX pts_geog_ts ON pts USING gist (geog, ts); ANALYZE pts")?;
    let index_s = started.elapsed().as_secs_f64();

    let query = format!(
        "SELECT count(*), count(DISTINCT (a.uid, b.uid)) FROM pts a JOIN pts b \
         ON a.uid < b.uid AND {within} \
         AND b.ts BETWEEN a.ts - interval '{t} milliseconds' AND a.ts + interval '{t} milliseconds'",
        t = params.max_gap_ms
    );
    if verbose {
        for row in client.query(&format!("EXPLAIN (COSTS OFF) {query}"), &[])? {
            println!("  plan: {}", row.get::<_, String>(0));
        }
    }
    let started = Instant::now();
    let row = client.query_one(&query, &[]).context("the PostGIS self-join")?;
    let query_s = started.elapsed().as_secs_f64();
    let count = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(Baseline { load_s, index_s, query_s, point_pairs: count(0), user_pairs: count(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// polo's counts equal PostGIS's on a generated set (CI installs PostGIS; elsewhere this
    /// test says SKIPPED when PostgreSQL or PostGIS is missing, unless POLO_REQUIRE_SERVICES=1).
    #[test]
    fn polo_counts_equal_postgis_counts() {
        let url = std::env::var("POLO_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
        let mut client = match connect(&url) {
            Ok(client) => client,
            Err(why) => {
                assert!(
                    std::env::var("POLO_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "POLO_REQUIRE_SERVICES=1 but the PostGIS comparison cannot run: {why}"
                );
                eprintln!("SKIPPED: polo vs PostGIS encounter counts: {why}");
                return;
            }
        };
        let samples = super::super::synth::generate(30_000, 11);
        for (d, t) in [(25.0, 300_000), (60.0, 60_000)] {
            let params = Params::new(d, t).unwrap();
            let polo = polo_encounters::count_pairs(&samples, &params);
            let postgis = run(&mut client, &samples, &params, Variant::Sphere, false).unwrap();
            assert!(polo.point_pairs > 1000, "the set should have pairs: {polo:?}");
            assert_eq!((polo.point_pairs, polo.user_pairs), (postgis.point_pairs, postgis.user_pairs), "D {d} T {t}");
        }
    }
}

//! Throw-away PostgreSQL stores for tests (feature `test-support`).
//!
//! Tests find the server through `POLO_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, the CI machine's trust-auth
//! server). Each [`TestDatabase`] is a schema of its own in that database,
//! dropped when the guard is, so tests run in parallel without seeing each
//! other. Without a server, [`TestDatabase::create`] prints a visible
//! `SKIPPED` line and returns `None`; with `POLO_REQUIRE_SERVICES` set (as
//! `.ci/run` does) it panics instead, so CI cannot skip by accident.
//!
//! With `POLO_TEST_CITUS=1` and `POLO_TEST_DATABASE_URL` pointing at a Citus
//! coordinator (`scripts/citus-cluster.sh`), each schema is migrated and
//! distributed by [`citus_distribution_sql`](crate::citus_distribution_sql)
//! (with the schema as `search_path`) as soon as it is created, so the same
//! tests run on sharded tables. CI does not do this.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use postgres::{Client, NoTls};

use crate::PostgresStore;

/// The server tests use when `POLO_TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A schema of its own in the test database, dropped on drop.
#[derive(Debug)]
pub struct TestDatabase {
    base: String,
    schema: String,
    /// Under `POLO_TEST_CITUS`: distributes the schema once, after the
    /// first store migrated it.
    distributed: Once,
}

/// Serialises distributing and dropping test schemas on Citus (a session
/// lock, released when the connection closes).
const CITUS_LOCK: &str = "SELECT pg_advisory_lock(hashtext('polo-test-citus'))";

/// Whether `POLO_TEST_CITUS` asks for every test schema to be distributed.
#[must_use]
pub fn citus() -> bool {
    std::env::var("POLO_TEST_CITUS").is_ok_and(|v| !v.is_empty() && v != "0")
}

impl TestDatabase {
    /// A fresh, empty schema, or `None` (after saying so on stderr) when no
    /// server answers and services are not required.
    ///
    /// # Panics
    /// When no server answers and `POLO_REQUIRE_SERVICES` is set.
    #[must_use]
    pub fn create() -> Option<Self> {
        crate::outside_async(Self::create_blocking)
    }

    fn create_blocking() -> Option<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var("POLO_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_URL.to_owned());
        let mut client = match Client::connect(&base, NoTls) {
            Ok(client) => client,
            Err(e) => {
                assert!(
                    std::env::var_os("POLO_REQUIRE_SERVICES").is_none(),
                    "PostgreSQL is required (POLO_REQUIRE_SERVICES) but {base} does not answer: {e}"
                );
                eprintln!("SKIPPED: no PostgreSQL at {base} ({e}); set POLO_TEST_DATABASE_URL to run this test");
                return None;
            }
        };
        let schema = format!(
            "polo_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            &polo_store::clock::new_random_id()[..8]
        );
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).expect("creating a test schema");
        let db = Self { base, schema, distributed: Once::new() };
        if citus() {
            // Migrated and distributed before anyone sees the URL: tests
            // that hand `url()` to a `polo` process get sharded tables too.
            drop(db.open());
        }
        Some(db)
    }

    /// The URL of this schema: the server's URL with `search_path` set.
    #[must_use]
    pub fn url(&self) -> String {
        let separator = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{separator}options=-csearch_path%3D{}", self.base, self.schema)
    }

    /// The schema's name.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A store on this schema, migrated (and, under `POLO_TEST_CITUS`,
    /// distributed).
    ///
    /// # Panics
    /// When the store cannot be opened or distributed.
    #[must_use]
    pub fn open(&self) -> PostgresStore {
        let store = PostgresStore::open(&self.url()).expect("opening the test store");
        self.distribute();
        store
    }

    /// Under `POLO_TEST_CITUS`, runs the Citus distribution calls on this
    /// schema, once; otherwise does nothing. [`create`](Self::create) (by
    /// opening a store) and [`open`](Self::open) call it.
    ///
    /// # Panics
    /// When a distribution call fails, naming the call and the error.
    pub fn distribute(&self) {
        if !citus() {
            return;
        }
        self.distributed.call_once(|| {
            crate::outside_async(|| {
                let mut client = self.client();
                // Fewer shards than Citus's default 32 per table: schemas are
                // made and dropped per test. Two workers still hold two each.
                let shards = std::env::var("POLO_TEST_CITUS_SHARDS").unwrap_or_else(|_| "4".to_owned());
                client.batch_execute(&format!("SET citus.shard_count = {shards}")).expect("setting citus.shard_count");
                // Citus deadlocks when schemas are distributed (or dropped)
                // concurrently: one at a time, across test processes too.
                client.batch_execute(CITUS_LOCK).expect("taking the test distribution lock");
                for sql in crate::citus_distribution_sql() {
                    if let Err(e) = client.batch_execute(&sql) {
                        let why = e.as_db_error().map_or_else(|| e.to_string(), |db| format!("{db}"));
                        panic!("distributing the test schema {}: {sql}: {why}", self.schema);
                    }
                }
            });
        });
    }

    /// A plain client on this schema, for tests that look at the tables.
    ///
    /// # Panics
    /// When the server does not answer.
    #[must_use]
    pub fn client(&self) -> Client {
        crate::outside_async(|| Client::connect(&self.url(), NoTls)).expect("connecting to the test schema")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        crate::outside_async(|| {
            if let Ok(mut client) = Client::connect(&self.base, NoTls) {
                // Connections of a store still open would keep their locks; a
                // store is dropped before its guard in every fixture.
                if citus() {
                    let _ = client.batch_execute(CITUS_LOCK);
                }
                let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
            }
        });
    }
}

/// A fresh store and the guard that drops its schema, or `None` when the
/// tests are skipped (see [`TestDatabase::create`]).
#[must_use]
pub fn test_store() -> Option<(PostgresStore, TestDatabase)> {
    let db = TestDatabase::create()?;
    Some((db.open(), db))
}

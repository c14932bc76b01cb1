//! Throw-away PostgreSQL stores for tests (feature `test-support`).
//!
//! Tests find the server through `POLO_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`, the CI machine's trust-auth
//! server). Each [`TestDatabase`] is a schema of its own in that database,
//! dropped when the guard is, so tests run in parallel without seeing each
//! other. Without a server, [`TestDatabase::create`] prints a visible
//! `SKIPPED` line and returns `None`; with `POLO_REQUIRE_SERVICES` set (as
//! `.ci/run` does) it panics instead, so CI cannot skip by accident.

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
        Some(Self { base, schema })
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

    /// A store on this schema, migrated.
    ///
    /// # Panics
    /// When the store cannot be opened.
    #[must_use]
    pub fn open(&self) -> PostgresStore {
        PostgresStore::open(&self.url()).expect("opening the test store")
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

//! A store for tests above the storage layer (HTTP routes, the timeline
//! engine, replication), on the backend the test run asks for.
//!
//! `POLO_TEST_BACKEND=postgres` gives each test a PostgreSQL schema of its
//! own (see `polo_store_postgres::testing`), so the server's tests run
//! against PostgreSQL too; anything else, or nothing, gives an in-memory
//! SQLite store. `.ci/run` runs the server-level tests once more with
//! `POLO_TEST_BACKEND=postgres`.

use std::sync::Arc;

use polo_store::Store;
use polo_store_postgres::testing::TestDatabase;

/// The backends a test run can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// In-memory SQLite (the default).
    Sqlite,
    /// A schema of its own on the test PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend `POLO_TEST_BACKEND` names (`postgres`, or SQLite).
    #[must_use]
    pub fn from_env() -> Self {
        match std::env::var("POLO_TEST_BACKEND").as_deref() {
            Ok("postgres" | "postgresql") => Self::Postgres,
            _ => Self::Sqlite,
        }
    }
}

/// A fresh, empty store and whatever must outlive it.
pub struct TestStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The PostgreSQL schema, dropped after the store (fields drop in
    /// order). A clone of the store still held elsewhere (a server task)
    /// does not stop it: idle connections hold no locks.
    _database: Option<TestDatabase>,
}

impl TestStore {
    /// A store on the backend `POLO_TEST_BACKEND` names.
    ///
    /// # Panics
    /// When PostgreSQL was asked for and does not answer: a run that asks
    /// for it must not quietly test SQLite instead.
    #[must_use]
    pub fn new() -> Self {
        match Backend::from_env() {
            Backend::Sqlite => Self {
                store: Arc::new(polo_store_sqlite::SqliteStore::open_in_memory().expect("an in-memory store")),
                _database: None,
            },
            Backend::Postgres => {
                let database = TestDatabase::create()
                    .expect("POLO_TEST_BACKEND=postgres, but no PostgreSQL answers at POLO_TEST_DATABASE_URL");
                Self { store: Arc::new(database.open()), _database: Some(database) }
            }
        }
    }
}

impl Default for TestStore {
    fn default() -> Self {
        Self::new()
    }
}

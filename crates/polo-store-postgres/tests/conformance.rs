//! The backend-agnostic conformance suite against PostgreSQL, one schema per
//! test (see `polo_store_postgres::testing`), plus PostgreSQL-specific
//! behaviour: concurrent writers, concurrent migrations, the Citus layout.

use polo_store_postgres::testing::test_store;

polo_store::conformance_tests!(test_store);

mod replication {
    polo_store::replication_conformance_tests!(polo_store_postgres::testing::test_store);
}

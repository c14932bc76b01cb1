//! Pooled connections that prepare each hot statement once.
//!
//! # Why
//!
//! A statement sent with `query_typed` is an unnamed one: PostgreSQL parses
//! and plans it on every call. On live ingest, where a commit carries a few
//! points and a dozen statements, a profile had the server's parser and
//! planner (`base_yyparse`, `core_yylex`, `copyObjectImpl`) near the top.
//! So each pooled connection ([`Conn`]) keeps the statements it prepared,
//! keyed by their SQL text, and the hot paths go through [`Prepared`]: the
//! first call on a connection prepares (one extra round trip), every later
//! one only binds and executes.
//!
//! * **Per connection, not per store.** A prepared statement lives in one
//!   server session; the cache is a field of the connection it belongs to
//!   and goes with it when the pool drops the connection.
//! * **Keyed by `&'static str`.** Only SQL written in the source is cached,
//!   so the cache is bounded by the statements in this crate, and a lookup
//!   allocates nothing. A given text is always sent with the same parameter
//!   types (checked in debug builds).
//! * **Not transactional.** A statement prepared inside a transaction that
//!   rolls back stays prepared (PostgreSQL's prepared statements belong to
//!   the session), so a retried write finds it in the cache.
//! * **PgBouncer** in transaction mode needs `max_prepared_statements` for
//!   this (see `docs/postgres.md`).

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use postgres::types::{ToSql, Type};
use postgres::{Client, GenericClient, NoTls, Row, SimpleQueryMessage, Statement, Transaction};
use r2d2_postgres::PostgresConnectionManager;

/// The statements a connection prepared, by SQL text.
#[derive(Default)]
pub(crate) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// `sql` prepared on `client` with the types of `params`: from the cache,
    /// or prepared now and kept.
    fn get(
        &mut self,
        client: &mut impl GenericClient,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.0.get(sql) {
            debug_assert!(
                statement.params().iter().eq(params.iter().map(|(_, t)| t)),
                "one SQL text, two sets of parameter types: {sql}"
            );
            return Ok(statement.clone());
        }
        let types: Vec<Type> = params.iter().map(|(_, t)| t.clone()).collect();
        let statement = client.prepare_typed(sql, &types)?;
        self.0.insert(sql, statement.clone());
        Ok(statement)
    }
}

/// Running statements prepared once per connection. The methods mirror
/// the client's `*_typed` ones: parameters come with their types.
pub(crate) trait Prepared {
    /// The client to run on.
    type Client: GenericClient;

    /// The client and its connection's statements.
    fn parts(&mut self) -> (&mut Self::Client, &mut Statements);

    /// As `query_typed`, with the statement prepared once.
    fn query_prepared(
        &mut self,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql, params)?;
        client.query(&statement, &values(params))
    }

    /// As `query_typed_opt`, with the statement prepared once.
    fn query_prepared_opt(
        &mut self,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Option<Row>, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql, params)?;
        client.query_opt(&statement, &values(params))
    }

    /// As `query_typed_one`, with the statement prepared once.
    fn query_prepared_one(
        &mut self,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Row, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql, params)?;
        client.query_one(&statement, &values(params))
    }

    /// As `execute_typed`, with the statement prepared once.
    fn execute_prepared(
        &mut self,
        sql: &'static str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<u64, postgres::Error> {
        let (client, statements) = self.parts();
        let statement = statements.get(client, sql, params)?;
        client.execute(&statement, &values(params))
    }
}

fn values<'p>(params: &[(&'p (dyn ToSql + Sync), Type)]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|(value, _)| *value).collect()
}

/// A pooled connection: the client and the statements prepared on it.
pub(crate) struct Conn {
    client: Client,
    statements: Statements,
}

impl Conn {
    /// Opens a transaction that prepares through this connection's cache.
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, postgres::Error> {
        Ok(Tx { tx: self.client.transaction()?, statements: &mut self.statements })
    }
}

impl Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl Prepared for Conn {
    type Client = Client;
    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        (&mut self.client, &mut self.statements)
    }
}

/// A transaction on a [`Conn`]; everything a [`Transaction`] does, and
/// [`Prepared`].
pub(crate) struct Tx<'c> {
    tx: Transaction<'c>,
    statements: &'c mut Statements,
}

impl Tx<'_> {
    pub(crate) fn commit(self) -> Result<(), postgres::Error> {
        self.tx.commit()
    }
}

impl<'c> Deref for Tx<'c> {
    type Target = Transaction<'c>;
    fn deref(&self) -> &Transaction<'c> {
        &self.tx
    }
}

impl<'c> DerefMut for Tx<'c> {
    fn deref_mut(&mut self) -> &mut Transaction<'c> {
        &mut self.tx
    }
}

impl<'c> Prepared for Tx<'c> {
    type Client = Transaction<'c>;
    fn parts(&mut self) -> (&mut Transaction<'c>, &mut Statements) {
        (&mut self.tx, &mut *self.statements)
    }
}

/// A transaction opened and committed with simple-protocol messages that
/// carry a second statement each: `BEGIN` goes with the transaction's first
/// statement, `COMMIT` with one to run after it, so that live ingest's
/// commit costs two round trips fewer (on a busy machine every round trip
/// waits for the scheduler twice, the server's and the client's). In
/// between, statements are prepared as on any [`Conn`]. Dropped while open
/// (an error, a panic), it rolls back before the connection goes back to
/// the pool.
pub(crate) struct LiveTx<'c> {
    conn: &'c mut Conn,
    open: bool,
}

impl<'c> LiveTx<'c> {
    /// Sends `BEGIN` and `first` (plain SQL, no parameters) in one message,
    /// and returns the transaction with the text values of `first`'s first
    /// row.
    pub(crate) fn begin(conn: &'c mut Conn, first: &str) -> Result<(Self, Vec<Option<String>>), postgres::Error> {
        let tx = LiveTx { conn, open: true };
        let messages = tx.conn.client.simple_query(&format!("BEGIN; {first}"))?;
        let row = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
                _ => None,
            })
            .unwrap_or_default();
        Ok((tx, row))
    }

    /// Sends `COMMIT` and `then` (plain SQL, run after the commit in a
    /// transaction of its own) in one message.
    pub(crate) fn commit_then(mut self, then: &str) -> Result<(), postgres::Error> {
        self.open = false;
        self.conn.client.batch_execute(&format!("COMMIT; {then}"))
    }
}

impl Drop for LiveTx<'_> {
    fn drop(&mut self) {
        if self.open {
            // A failed rollback means a broken connection, which the pool drops.
            let _ = self.conn.client.batch_execute("ROLLBACK");
        }
    }
}

impl Prepared for LiveTx<'_> {
    type Client = Client;
    fn parts(&mut self) -> (&mut Client, &mut Statements) {
        (&mut self.conn.client, &mut self.conn.statements)
    }
}

/// The pool's connection manager: `r2d2_postgres`'s, with a statement
/// cache beside each client.
#[derive(Debug)]
pub(crate) struct Manager(pub(crate) PostgresConnectionManager<NoTls>);

impl r2d2::ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Conn, postgres::Error> {
        Ok(Conn { client: self.0.connect()?, statements: Statements::default() })
    }

    fn is_valid(&self, conn: &mut Conn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

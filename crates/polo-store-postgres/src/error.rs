//! PostgreSQL errors as [`StoreError`]s: which are worth a retry, which mean
//! a full disk, and which are final.

use polo_store::StoreError;
use postgres::error::SqlState;

/// Maps client results into [`StoreError`]s ([`store_error`]).
pub(crate) trait Db<T> {
    fn db(self) -> Result<T, StoreError>;
}

impl<T> Db<T> for Result<T, postgres::Error> {
    fn db(self) -> Result<T, StoreError> {
        self.map_err(|e| store_error(&e))
    }
}

/// Whether PostgreSQL rolled the transaction back for a reason that may
/// not recur: a serialisation failure or a deadlock (SQLSTATE class 40), a
/// server shutting down or too many connections (57P01–57P03, 53300), or a
/// connection lost before the commit was sent.
pub(crate) fn is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("40")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
        // No SQLSTATE: an I/O failure talking to the server.
        None => e.as_db_error().is_none(),
    }
}

/// `53100` (disk full) is [`StoreError::DiskFull`]; transient failures are
/// [`StoreError::Retryable`]; every other failure is [`StoreError::Backend`].
pub(crate) fn store_error(e: &postgres::Error) -> StoreError {
    let text = describe(e);
    if e.code() == Some(&SqlState::DISK_FULL) {
        StoreError::DiskFull(format!("postgres: {text}"))
    } else if is_transient(e) {
        StoreError::Retryable(format!("postgres: {text}"))
    } else {
        StoreError::Backend(format!("postgres: {text}"))
    }
}

/// The server's message with its detail, or the client's error.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{} ({detail})", db.message()),
            None => db.message().to_owned(),
        },
        None => e.to_string(),
    }
}

/// A unique-constraint violation (`23505`), for a write that cannot say
/// `ON CONFLICT` (none so far: tokens, sessions and shares do).
#[allow(dead_code)]
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// A pool failure (no connection within the timeout): worth a retry.
pub(crate) fn pool_error(e: &r2d2::Error) -> StoreError {
    StoreError::Retryable(format!("postgres: no connection: {e}"))
}

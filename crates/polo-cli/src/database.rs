//! Which store a command opens: the one place the binary picks a backend.
//!
//! `--database-url` (env `POLO_DATABASE_URL`, config `database_url`) takes
//! `sqlite://PATH` or `postgres://…` (also `postgresql://…`). Without it,
//! polo uses the embedded store at `DATA_DIR/polo.sqlite`, created on first
//! use, so `polo serve` needs nothing installed. A URL given explicitly must
//! name something that exists: a SQLite file that is not there is an error
//! (a typo must not start an empty instance) unless the URL asks for it
//! with `?mode=rwc`, as sqlx does.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use polo_store::Store;

/// A store location, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// The embedded SQLite file; `create` lets opening make a new one.
    Sqlite { path: PathBuf, create: bool },
    /// A PostgreSQL server (the URL as given; the password stays in it).
    Postgres { url: String },
}

impl Database {
    /// The default: `DATA_DIR/polo.sqlite`, created when missing.
    pub fn default_in(data_dir: &Path) -> Self {
        Self::Sqlite { path: data_dir.join("polo.sqlite"), create: true }
    }

    /// Parses a `--database-url`.
    ///
    /// # Errors
    /// An unknown scheme, an empty path, or an unknown `mode`.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres { url: url.to_owned() });
        }
        let Some(rest) = url.strip_prefix("sqlite://") else {
            let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
            bail!(
                "unsupported database URL scheme {scheme:?} in --database-url: use sqlite://PATH \
                 (the embedded store) or postgres://USER@HOST:PORT/DATABASE"
            );
        };
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() {
            bail!("--database-url sqlite:// needs a file path, e.g. sqlite:///srv/polo/polo.sqlite");
        }
        let mut create = false;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair {
                "mode=rwc" => create = true,
                "mode=rw" => create = false,
                other => bail!("unknown parameter {other:?} in --database-url (sqlite:// takes mode=rw or mode=rwc)"),
            }
        }
        Ok(Self::Sqlite { path: PathBuf::from(path), create })
    }

    /// The SQLite file, for the commands that work on it directly (backups).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite { path, .. } => Some(path),
            Self::Postgres { .. } => None,
        }
    }

    /// What to call it in messages: the path, or the server without its password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path, .. } => path.display().to_string(),
            Self::Postgres { url } => redact_password(url),
        }
    }

    /// Opens (and migrates) the store.
    ///
    /// # Errors
    /// A missing SQLite file (unless it may be created), a server that does
    /// not answer, a failed migration: each naming the store.
    pub fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        match self {
            Self::Sqlite { path, create } => {
                if !path.exists() {
                    if !create {
                        bail!(
                            "no database at {} (from --database-url); check the path, or add ?mode=rwc \
                             to create a new one there",
                            path.display()
                        );
                    }
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
                    }
                }
                let store = polo_store_sqlite::SqliteStore::open(path)
                    .with_context(|| format!("cannot open the store at {}", path.display()))?;
                Ok(Arc::new(store))
            }
            Self::Postgres { url } => {
                let store = polo_store_postgres::PostgresStore::open(url)
                    .with_context(|| format!("cannot open the PostgreSQL store at {}", redact_password(url)))?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, None), |(a, t)| (a, Some(t)));
    let authority = match authority.rsplit_once('@') {
        Some((credentials, host)) => match credentials.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    match tail {
        Some(tail) => format!("{scheme}://{authority}/{tail}"),
        None => format!("{scheme}://{authority}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_select_the_backend() {
        assert_eq!(
            Database::parse("sqlite:///srv/polo/polo.sqlite").unwrap(),
            Database::Sqlite { path: "/srv/polo/polo.sqlite".into(), create: false }
        );
        assert_eq!(
            Database::parse("sqlite://data/polo.sqlite?mode=rwc").unwrap(),
            Database::Sqlite { path: "data/polo.sqlite".into(), create: true }
        );
        for url in ["postgres://polo@db:5432/polo", "postgresql://polo@db/polo?sslmode=disable"] {
            assert_eq!(Database::parse(url).unwrap(), Database::Postgres { url: url.to_owned() });
        }
    }

    #[test]
    fn unknown_schemes_and_parameters_are_refused_by_name() {
        let err = Database::parse("mysql://root@localhost/polo").unwrap_err().to_string();
        assert!(err.contains("\"mysql\"") && err.contains("sqlite://") && err.contains("postgres://"), "{err}");
        let err = Database::parse("/srv/polo.sqlite").unwrap_err().to_string();
        assert!(err.contains("unsupported database URL scheme"), "{err}");
        assert!(Database::parse("sqlite://").is_err());
        let err = Database::parse("sqlite:///x.sqlite?cache=shared").unwrap_err().to_string();
        assert!(err.contains("cache=shared"), "{err}");
    }

    #[test]
    fn an_explicit_sqlite_file_must_exist_unless_created_on_purpose() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("typo.sqlite");
        let url = format!("sqlite://{}", path.display());
        let err = Database::parse(&url).unwrap().open().err().unwrap().to_string();
        assert!(err.contains("no database at") && err.contains("typo.sqlite"), "{err}");
        assert!(!path.exists(), "no file was created");
        Database::parse(&format!("{url}?mode=rwc")).unwrap().open().unwrap();
        assert!(path.exists());
        Database::parse(&url).unwrap().open().unwrap();
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(redact_password("postgres://polo:s3cret@db:5432/polo"), "postgres://polo:***@db:5432/polo");
        assert_eq!(redact_password("postgres://polo@db/polo"), "postgres://polo@db/polo");
        assert_eq!(Database::parse("postgres://u:p@h/d").unwrap().describe(), "postgres://u:***@h/d");
    }
}

//! Where backups go: a local directory or an object-store bucket, behind
//! one [`ObjectStore`] so the engine has a single code path.
//!
//! * a path or `file:///path` — a directory ([`LocalFileSystem`], files
//!   written to a temporary name, synced and renamed, so an object is whole
//!   or absent as in a bucket);
//! * `s3://BUCKET[/PREFIX]` — Amazon S3 and S3-compatible services (B2,
//!   Ceph, MinIO, moto) with an endpoint from `--endpoint` or
//!   `AWS_ENDPOINT_URL`;
//! * `gs://BUCKET[/PREFIX]` — Google Cloud Storage;
//! * `az://CONTAINER[/PREFIX]` (also `azure://`) — Azure Blob Storage.
//!
//! Credentials and settings come from the services' usual environment
//! variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`,
//! `AWS_ALLOW_HTTP`; `GOOGLE_SERVICE_ACCOUNT`; `AZURE_STORAGE_ACCOUNT_NAME`,
//! `AZURE_STORAGE_ACCOUNT_KEY`, …), read by `object_store`'s builders, so
//! nothing secret is ever on a command line. An `http://` endpoint given
//! explicitly is allowed without TLS (a loopback test server, a LAN Ceph);
//! anything else needs HTTPS. TLS is rustls over ring, installed as the
//! process's provider on first use.

use std::path::PathBuf;
use std::sync::{Arc, Once};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::error::{BackupError, BackupResult};

/// An opened destination.
#[derive(Debug, Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    display: String,
}

/// Whether a local directory destination may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Writing backups: a missing directory is created.
    Write,
    /// Reading backups: a missing directory is an error.
    Read,
}

impl Destination {
    /// Opens `dest` (see the module documentation for the forms);
    /// `endpoint` overrides the service endpoint of `s3://` and `az://`.
    ///
    /// # Errors
    /// [`BackupError::Destination`] for an unknown scheme, a missing bucket
    /// name, a directory that cannot be created (or does not exist, for
    /// [`Access::Read`]), or a builder that rejects its configuration.
    pub fn open(dest: &str, endpoint: Option<&str>, access: Access) -> BackupResult<Self> {
        let bad = |why: String| BackupError::Destination { dest: dest.to_owned(), why };
        let Some((scheme, rest)) = dest.split_once("://") else {
            return Self::local(dest, PathBuf::from(dest), access);
        };
        if scheme == "file" {
            return Self::local(dest, PathBuf::from(rest), access);
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("no bucket or container name".into()));
        }
        let prefix = Path::parse(prefix.trim_end_matches('/')).map_err(|e| bad(format!("invalid prefix: {e}")))?;
        install_tls_provider();
        let built = |e: object_store::Error| bad(e.to_string());
        let store: Arc<dyn ObjectStore> = match scheme {
            "s3" | "s3a" => {
                let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
                if let Some(endpoint) = endpoint {
                    builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
                }
                Arc::new(builder.build().map_err(built)?)
            }
            "gs" => {
                if endpoint.is_some() {
                    return Err(bad("--endpoint applies to s3:// and az:// destinations".into()));
                }
                Arc::new(GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket).build().map_err(built)?)
            }
            "az" | "azure" => {
                let mut builder = MicrosoftAzureBuilder::from_env().with_container_name(bucket);
                if let Some(endpoint) = endpoint {
                    builder =
                        builder.with_endpoint(endpoint.to_owned()).with_allow_http(endpoint.starts_with("http://"));
                }
                Arc::new(builder.build().map_err(built)?)
            }
            other => {
                return Err(bad(format!(
                    "unknown scheme {other}:// (use a directory, file://, s3://, gs:// or az://)"
                )));
            }
        };
        Ok(Self { store, prefix, display: dest.to_owned() })
    }

    fn local(dest: &str, dir: PathBuf, access: Access) -> BackupResult<Self> {
        let bad = |why: String| BackupError::Destination { dest: dest.to_owned(), why };
        if access == Access::Write {
            std::fs::create_dir_all(&dir).map_err(|e| bad(format!("cannot create the directory: {e}")))?;
        } else if !dir.is_dir() {
            return Err(bad("no such directory".into()));
        }
        let store = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| bad(e.to_string()))?
            .with_fsync(true)
            .with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), prefix: Path::default(), display: dest.to_owned() })
    }

    /// A destination over any object store (tests, embedding). Call
    /// [`install_tls_provider`] before building an HTTP-based store.
    #[must_use]
    pub fn from_store(store: Arc<dyn ObjectStore>, prefix: Path, display: impl Into<String>) -> Self {
        Self { store, prefix, display: display.into() }
    }

    /// The store.
    #[must_use]
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The full object path of `name` (relative to the destination).
    #[must_use]
    pub fn path(&self, name: &str) -> Path {
        name.split('/').fold(self.prefix.clone(), |path, part| path.join(part))
    }

    /// `path` relative to the destination, the inverse of [`Destination::path`].
    #[must_use]
    pub fn name(&self, path: &Path) -> Option<String> {
        let parts: Vec<_> = path.prefix_match(&self.prefix)?.map(|p| p.as_ref().to_owned()).collect();
        Some(parts.join("/"))
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// Makes ring the process's rustls provider unless one is installed.
/// reqwest is built without a TLS provider of its own (`rustls-no-provider`)
/// and takes the process default when an object-store client is built; a
/// build without one panics. [`Destination::open`] calls this.
pub fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_created_for_writing_and_required_for_reading() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b");
        let err = Destination::open(target.to_str().unwrap(), None, Access::Read).unwrap_err();
        assert!(err.to_string().contains("no such directory"), "{err}");
        Destination::open(target.to_str().unwrap(), None, Access::Write).unwrap();
        assert!(target.is_dir());
        let url = format!("file://{}", target.display());
        let dest = Destination::open(&url, None, Access::Read).unwrap();
        assert_eq!(dest.to_string(), url);
    }

    #[test]
    fn bucket_urls_keep_their_prefix() {
        let dest = Destination::open("s3://bucket/polo/nightly/", Some("http://127.0.0.1:9"), Access::Read).unwrap();
        let path = dest.path("manifests/x.json");
        assert_eq!(path.as_ref(), "polo/nightly/manifests/x.json");
        assert_eq!(dest.name(&path).as_deref(), Some("manifests/x.json"));
    }

    #[test]
    fn unknown_schemes_and_missing_buckets_are_refused() {
        let e = Destination::open("ftp://host/x", None, Access::Read).unwrap_err().to_string();
        assert!(e.contains("unknown scheme ftp://"), "{e}");
        let e = Destination::open("s3:///x", None, Access::Read).unwrap_err().to_string();
        assert!(e.contains("no bucket"), "{e}");
        let e = Destination::open("gs://b", Some("http://x"), Access::Read).unwrap_err().to_string();
        assert!(e.contains("--endpoint"), "{e}");
    }
}

//! The engine against an S3-compatible server: moto's server mode from
//! PyPI (`moto[server]`, pinned in `.ci/requirements.txt`, found through
//! `$POLO_PYTHON`) on a loopback port. A block larger than the multipart
//! threshold goes up in parallel parts; backup, verify and restore must
//! round-trip it. Without moto the test says SKIPPED, unless
//! `POLO_REQUIRE_SERVICES` is set (CI).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use polo_backup::transfer::MULTIPART_THRESHOLD;
use polo_backup::{BackupOptions, Destination, RestoreOptions, Silent, VerifyOptions};
use polo_store_sqlite::SqliteStore;

struct Moto {
    child: Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto() -> Result<Moto, String> {
    let python = std::env::var("POLO_PYTHON").map_err(|_| "POLO_PYTHON is not set".to_owned())?;
    let probe = Command::new(&python)
        .args(["-c", "import moto.server"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!("{python} has no moto[server]: {}", String::from_utf8_lossy(&probe.stderr)));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let moto = Moto { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

/// `PUT /bucket` (path style; moto takes unsigned requests) and its status line.
fn create_bucket(port: u16, bucket: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blocks_go_up_in_parallel_parts_and_come_back_intact() {
    let moto = match moto() {
        Ok(moto) => moto,
        Err(why) if std::env::var_os("POLO_REQUIRE_SERVICES").is_some() => {
            panic!("POLO_REQUIRE_SERVICES is set but moto is unavailable: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: S3 multipart test ({why}; .ci/run installs moto[server] from .ci/requirements.txt)");
            return;
        }
    };
    assert!(create_bucket(moto.port, "polo").contains(" 200 "), "bucket created");
    polo_backup::dest::install_tls_provider();
    let s3 = AmazonS3Builder::new()
        .with_bucket_name("polo")
        .with_endpoint(format!("http://127.0.0.1:{}", moto.port))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_access_key_id("polo-test")
        .with_secret_access_key("polo-test-secret")
        .build()
        .unwrap();
    let dest = Destination::from_store(Arc::new(s3), Path::from("multipart"), "s3://polo/multipart");

    // A store with 12 MB of incompressible bytes beside its tables.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("polo.sqlite");
    let store = SqliteStore::open(&db).unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE filler (b BLOB); INSERT INTO filler VALUES (randomblob(12000000));")
        .unwrap();
    let options = BackupOptions { block_size: 16 << 20, ..BackupOptions::default() };
    let report = polo_backup::create(&db, &dest, &options, &Silent).await.unwrap();
    let largest = report.manifest.blocks.iter().map(|b| b.stored).max().unwrap();
    assert!(largest > MULTIPART_THRESHOLD as u64, "a {largest}-byte block needs a multipart upload");

    polo_backup::verify(&dest, None, &VerifyOptions::default(), &Silent).await.unwrap();
    let target = dir.path().join("restored/polo.sqlite");
    let restored = polo_backup::restore(&dest, None, &target, &RestoreOptions::default(), &Silent).await.unwrap();
    assert_ne!(restored.epoch, polo_store::Store::epoch(&store).unwrap());
    let blob = |path: &std::path::Path| -> Vec<u8> {
        rusqlite::Connection::open(path).unwrap().query_row("SELECT b FROM filler", [], |r| r.get(0)).unwrap()
    };
    assert_eq!(blob(&target), blob(&db), "the 12 MB came back byte for byte");
}

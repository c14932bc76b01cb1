//! Builds the web app (`web/` at the repository root) with npm into
//! `OUT_DIR/web-dist` and writes `OUT_DIR/assets.rs`, the table `src/lib.rs`
//! includes: every built file with its content type, and a gzip copy of the
//! text files made here, once, instead of per request.
//!
//! npm runs only when the app's sources changed (Cargo reruns this script on
//! changes under `web/src`, the lockfile and the build configuration):
//! `npm ci` when `package-lock.json` is newer than the installed packages,
//! then `npm run build` (type-check, then Vite). With `POLO_WEB_DIST` set to
//! a built app, npm is not used at all.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use flate2::Compression;
use flate2::write::GzEncoder;

/// The files and directories whose change means the app must be rebuilt.
const INPUTS: &[&str] =
    &["src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json"];

fn main() {
    println!("cargo:rerun-if-env-changed=POLO_WEB_DIST");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("Cargo sets OUT_DIR"));
    let dist = match env::var_os("POLO_WEB_DIST") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            println!("cargo:rerun-if-changed={}", dir.display());
            assert!(
                dir.join("index.html").is_file(),
                "POLO_WEB_DIST={} does not hold a built web app (no index.html); build one with `npm --prefix web ci && npm --prefix web run build` and point POLO_WEB_DIST at web/dist",
                dir.display()
            );
            dir
        }
        None => build_with_npm(&out),
    };
    let table = asset_table(&dist, &out.join("gz"));
    fs::write(out.join("assets.rs"), table).expect("writing assets.rs into OUT_DIR");
}

fn build_with_npm(out: &Path) -> PathBuf {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("Cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    assert!(
        web.join("package.json").is_file(),
        "polo-web: the web app's sources are missing ({} has no package.json)",
        web.display()
    );
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", web.join(input).display());
    }
    let lockfile = web.join("package-lock.json");
    let installed = web.join("node_modules/.package-lock.json");
    if modified(&installed).is_none_or(|installed| modified(&lockfile).is_some_and(|lock| lock > installed)) {
        npm(&web, &["ci", "--no-audit", "--no-fund", "--loglevel=error"], &[]);
    }
    let dist = out.join("web-dist");
    npm(&web, &["run", "build", "--silent"], &[("POLO_WEB_OUT_DIR", &dist)]);
    dist
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn npm(dir: &Path, args: &[&str], envs: &[(&str, &Path)]) {
    let mut command = Command::new("npm");
    command.args(args).current_dir(dir);
    for (key, value) in envs {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!(
            "polo-web: could not run `npm {}` ({e}). Building polo embeds its web app, which needs Node.js 20 or newer \
             with npm on PATH (Debian/Ubuntu: `apt-get install nodejs npm`; others: https://nodejs.org). \
             Or build the app elsewhere and set POLO_WEB_DIST to its dist directory.",
            args.join(" ")
        )
    });
    if !output.status.success() {
        panic!(
            "polo-web: `npm {}` in {} failed ({}):\n{}\n{}",
            args.join(" "),
            dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type.contains("json") || content_type.contains("svg")
}

fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("polo-web: reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn asset_table(dist: &Path, gz_dir: &Path) -> String {
    let mut found = Vec::new();
    files(dist, &mut found);
    let mut assets: Vec<(String, PathBuf)> = found
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(dist).expect("under dist").to_string_lossy().replace('\\', "/");
            (format!("/{relative}"), file)
        })
        .collect();
    assets.sort();
    fs::create_dir_all(gz_dir).expect("creating the gzip directory");
    let mut table = String::from("/// Every built file, sorted by path.\nstatic ASSETS: &[Asset] = &[\n");
    for (index, (path, file)) in assets.iter().enumerate() {
        let body = fs::read(file).unwrap_or_else(|e| panic!("polo-web: reading {}: {e}", file.display()));
        let content_type = content_type(path);
        let mut gzip = "None".to_owned();
        if compressible(content_type) && body.len() > 256 {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            encoder.write_all(&body).expect("gzip into memory");
            let compressed = encoder.finish().expect("gzip into memory");
            if compressed.len() < body.len() {
                let gz_path = gz_dir.join(format!("{index}.gz"));
                fs::write(&gz_path, compressed).expect("writing a gzip copy");
                gzip = format!("Some(include_bytes!({:?}))", gz_path.display().to_string());
            }
        }
        let immutable = path.starts_with("/assets/");
        writeln!(
            table,
            "    Asset {{ path: {path:?}, content_type: {content_type:?}, body: include_bytes!({:?}), gzip: {gzip}, immutable: {immutable} }},",
            file.display().to_string()
        )
        .expect("writing to a string");
    }
    table.push_str("];\n");
    table
}

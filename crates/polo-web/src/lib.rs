//! The web app's built files, compiled into the binary.
//!
//! `build.rs` runs `npm ci` (when the lockfile changed) and `npm run build`
//! over `web/` at the repository root, writing into Cargo's `OUT_DIR`, and
//! generates a table of every output file with its content type and, for
//! text files, a gzip copy made at build time. So `polo serve` needs nothing
//! on disk, and a response is a slice of the binary. Set `POLO_WEB_DIST` to a
//! directory holding an already built app to skip npm entirely.
//!
//! The server side (routes, cache headers, the fallback to `index.html` for
//! the app's own routes) lives in `polo-server`; this crate only holds the
//! bytes.

/// One built file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path it is served at, e.g. `/assets/index-3f2a1c9b.js`.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The file.
    pub body: &'static [u8],
    /// The file gzipped at build time, when that made it smaller.
    pub gzip: Option<&'static [u8]>,
    /// Whether the name carries a content hash, so it may be cached forever.
    pub immutable: bool,
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The file served at `path`, if the app has one.
#[must_use]
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.binary_search_by(|a| a.path.cmp(path)).ok().map(|i| &ASSETS[i])
}

/// `index.html`: the answer to every route of the app.
#[must_use]
pub fn index() -> &'static Asset {
    asset("/index.html").expect("the web build always has index.html")
}

/// Every embedded file, sorted by path.
#[must_use]
pub fn assets() -> &'static [Asset] {
    ASSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_loads_the_hashed_entry_script() {
        let html = std::str::from_utf8(index().body).unwrap();
        assert_eq!(index().content_type, "text/html; charset=utf-8");
        assert!(!index().immutable, "index.html must be revalidated: it names the current assets");
        let script = html.split("src=\"").nth(1).and_then(|s| s.split('"').next()).expect("a module script");
        let entry = asset(script).unwrap_or_else(|| panic!("{script} is embedded"));
        assert_eq!(entry.content_type, "text/javascript; charset=utf-8");
        assert!(entry.immutable && script.starts_with("/assets/"));
    }

    #[test]
    fn text_files_are_gzipped_and_the_table_is_sorted() {
        assert!(ASSETS.windows(2).all(|w| w[0].path < w[1].path));
        let css = ASSETS.iter().find(|a| a.path.ends_with(".css")).expect("a stylesheet");
        let gzip = css.gzip.expect("CSS is gzipped");
        assert!(gzip.len() < css.body.len() && gzip.starts_with(&[0x1f, 0x8b]));
        assert!(asset("/nope.js").is_none());
    }
}

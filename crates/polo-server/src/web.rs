//! Serves the web app embedded by `polo-web`: the router's fallback, so
//! every API route keeps precedence.
//!
//! - A built file is answered with its content type; files under `/assets/`
//!   carry a content hash in their name and are cached for a year
//!   (`immutable`), everything else is revalidated (`no-cache`).
//! - Text files were gzipped at build time and are sent gzipped to clients
//!   that accept it (`Vary: Accept-Encoding`).
//! - Any other `GET`/`HEAD` outside `/api/` and `/assets/` is a route of the
//!   single-page app (`/day/2024-05-01`, `/s/<token>`), answered with
//!   `index.html`, whose own Content-Security-Policy also lets the map load
//!   basemap tiles from any `https:` server, and from the configured tile
//!   server when that is plain `http:` (the tile URL is a runtime setting).
//! - Everything else is the API's JSON 404.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Uri, header};
use axum::response::{IntoResponse, Response};
use polo_web::Asset;

use crate::AppState;
use crate::error::ApiError;

/// The app's CSP: the front door's, with `https:` images for basemap tiles and
/// `connect-src` spelled out for the API and live updates.
fn app_csp(extra_image_source: Option<&str>) -> String {
    let extra = extra_image_source.map(|s| format!(" {s}")).unwrap_or_default();
    format!(
        "default-src 'self'; img-src 'self' data: blob: https:{extra}; style-src 'self'; script-src 'self'; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The CSP source of a plain-`http:` tile URL template (`{s}` subdomains become `*`); `None` for
/// `https:` (already allowed) and paths on this server.
fn http_tile_source(tile_url: &str) -> Option<String> {
    let rest = tile_url.strip_prefix("http://")?;
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    let host = host.replace("{s}", "*");
    host.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*' | '[' | ']'))
        .then(|| format!("http://{host}"))
}

/// The router's fallback: an embedded file, the app's `index.html`, or a JSON 404.
pub(crate) async fn fallback(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let tile_source = if polo_web::asset(uri.path()).is_none() {
        crate::site::effective(&state).await.ok().and_then(|(site, _, _)| http_tile_source(&site.tile_url))
    } else {
        None
    };
    answer(&method, &uri, &headers, tile_source.as_deref())
}

fn answer(method: &Method, uri: &Uri, headers: &HeaderMap, tile_source: Option<&str>) -> Response {
    let path = uri.path();
    let is_api = path == "/api" || path.starts_with("/api/");
    if is_api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::not_found("no such route").into_response();
    }
    if let Some(asset) = polo_web::asset(path) {
        return serve(asset, headers, tile_source);
    }
    if path.starts_with("/assets/") {
        return ApiError::not_found(format!("the web app has no file {path}")).into_response();
    }
    serve(polo_web::index(), headers, tile_source)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "").eq_ignore_ascii_case("q=0"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
    })
}

fn serve(asset: &'static Asset, request: &HeaderMap, tile_source: Option<&str>) -> Response {
    let gzip = asset.gzip.filter(|_| accepts_gzip(request));
    let body = gzip.unwrap_or(asset.body);
    let mut response = Body::from(body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" }),
    );
    if asset.gzip.is_some() {
        headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if gzip.is_some() {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if asset.content_type.starts_with("text/html")
        && let Ok(csp) = HeaderValue::from_str(&app_csp(tile_source))
    {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str, encoding: Option<&str>) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(encoding) = encoding {
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(encoding).unwrap());
        }
        answer(&Method::GET, &path.parse().unwrap(), &headers, None)
    }

    #[test]
    fn plain_http_tile_servers_are_added_to_img_src() {
        assert_eq!(http_tile_source("https://tile.openstreetmap.org/{z}/{x}/{y}.png"), None);
        assert_eq!(http_tile_source("/tiles/{z}/{x}/{y}.png"), None);
        assert_eq!(
            http_tile_source("http://{s}.tiles.lan:8080/{z}/{x}/{y}.png").as_deref(),
            Some("http://*.tiles.lan:8080")
        );
        assert_eq!(http_tile_source("http://bad host/{z}"), None);
        let response = answer(&Method::GET, &"/".parse().unwrap(), &HeaderMap::new(), Some("http://tiles.lan"));
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("img-src 'self' data: blob: https: http://tiles.lan;"), "{csp}");
    }

    #[test]
    fn client_routes_get_index_html_with_the_app_csp() {
        for path in ["/", "/day/2024-05-01", "/s/abc.def", "/trips/phone/2024-05-01T10:00:00Z"] {
            let response = get(path, None);
            assert_eq!(response.status(), 200, "{path}");
            let headers = response.headers();
            assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert!(csp.contains("img-src 'self' data: blob: https:") && csp.contains("script-src 'self';"), "{csp}");
        }
    }

    #[test]
    fn hashed_assets_are_immutable_and_gzipped_when_accepted() {
        let css = polo_web::assets().iter().find(|a| a.path.ends_with(".css")).unwrap();
        let plain = get(css.path, None);
        assert_eq!(plain.headers()[header::CACHE_CONTROL], "public, max-age=31536000, immutable");
        assert_eq!(plain.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let zipped = get(css.path, Some("br, gzip;q=0.8"));
        assert_eq!(zipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(zipped.headers()[header::VARY], "Accept-Encoding");
        assert!(get(css.path, Some("gzip;q=0")).headers().get(header::CONTENT_ENCODING).is_none());
    }

    #[test]
    fn api_paths_and_missing_assets_are_json_404s() {
        for path in ["/api/v1/nope", "/api", "/assets/missing-123.js"] {
            let response = get(path, None);
            assert_eq!(response.status(), 404, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json", "{path}");
        }
    }
}

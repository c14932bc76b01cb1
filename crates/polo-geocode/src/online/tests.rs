//! The client against local mock servers (axum on 127.0.0.1:0) speaking
//! each provider's API: answers, cache, rate limit and every error path.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri};
use axum::routing::get;

use super::*;

/// What the mock server saw: one entry per request, path and query plus User-Agent.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn first(&self) -> (String, String) {
        self.0.lock().unwrap()[0].clone()
    }
}

/// Serves `respond` at `path`, recording every request; the first answer
/// comes after `delay`, the others at once.
async fn mock(
    path: &'static str,
    delay: Duration,
    respond: impl Fn(&Uri) -> (u16, String) + Clone + Send + Sync + 'static,
) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let handler = move |uri: Uri, headers: HeaderMap| {
        let record = record.clone();
        let respond = respond.clone();
        async move {
            let agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let first = {
                let mut log = record.0.lock().unwrap();
                log.push((uri.to_string(), agent));
                log.len() == 1
            };
            if first {
                tokio::time::sleep(delay).await;
            }
            let (status, body) = respond(&uri);
            (AxumStatus::from_u16(status).unwrap(), [("content-type", "application/json")], body)
        }
    };
    let router = Router::new().route(path, get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, seen)
}

const PHOTON_HOUSE: &str = r#"{"type":"FeatureCollection","features":[{"type":"Feature",
    "geometry":{"type":"Point","coordinates":[8.5398,47.3723]},
    "properties":{"street":"Bahnhofstrasse","housenumber":"1","city":"Zürich","country":"Schweiz"}}]}"#;

fn photon_house(_: &Uri) -> (u16, String) {
    (200, PHOTON_HOUSE.to_owned())
}

/// A client without a rate limit unless the test sets one.
fn client(provider: Provider, base: String, configure: impl FnOnce(&mut OnlineConfig)) -> OnlineGeocoder {
    let mut config = OnlineConfig::new(provider, base);
    config.min_interval = Duration::ZERO;
    config.timeout = Duration::from_secs(5);
    configure(&mut config);
    OnlineGeocoder::new(config).unwrap()
}

fn coord(lat: f64, lon: f64) -> Coord {
    Coord::from_degrees(lat, lon).unwrap()
}

/// A position in the same H3 cell as `of`, but not equal to it: the cell's centre.
fn same_cell(of: Coord) -> Coord {
    let centre = LatLng::from(OnlineGeocoder::cell(of));
    let other = coord(centre.lat(), centre.lng());
    assert_eq!(OnlineGeocoder::cell(other), OnlineGeocoder::cell(of));
    assert_ne!(other, of);
    other
}

#[tokio::test]
async fn photon_answers_a_street_name() {
    let (address, seen) = mock("/reverse", Duration::ZERO, photon_house).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let name = photon.street_name(coord(47.3723, 8.5398)).await.unwrap();
    assert_eq!(name.as_deref(), Some("Bahnhofstrasse 1, Zürich"));
    let (target, agent) = seen.first();
    assert!(target.starts_with("/reverse?lat=47.37"), "{target}");
    assert!(target.contains("&lon=8.54"), "{target}");
    assert_eq!(agent, DEFAULT_USER_AGENT);
    assert!(agent.starts_with("polo/"));
}

#[tokio::test]
async fn nominatim_answers_a_street_name_under_a_path_prefix() {
    let body = r#"{"place_id":1,"name":"","display_name":"1, Bahnhofstrasse, Zürich",
        "address":{"house_number":"1","road":"Bahnhofstrasse","city":"Zürich","country":"Schweiz"}}"#;
    let (address, seen) = mock("/nominatim/reverse", Duration::ZERO, move |_| (200, body.to_owned())).await;
    let nominatim = client(Provider::Nominatim, format!("http://{address}/nominatim/"), |config| {
        config.user_agent = "polo-test/1".to_owned();
    });
    let name = nominatim.street_name(coord(47.3723, 8.5398)).await.unwrap();
    assert_eq!(name.as_deref(), Some("Bahnhofstrasse 1, Zürich"));
    let (target, agent) = seen.first();
    assert!(target.starts_with("/nominatim/reverse?format=jsonv2&addressdetails=1&lat=47.37"), "{target}");
    assert_eq!(agent, "polo-test/1");
}

#[tokio::test]
async fn nearby_lookups_share_one_request() {
    let (address, seen) = mock("/reverse", Duration::ZERO, photon_house).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let here = coord(47.3723, 8.5398);
    let first = photon.street_name(here).await.unwrap();
    let second = photon.street_name(same_cell(here)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(seen.count(), 1, "the second lookup was answered from the cache");
    // A kilometre north is another cell: a second request.
    photon.street_name(coord(47.3813, 8.5398)).await.unwrap();
    assert_eq!(seen.count(), 2);
    assert_eq!(photon.cached(), 2);
}

#[tokio::test]
async fn concurrent_lookups_in_one_cell_share_one_request() {
    let (address, seen) = mock("/reverse", Duration::from_millis(50), photon_house).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let here = coord(47.3723, 8.5398);
    let (a, b) = tokio::join!(photon.street_name(here), photon.street_name(same_cell(here)));
    assert_eq!(a.unwrap(), b.unwrap());
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn the_rate_limit_spaces_requests() {
    let (address, seen) = mock("/reverse", Duration::ZERO, photon_house).await;
    let interval = Duration::from_millis(150);
    let photon = client(Provider::Photon, format!("http://{address}"), |config| config.min_interval = interval);
    let started = Instant::now();
    for step in 0..3 {
        photon.street_name(coord(47.0 + f64::from(step) * 0.01, 8.5)).await.unwrap();
    }
    // Three requests in three cells: the second and third each waited for
    // the interval (a lower bound only, so a slow machine cannot fail it).
    assert!(started.elapsed() >= interval * 2, "{:?}", started.elapsed());
    assert_eq!(seen.count(), 3);
    // A cache hit does not wait for the limit.
    let hit = Instant::now();
    photon.street_name(coord(47.0, 8.5)).await.unwrap();
    assert!(hit.elapsed() < interval, "{:?}", hit.elapsed());
    assert_eq!(seen.count(), 3);
}

#[test]
fn the_default_limit_is_one_request_per_second() {
    let config = OnlineConfig::new(Provider::Photon, "https://photon.komoot.io");
    assert_eq!(config.min_interval, Duration::from_secs(1));
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert!(OnlineGeocoder::new(config).is_ok(), "TLS set up with the bundled roots");
}

#[tokio::test]
async fn nothing_there_is_none_and_cached() {
    let (address, seen) =
        mock("/reverse", Duration::ZERO, |_| (200, r#"{"type":"FeatureCollection","features":[]}"#.to_owned())).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    assert_eq!(photon.street_name(coord(30.0, -40.0)).await.unwrap(), None);
    assert_eq!(photon.street_name(coord(30.0, -40.0)).await.unwrap(), None);
    assert_eq!(seen.count(), 1);

    let (address, _) = mock("/reverse", Duration::ZERO, |_| (200, r#"{"error":"Unable to geocode"}"#.to_owned())).await;
    let nominatim = client(Provider::Nominatim, format!("http://{address}"), |_| {});
    assert_eq!(nominatim.street_name(coord(30.0, -40.0)).await.unwrap(), None);
}

#[tokio::test]
async fn an_http_error_status_is_reported_and_not_cached() {
    let (address, seen) = mock("/reverse", Duration::ZERO, |_| (503, "overloaded, try later".to_owned())).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let here = coord(47.3723, 8.5398);
    let error = photon.street_name(here).await.unwrap_err();
    assert!(matches!(&error, OnlineError::Status { status: 503, excerpt, .. } if excerpt == "overloaded, try later"));
    assert_eq!(error.to_string(), "Photon answered HTTP 503: overloaded, try later");
    photon.street_name(here).await.unwrap_err();
    assert_eq!(seen.count(), 2, "errors are asked again");
    assert_eq!(photon.cached(), 0);
}

#[tokio::test]
async fn bad_json_says_what_is_missing() {
    let (address, _) = mock("/reverse", Duration::ZERO, |_| (200, r#"{"type":"FeatureCollection"}"#.to_owned())).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let error = photon.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert_eq!(error.to_string(), "Photon answered with unusable JSON: no `features` array");

    let (address, _) = mock("/reverse", Duration::ZERO, |_| (200, r#"{"place_id":7}"#.to_owned())).await;
    let nominatim = client(Provider::Nominatim, format!("http://{address}"), |_| {});
    let error = nominatim.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert!(
        matches!(&error, OnlineError::BadJson { provider: Provider::Nominatim, what } if what.contains("display_name"))
    );
}

#[tokio::test]
async fn a_slow_server_times_out_and_the_next_request_reconnects() {
    let (address, seen) = mock("/reverse", Duration::from_secs(3), photon_house).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |config| {
        // Long enough for a loaded machine to answer the second request.
        config.timeout = Duration::from_millis(500);
    });
    let error = photon.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert!(matches!(error, OnlineError::Timeout { after, .. } if after == Duration::from_millis(500)), "{error}");
    assert_eq!(error.to_string(), "Photon did not answer within 500ms");
    // The abandoned connection is dropped; the next request opens another.
    assert!(photon.street_name(coord(47.3723, 8.5398)).await.unwrap().is_some());
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn a_refused_connection_names_the_address() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let error = photon.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert!(matches!(&error, OnlineError::Connect { authority, .. } if *authority == address.to_string()), "{error}");
}

#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let (address, _) = mock("/reverse", Duration::ZERO, |_| (200, "x".repeat(http::MAX_BODY + 1))).await;
    let photon = client(Provider::Photon, format!("http://{address}"), |_| {});
    let error = photon.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert!(matches!(error, OnlineError::TooLarge { limit: http::MAX_BODY, .. }), "{error}");
}

#[test]
fn a_bad_base_url_is_refused_up_front() {
    let error = OnlineGeocoder::new(OnlineConfig::new(Provider::Nominatim, "nominatim.example.org")).unwrap_err();
    assert_eq!(error.to_string(), r#"invalid Nominatim URL "nominatim.example.org": the scheme must be http or https"#);
}

#[test]
fn the_client_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OnlineGeocoder>();
    assert_send_sync::<crate::Geocoder>();
}

/// An https server with a fresh self-signed certificate for `localhost`
/// that answers every request with a Photon house; and the roots trusting it.
async fn tls_mock() -> (SocketAddr, rustls::RootCertStore) {
    use hyper::server::conn::http1 as server;
    use hyper_util::rt::TokioIo;
    use rustls_pki_types::PrivatePkcs8KeyDer;

    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()).into();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper::service::service_fn(|_| async {
                    let body = http_body_util::Full::new(hyper::body::Bytes::from_static(PHOTON_HOUSE.as_bytes()));
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(body))
                });
                let _ = server::Builder::new().serve_connection(TokioIo::new(tls), service).await;
            });
        }
    });
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    (address, roots)
}

#[tokio::test]
async fn https_with_a_verified_certificate() {
    let (address, roots) = tls_mock().await;
    let mut config = OnlineConfig::new(Provider::Photon, format!("https://localhost:{}", address.port()));
    config.min_interval = Duration::ZERO;
    let photon = OnlineGeocoder::with_roots(config.clone(), Some(roots)).unwrap();
    let name = photon.street_name(coord(47.3723, 8.5398)).await.unwrap();
    assert_eq!(name.as_deref(), Some("Bahnhofstrasse 1, Zürich"));
    // The kept-alive TLS connection serves the next cell too.
    assert!(photon.street_name(coord(47.3813, 8.5398)).await.unwrap().is_some());

    // With Mozilla's roots the self-signed certificate is refused, by name.
    let strict = OnlineGeocoder::new(config).unwrap();
    let error = strict.street_name(coord(47.3723, 8.5398)).await.unwrap_err();
    assert!(matches!(&error, OnlineError::Tls { host, .. } if host == "localhost"), "{error}");
}

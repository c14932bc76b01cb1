//! The street-name task against an in-memory store and a mock Photon server
//! (axum on 127.0.0.1:0): what is asked, what is stored, errors, fairness,
//! the background loop and its shutdown.

use std::net::SocketAddr;
use std::sync::Mutex;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::routing::get;
use polo_derived::kinds::{PLACE, PLACE_ADDRESS};
use polo_derived::rows::{Locality, PlaceRow};
use polo_derived::views;
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope};
use polo_store_sqlite::SqliteStore;

use super::*;

const ZURICH: (f64, f64) = (47.3723, 8.5398);
const BERN: (f64, f64) = (46.9466, 7.4441);
const OCEAN: (f64, f64) = (30.0, -40.0);

/// The latitudes the mock was asked about, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<f64>>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn photon_house(street: &str, number: &str, city: &str) -> String {
    serde_json::json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"street": street, "housenumber": number, "city": city}}]})
    .to_string()
}

/// What the mock answers for the `n`th request (from 1) about latitude `lat`.
type Respond = fn(usize, f64) -> (u16, String);

/// Streets in Zürich and Bern, nothing elsewhere.
fn streets(_: usize, lat: f64) -> (u16, String) {
    if (lat - ZURICH.0).abs() < 0.01 {
        (200, photon_house("Bahnhofstrasse", "1", "Zürich"))
    } else if (lat - BERN.0).abs() < 0.01 {
        (200, photon_house("Bundesplatz", "3", "Bern"))
    } else {
        (200, r#"{"type":"FeatureCollection","features":[]}"#.to_owned())
    }
}

/// A Photon server on 127.0.0.1:0 answering `/reverse` with `respond`
/// after `delay`.
async fn mock(respond: Respond, delay: Duration) -> (SocketAddr, Seen) {
    let seen = Seen::default();
    let record = seen.clone();
    let handler = move |uri: Uri| {
        let record = record.clone();
        async move {
            let lat = uri
                .query()
                .and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("lat=")))
                .and_then(|lat| lat.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            let n = {
                let mut log = record.0.lock().unwrap();
                log.push(lat);
                log.len()
            };
            tokio::time::sleep(delay).await;
            let (status, body) = respond(n, lat);
            (StatusCode::from_u16(status).unwrap(), [("content-type", "application/json")], body)
        }
    };
    let router = Router::new().route("/reverse", get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, seen)
}

/// Quick rounds and retries, for tests.
fn quick() -> Timing {
    Timing {
        interval: Duration::from_millis(50),
        batch: 32,
        backoff_min: Duration::from_millis(20),
        backoff_max: Duration::from_millis(100),
        place_retry_min: Duration::from_millis(400),
        place_retry_max: Duration::from_secs(2),
    }
}

/// A resolver over `store` asking the mock at `address`, without the 1 s rate limit.
fn resolver(store: &Arc<SqliteStore>, metrics: &Metrics, address: SocketAddr, timing: Timing) -> Resolver {
    let mut config = OnlineConfig::new(Provider::Photon, format!("http://{address}"));
    config.min_interval = Duration::ZERO;
    config.timeout = Duration::from_secs(5);
    let geocoder = OnlineGeocoder::new(config).unwrap();
    Resolver::new(store.clone(), metrics.clone(), geocoder, Provider::Photon, timing)
}

/// Stores a computed place, as the engine does.
fn put_place(store: &SqliteStore, user: UserId, id: i64, (lat, lon): (f64, f64)) {
    let at = Coord::from_degrees(lat, lon).unwrap();
    let place = PlaceRow {
        lat_e7: at.lat_e7,
        lon_e7: at.lon_e7,
        first_visit: 0,
        first_visit_offset: None,
        locality: Locality::default(),
    };
    let row =
        DerivedRow { kind: PLACE, scope: DerivedScope::User, key: id, value: serde_json::to_vec(&place).unwrap() };
    store.derived_write(user, &DerivedBatch { delete: vec![], put: vec![row] }, false).unwrap();
}

/// Place id → address, as `GET /api/v1/places` shows them.
fn shown(store: &SqliteStore, user: UserId) -> Vec<(i64, Option<String>)> {
    views::places(store, user).unwrap().into_iter().map(|p| (p.id, p.address)).collect()
}

fn answers(store: &SqliteStore, user: UserId) -> Vec<(i64, PlaceAddress)> {
    store
        .derived_range(user, &DerivedRange::all(PLACE_ADDRESS, DerivedScope::User))
        .unwrap()
        .into_iter()
        .map(|row| (row.key, serde_json::from_slice(&row.value).unwrap()))
        .collect()
}

fn never_stopped() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    watch::channel(false)
}

#[tokio::test]
async fn places_are_asked_about_once_and_nothing_there_is_remembered() {
    let (address, seen) = mock(streets, Duration::ZERO).await;
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    let bob = store.create_user("bob", "x", false).unwrap().id;
    put_place(&store, alice, 1, ZURICH);
    put_place(&store, alice, 2, OCEAN);
    put_place(&store, bob, 1, BERN);
    let metrics = Metrics::new();
    let mut names = resolver(&store, &metrics, address, quick());
    let (_keep, mut stopped) = never_stopped();

    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 3);
    assert_eq!(shown(&store, alice), [(1, Some("Bahnhofstrasse 1, Zürich".to_owned())), (2, None)]);
    assert_eq!(shown(&store, bob), [(1, Some("Bundesplatz 3, Bern".to_owned()))]);
    let stored = answers(&store, alice);
    let ocean = &stored.iter().find(|(id, _)| *id == 2).unwrap().1;
    assert_eq!((ocean.address.as_deref(), ocean.provider.as_str()), (None, "photon"), "nothing there is stored");
    let anchor = Coord::from_degrees(OCEAN.0, OCEAN.1).unwrap();
    assert_eq!((ocean.lat_e7, ocean.lon_e7), (anchor.lat_e7, anchor.lon_e7));
    assert!(ocean.resolved_at > 1_600_000_000_000, "{}", ocean.resolved_at);

    // Everything is answered: the next round asks nothing.
    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 3);

    // A new place a few centimetres from a known one: the client's cell cache answers.
    put_place(&store, alice, 3, (ZURICH.0 + 0.000_001, ZURICH.1));
    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 3, "answered from the H3 cell cache");
    assert_eq!(shown(&store, alice)[2], (3, Some("Bahnhofstrasse 1, Zürich".to_owned())));

    let text = metrics.render();
    for needle in [
        r#"polo_street_name_lookups_total{outcome="found"} 3"#,
        r#"polo_street_name_lookups_total{outcome="nothing"} 1"#,
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(!text.contains("polo_street_name_errors_total{"), "{text}");
}

/// 503 for the first two requests, then streets.
fn overloaded_at_first(n: usize, lat: f64) -> (u16, String) {
    if n <= 2 { (503, "overloaded".to_owned()) } else { streets(n, lat) }
}

#[tokio::test]
async fn errors_are_counted_and_the_place_is_asked_again_after_its_back_off() {
    let (address, seen) = mock(overloaded_at_first, Duration::ZERO).await;
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    put_place(&store, alice, 1, ZURICH);
    put_place(&store, alice, 2, BERN);
    let metrics = Metrics::new();
    let timing = quick();
    let mut names = resolver(&store, &metrics, address, timing);
    let (_keep, mut stopped) = never_stopped();

    // The round stops at the error; the failed place waits, the next one is tried.
    assert_eq!(names.round(&mut stopped).await, Round::Failed { answered: false });
    assert_eq!(seen.count(), 1);
    assert_eq!(names.round(&mut stopped).await, Round::Failed { answered: false });
    assert_eq!(seen.count(), 2);
    // Both are waiting for their back-off: nothing is asked, nothing stored.
    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 2);
    assert!(answers(&store, alice).is_empty(), "errors are not stored");
    let text = metrics.render();
    for needle in
        [r#"polo_street_name_lookups_total{outcome="error"} 2"#, r#"polo_street_name_errors_total{reason="status"} 2"#]
    {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }

    tokio::time::sleep(timing.place_retry_min + Duration::from_millis(100)).await;
    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 4);
    assert_eq!(
        shown(&store, alice),
        [(1, Some("Bahnhofstrasse 1, Zürich".to_owned())), (2, Some("Bundesplatz 3, Bern".to_owned()))]
    );
    assert!(names.deferred.is_empty(), "an answer clears the place's back-off");
}

#[test]
fn a_place_that_keeps_failing_waits_longer_each_time() {
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let timing =
        Timing { place_retry_min: Duration::from_secs(60), place_retry_max: Duration::from_secs(3600), ..quick() };
    let mut names = resolver(&store, &Metrics::new(), "127.0.0.1:9".parse().unwrap(), timing);
    let place = Pending { user: UserId(1), place: 7, anchor: Coord::from_degrees(1.0, 1.0).unwrap() };
    let waits: Vec<u64> = (0..8).map(|_| names.defer(place).as_secs()).collect();
    assert_eq!(waits, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
}

#[test]
fn users_take_turns_within_a_bounded_batch() {
    let at = Coord::from_degrees(1.0, 1.0).unwrap();
    let queue = |user: i64, places: &[i64]| -> VecDeque<Pending> {
        places.iter().map(|&place| Pending { user: UserId(user), place, anchor: at }).collect()
    };
    let picked = |limit| -> Vec<(i64, i64)> {
        take_in_turn(vec![queue(1, &[1, 2, 3, 4]), queue(2, &[5]), queue(3, &[6, 7])], limit)
            .into_iter()
            .map(|p| (p.user.0, p.place))
            .collect()
    };
    assert_eq!(picked(4), [(1, 1), (2, 5), (3, 6), (1, 2)]);
    assert_eq!(picked(10), [(1, 1), (2, 5), (3, 6), (1, 2), (3, 7), (1, 3), (1, 4)]);
    assert!(picked(0).is_empty());
}

#[tokio::test]
async fn a_full_batch_asks_for_another_round_at_once() {
    let (address, seen) = mock(streets, Duration::ZERO).await;
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    let bob = store.create_user("bob", "x", false).unwrap().id;
    for id in 1..=3 {
        put_place(&store, alice, id, (OCEAN.0 + f64::from(u8::try_from(id).unwrap()), OCEAN.1));
    }
    put_place(&store, bob, 1, BERN);
    let mut names = resolver(&store, &Metrics::new(), address, Timing { batch: 2, ..quick() });
    let (_keep, mut stopped) = never_stopped();
    assert_eq!(names.round(&mut stopped).await, Round::More);
    assert_eq!(seen.count(), 2);
    assert_eq!(shown(&store, bob), [(1, Some("Bundesplatz 3, Bern".to_owned()))], "bob's turn came in the first batch");
    assert_eq!(names.round(&mut stopped).await, Round::More);
    assert_eq!(names.round(&mut stopped).await, Round::Idle);
    assert_eq!(seen.count(), 4);
    assert_eq!(answers(&store, alice).len(), 3);
}

/// Waits (at most 5 s) until `wanted` of the user's places show a street name.
async fn wait_until_named(store: &SqliteStore, user: UserId, wanted: usize) {
    for _ in 0..200 {
        if shown(store, user).iter().filter(|(_, address)| address.is_some()).count() >= wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {wanted} street names after 5 s: {:?}", shown(store, user));
}

#[tokio::test]
async fn the_task_names_new_places_in_the_background_and_stops_promptly() {
    let (address, seen) = mock(streets, Duration::ZERO).await;
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    put_place(&store, alice, 1, ZURICH);
    let task = StreetNames::spawn(resolver(&store, &Metrics::new(), address, quick()));
    wait_until_named(&store, alice, 1).await;
    // A place found later is picked up by a later round.
    put_place(&store, alice, 2, BERN);
    wait_until_named(&store, alice, 2).await;
    assert_eq!(seen.count(), 2);
    tokio::time::timeout(Duration::from_secs(2), task.shutdown()).await.unwrap();
}

#[tokio::test]
async fn shutdown_abandons_a_request_in_flight() {
    let (address, seen) = mock(streets, Duration::from_secs(30)).await;
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    put_place(&store, alice, 1, ZURICH);
    let task = StreetNames::spawn(resolver(&store, &Metrics::new(), address, quick()));
    for _ in 0..200 {
        if seen.count() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen.count(), 1, "the request is in flight");
    tokio::time::timeout(Duration::from_secs(2), task.shutdown()).await.expect("shutdown waited for the provider");
    assert!(answers(&store, alice).is_empty());
}

#[tokio::test]
async fn an_unreachable_provider_is_counted_and_backed_off() {
    // A port nobody listens on: connection refused at once.
    let unused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let store = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", "x", false).unwrap().id;
    put_place(&store, alice, 1, ZURICH);
    let metrics = Metrics::new();
    let mut names = resolver(&store, &metrics, unused, quick());
    let (_keep, mut stopped) = never_stopped();
    assert_eq!(names.round(&mut stopped).await, Round::Failed { answered: false });
    let text = metrics.render();
    assert!(text.contains(r#"polo_street_name_errors_total{reason="connect"} 1"#), "{text}");
    assert_eq!(names.deferred.len(), 1);
}

#[test]
fn settings_name_a_provider_and_a_usable_url() {
    let photon = StreetNameSettings::new("photon", "https://photon.komoot.io").unwrap();
    assert_eq!((photon.provider, photon.url.as_str()), (Provider::Photon, "https://photon.komoot.io"));
    let nominatim = StreetNameSettings::new(" Nominatim ", " http://127.0.0.1:8080/nominatim ").unwrap();
    assert_eq!((nominatim.provider, nominatim.url.as_str()), (Provider::Nominatim, "http://127.0.0.1:8080/nominatim"));
    assert_eq!(nominatim.config().min_interval, Duration::from_secs(1), "the polite default");
    let unknown = StreetNameSettings::new("google", "https://maps.example").unwrap_err();
    assert_eq!(unknown.to_string(), r#"unknown geocoder "google" (use photon or nominatim)"#);
    let bad = StreetNameSettings::new("photon", "photon.komoot.io").unwrap_err();
    assert_eq!(bad.to_string(), r#"invalid Photon URL "photon.komoot.io": the scheme must be http or https"#);
    assert_eq!((provider_name(Provider::Photon), provider_name(Provider::Nominatim)), ("photon", "nominatim"));
}

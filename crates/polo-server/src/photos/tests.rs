//! The photo routes in process, on the backend `POLO_TEST_BACKEND` names:
//! a day's photos in time order with their positions, thumbnails at both
//! sizes, the review of proposed positions (listed, applied as sidecars,
//! undone), and each user seeing and changing only their own. Multi-threaded
//! runtimes: the PostgreSQL store blocks in place, which a current-thread
//! runtime does not allow.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;
use polo_derived::photos::{Library, PhotoRow};
use polo_domain::UserId;
use polo_test_support::TestStore;
use serde_json::Value;
use tower::ServiceExt;

const PASSWORD: &str = "a long enough password";

struct Reply {
    status: StatusCode,
    content_type: Option<String>,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.bytes)))
    }
}

async fn get(router: &Router, user: &str, path: &str) -> Reply {
    send(router, user, Method::GET, path, None).await
}

async fn post(router: &Router, user: &str, path: &str, body: &Value) -> Reply {
    send(router, user, Method::POST, path, Some(body)).await
}

async fn send(router: &Router, user: &str, method: Method, path: &str, body: Option<&Value>) -> Reply {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    let builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "polo.example")
        .header(header::AUTHORIZATION, format!("Basic {basic}"));
    let mut request = match body {
        Some(body) => builder.header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    }
    .unwrap();
    request.extensions_mut().insert(ConnectInfo("127.0.0.1:40000".parse::<SocketAddr>().unwrap()));
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let content_type = parts.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    Reply { status: parts.status, content_type, bytes: axum::body::to_bytes(body, 1 << 24).await.unwrap().to_vec() }
}

fn row(path: &std::path::Path, taken: i64, position: Option<(f64, f64)>) -> PhotoRow {
    PhotoRow {
        path: path.to_string_lossy().into_owned(),
        media: "image".to_owned(),
        taken: Some(taken),
        offset_min: Some(120),
        offset_from: Some("file".to_owned()),
        lat_e7: position.map(|(lat, _)| (lat * 1e7).round() as i32),
        lon_e7: position.map(|(_, lon)| (lon * 1e7).round() as i32),
        position_from: position.map(|_| "file".to_owned()),
        confidence: None,
        error_m: None,
        nearest_fix_s: None,
        moving: None,
        applied: None,
        altitude_m: None,
        camera: Some("Pixel 8".to_owned()),
    }
}

fn user(store: &dyn polo_store::Store, name: &str) -> UserId {
    store.create_user(name, &crate::auth::hash_password(PASSWORD).unwrap(), false).unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_days_photos_come_in_time_order_with_thumbnails_and_only_for_their_owner() {
    let backend = TestStore::new();
    let store = Arc::clone(&backend.store);
    let ann = user(&*store, "ann");
    user(&*store, "bob");
    let originals = tempfile::tempdir().unwrap();
    let jpeg = polo_photos::synthetic::image(polo_photos::synthetic::ImageFormat::Jpeg, &Default::default());
    let (first, second, video) =
        (originals.path().join("IMG_1.jpg"), originals.path().join("IMG_2.jpg"), originals.path().join("clip.mp4"));
    std::fs::write(&first, &jpeg).unwrap();
    std::fs::write(&second, &jpeg).unwrap();
    std::fs::write(&video, b"a video").unwrap();
    let noon = 1_720_951_200_000; // 2024-07-14 10:00 UTC, 12:00 in Lübeck
    let mut library = Library::load(&*store, ann).unwrap();
    library.put(row(&second, noon + 3_600_000, None)).unwrap();
    library.put(row(&first, noon, Some((53.8655, 10.6866)))).unwrap();
    library.put(PhotoRow { media: "video".to_owned(), ..row(&video, noon + 60_000, None) }).unwrap();
    library.put(row(&originals.path().join("next-day.jpg"), noon + 86_400_000, None)).unwrap();
    library.flush().unwrap();
    let router = crate::router(crate::AppState::new(Arc::clone(&store)).unwrap());

    let day = "/api/v1/photos?from=2024-07-14T00:00:00%2B02:00&to=2024-07-15T00:00:00%2B02:00";
    let page = get(&router, "ann", day).await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.json();
    assert_eq!(page["truncated"], false);
    let photos = page["photos"].as_array().unwrap();
    let names: Vec<&str> = photos.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["IMG_1.jpg", "clip.mp4", "IMG_2.jpg"], "the day's, in time order");
    assert_eq!(photos[0]["taken"], "2024-07-14T12:00:00.000+02:00", "in the photo's own local time");
    assert_eq!((photos[0]["lat"].as_f64(), photos[0]["lon"].as_f64()), (Some(53.8655), Some(10.6866)));
    assert_eq!(photos[0]["position_from"], "file");
    assert!(photos[2]["lat"].is_null(), "no position, none made up");
    assert!(photos[1]["thumbnail"].is_null(), "no thumbnail for a video");
    let thumb = photos[0]["thumbnail"].as_str().unwrap().to_owned();

    let small = get(&router, "ann", &thumb).await;
    assert_eq!((small.status, small.content_type.as_deref()), (StatusCode::OK, Some("image/jpeg")));
    let picture = image::load_from_memory(&small.bytes).unwrap();
    assert_eq!((picture.width(), picture.height()), (96, 72), "smaller than the size: kept as it is");
    assert_eq!(get(&router, "ann", &format!("{thumb}?size=large")).await.status, StatusCode::OK);
    let bad = get(&router, "ann", &format!("{thumb}?size=huge")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["message"].as_str().unwrap().contains("huge"));

    // Bob sees none of Ann's: not in his list, not by id.
    let his = get(&router, "bob", day).await.json();
    assert_eq!(his["photos"], serde_json::json!([]));
    assert_eq!(get(&router, "bob", &thumb).await.status, StatusCode::NOT_FOUND);

    // An original out of reach: its kept thumbnails still show; without one, a 404 that says which file.
    std::fs::remove_file(&first).unwrap();
    let gone = get(&router, "ann", &format!("{thumb}?size=large")).await;
    assert_eq!(gone.status, StatusCode::OK, "made before it moved: kept");
    let other = photos[2]["thumbnail"].as_str().unwrap();
    std::fs::remove_file(&second).unwrap();
    let missing = get(&router, "ann", other).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.json()["message"].as_str().unwrap().contains("IMG_2.jpg"), "{:?}", missing.json());
    assert_eq!(get(&router, "ann", "/api/v1/photos/12x/thumbnail").await.status, StatusCode::NOT_FOUND);

    // A reversed or unreadable range is refused, naming the parameter.
    let reversed = get(&router, "ann", "/api/v1/photos?from=2024-07-15&to=2024-07-14").await;
    assert_eq!(reversed.status, StatusCode::BAD_REQUEST);
    let unreadable = get(&router, "ann", "/api/v1/photos?from=yesterday&to=2024-07-14").await;
    assert_eq!(unreadable.status, StatusCode::BAD_REQUEST);
    assert!(unreadable.json()["message"].as_str().unwrap().starts_with("from"));
}

/// A row whose position was proposed from the history.
fn proposal(path: &std::path::Path, taken: i64, confidence: &str) -> PhotoRow {
    PhotoRow {
        position_from: Some("history".to_owned()),
        confidence: Some(confidence.to_owned()),
        error_m: Some(if confidence == "high" { 40.0 } else { 4_000.0 }),
        nearest_fix_s: Some(if confidence == "high" { 90.0 } else { 9_000.0 }),
        moving: Some(confidence != "high"),
        ..row(path, taken, Some((53.8655, 10.6866)))
    }
}

fn outcomes(reply: &Reply) -> Vec<(String, String)> {
    let body = reply.json();
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap_or(r["id"].as_str().unwrap()).to_owned(),
                r["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn names(page: &Value, list: &str) -> Vec<String> {
    page[list]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proposals_are_reviewed_applied_as_sidecars_and_undone_by_their_owner_only() {
    let backend = TestStore::new();
    let store = Arc::clone(&backend.store);
    let ann = user(&*store, "ann");
    user(&*store, "bob");
    let folder = tempfile::tempdir().unwrap();
    let at = |name: &str| folder.path().join(name);
    let jpeg = polo_photos::synthetic::image(polo_photos::synthetic::ImageFormat::Jpeg, &Default::default());
    for name in ["sure.jpg", "guess.jpg", "own-gps.jpg", "darktable.jpg", "blocked.jpg"] {
        std::fs::write(at(name), &jpeg).unwrap();
    }
    // Another program's sidecar, and a sidecar path polo cannot write (a folder stands there).
    std::fs::write(at("darktable.jpg.xmp"), "<x:xmpmeta>darktable's edits</x:xmpmeta>").unwrap();
    std::fs::create_dir(at("blocked.jpg.xmp")).unwrap();
    let noon = 1_720_951_200_000; // 2024-07-14 10:00 UTC
    let mut library = Library::load(&*store, ann).unwrap();
    let minute = 60_000;
    library.put(proposal(&at("sure.jpg"), noon, "high")).unwrap();
    library.put(proposal(&at("guess.jpg"), noon + minute, "low")).unwrap();
    library.put(row(&at("own-gps.jpg"), noon + 2 * minute, Some((53.0, 10.0)))).unwrap();
    library.put(proposal(&at("darktable.jpg"), noon + 3 * minute, "medium")).unwrap();
    library.put(proposal(&at("blocked.jpg"), noon + 4 * minute, "medium")).unwrap();
    library.put(proposal(&at("gone.jpg"), noon + 5 * minute, "high")).unwrap();
    library.flush().unwrap();
    let router = crate::router(crate::AppState::new(Arc::clone(&store)).unwrap());

    // The proposals, in time order with their reasons; the file's own position is none.
    let page = get(&router, "ann", "/api/v1/photos/proposals").await;
    assert_eq!(page.status, StatusCode::OK);
    let page = page.json();
    assert_eq!(names(&page, "proposals"), ["sure.jpg", "guess.jpg", "darktable.jpg", "blocked.jpg", "gone.jpg"]);
    let sure = &page["proposals"][0];
    assert_eq!((sure["confidence"].as_str(), sure["moving"].as_bool()), (Some("high"), Some(false)));
    assert_eq!((sure["error_m"].as_f64(), sure["nearest_fix_s"].as_f64()), (Some(40.0), Some(90.0)));
    assert_eq!((sure["lat"].as_f64(), sure["lon"].as_f64()), (Some(53.8655), Some(10.6866)));
    assert!(sure["thumbnail"].as_str().unwrap().ends_with("/thumbnail"));
    assert_eq!(page["counts"], serde_json::json!({"high": 2, "medium": 2, "low": 1, "applied": 0}));
    let id = |name: &str| {
        page["proposals"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (sure_id, guess_id) = (id("sure.jpg"), id("guess.jpg"));
    // Filtered by confidence and time; paged.
    let high = get(&router, "ann", "/api/v1/photos/proposals?min_confidence=high").await.json();
    assert_eq!(names(&high, "proposals"), ["sure.jpg", "gone.jpg"]);
    let early = "/api/v1/photos/proposals?from=2024-07-14T10:00:00Z&to=2024-07-14T10:02:00Z";
    assert_eq!(names(&get(&router, "ann", early).await.json(), "proposals"), ["sure.jpg", "guess.jpg"]);
    let first = get(&router, "ann", "/api/v1/photos/proposals?limit=2").await.json();
    assert_eq!((first["truncated"].as_bool(), first["next"].as_str()), (Some(true), Some(guess_id.as_str())));
    let rest = get(&router, "ann", &format!("/api/v1/photos/proposals?limit=2&after={guess_id}")).await.json();
    assert_eq!(names(&rest, "proposals"), ["darktable.jpg", "blocked.jpg"]);
    for bad in ["min_confidence=certain", "limit=0", "limit=2001", "from=2024-07-15&to=2024-07-14", "status=maybe"] {
        let reply = get(&router, "ann", &format!("/api/v1/photos/proposals?{bad}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Bob sees none of them, and cannot apply or undo them.
    let his = get(&router, "bob", "/api/v1/photos/proposals").await.json();
    assert_eq!(his["proposals"], serde_json::json!([]));
    let ids = serde_json::json!({"ids": [sure_id]});
    assert_eq!(post(&router, "bob", "/api/v1/photos/proposals/apply", &ids).await.status, StatusCode::NOT_FOUND);
    assert_eq!(post(&router, "bob", "/api/v1/photos/proposals/undo", &ids).await.status, StatusCode::NOT_FOUND);
    let everything = serde_json::json!({"matching": {}});
    let nothing = post(&router, "bob", "/api/v1/photos/proposals/apply", &everything).await;
    assert_eq!((nothing.status, nothing.json()["results"].as_array().map(Vec::len)), (StatusCode::OK, Some(0)));
    assert!(!polo_photos::sidecar::sidecar_path(&at("sure.jpg")).exists());

    // Ann applies them all by id: each photo has its outcome, none fails the others.
    let all: Vec<String> =
        page["proposals"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    let own = get(&router, "ann", "/api/v1/photos?from=2024-07-14&to=2024-07-15").await.json();
    let own_id = own["photos"][2]["id"].as_str().unwrap().to_owned();
    let mut asked = all.clone();
    asked.extend([own_id, "999".to_owned(), "not-an-id".to_owned()]);
    let applied = post(&router, "ann", "/api/v1/photos/proposals/apply", &serde_json::json!({"ids": asked})).await;
    assert_eq!(applied.status, StatusCode::OK, "{}", String::from_utf8_lossy(&applied.bytes));
    let expected = [
        ("sure.jpg", "written"),
        ("guess.jpg", "written"),
        ("darktable.jpg", "failed"),
        ("blocked.jpg", "failed"),
        ("gone.jpg", "failed"),
        ("own-gps.jpg", "skipped"),
        ("999", "not_found"),
        ("not-an-id", "not_found"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    assert_eq!(outcomes(&applied), expected);
    let body = applied.json();
    assert_eq!((body["written"].as_u64(), body["failed"].as_u64()), (Some(2), Some(3)));
    let message = |i: usize| body["results"][i]["message"].as_str().unwrap().to_owned();
    assert!(message(2).contains("darktable.jpg.xmp") && message(2).contains("another program"), "{}", message(2));
    assert!(message(4).contains("gone.jpg") && message(4).contains("gone"), "{}", message(4));
    let sidecar = std::fs::read_to_string(polo_photos::sidecar::sidecar_path(&at("sure.jpg"))).unwrap();
    assert!(sidecar.contains("exif:GPSLatitude=\"53,51.930000N\"") && sidecar.contains("polo:Confidence=\"high\""));
    assert_eq!(std::fs::read(at("sure.jpg")).unwrap(), jpeg, "the original is never touched");
    assert_eq!(
        std::fs::read_to_string(at("darktable.jpg.xmp")).unwrap(),
        "<x:xmpmeta>darktable's edits</x:xmpmeta>",
        "another program's sidecar is left alone"
    );

    // Applied: no longer proposed, listed as applied, and the day's photos say so.
    let left = get(&router, "ann", "/api/v1/photos/proposals").await.json();
    assert_eq!(names(&left, "proposals"), ["darktable.jpg", "blocked.jpg", "gone.jpg"]);
    assert_eq!(left["counts"]["applied"], 2);
    let done = get(&router, "ann", "/api/v1/photos/proposals?status=applied").await.json();
    assert_eq!(names(&done, "proposals"), ["sure.jpg", "guess.jpg"]);
    assert!(done["proposals"][0]["applied"].as_str().unwrap().starts_with("20"));
    let day = get(&router, "ann", "/api/v1/photos?from=2024-07-14&to=2024-07-15").await.json();
    assert!(day["photos"][0]["applied"].is_string() && day["photos"][2]["applied"].is_null(), "{day}");

    // Applying again writes nothing new; a sidecar removed behind polo's back is written again.
    let again =
        post(&router, "ann", "/api/v1/photos/proposals/apply", &serde_json::json!({"ids": [sure_id, guess_id]})).await;
    assert_eq!(
        outcomes(&again),
        [("sure.jpg".to_owned(), "unchanged".to_owned()), ("guess.jpg".to_owned(), "unchanged".to_owned())]
    );
    std::fs::remove_file(polo_photos::sidecar::sidecar_path(&at("guess.jpg"))).unwrap();
    let healed = post(&router, "ann", "/api/v1/photos/proposals/apply", &serde_json::json!({"ids": [guess_id]})).await;
    assert_eq!(outcomes(&healed), [("guess.jpg".to_owned(), "written".to_owned())]);

    // Undo everything applied: polo's sidecars go, the photos are proposals again.
    let undone = post(&router, "ann", "/api/v1/photos/proposals/undo", &everything).await;
    assert_eq!(
        outcomes(&undone),
        [("sure.jpg".to_owned(), "removed".to_owned()), ("guess.jpg".to_owned(), "removed".to_owned())]
    );
    assert!(!polo_photos::sidecar::sidecar_path(&at("sure.jpg")).exists());
    assert!(at("darktable.jpg.xmp").exists());
    let back = get(&router, "ann", "/api/v1/photos/proposals").await.json();
    assert_eq!(back["counts"], serde_json::json!({"high": 2, "medium": 2, "low": 1, "applied": 0}));
    // Undoing again: nothing applied is left to undo; by id, nothing is there to remove.
    let twice = post(&router, "ann", "/api/v1/photos/proposals/undo", &everything).await.json();
    assert_eq!(twice["results"], serde_json::json!([]));
    let by_id = post(&router, "ann", "/api/v1/photos/proposals/undo", &serde_json::json!({"ids": [sure_id]})).await;
    assert_eq!(outcomes(&by_id), [("sure.jpg".to_owned(), "absent".to_owned())]);

    // All that match a filter: only the high ones (the one that is gone fails).
    let matching = serde_json::json!({"matching": {"min_confidence": "high"}});
    let high = post(&router, "ann", "/api/v1/photos/proposals/apply", &matching).await;
    assert_eq!(
        outcomes(&high),
        [("sure.jpg".to_owned(), "written".to_owned()), ("gone.jpg".to_owned(), "failed".to_owned())]
    );
    assert_eq!(high.json()["more"], false);

    // A batch says which photos: ids or matching, not both or neither.
    for bad in
        [serde_json::json!({}), serde_json::json!({"ids": [sure_id], "matching": {}}), serde_json::json!({"ids": []})]
    {
        let reply = post(&router, "ann", "/api/v1/photos/proposals/apply", &bad).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let unknown = serde_json::json!({"matching": {"min_confidence": "certain"}});
    assert!(post(&router, "ann", "/api/v1/photos/proposals/apply", &unknown).await.status.is_client_error());
}

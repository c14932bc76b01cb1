//! The photo routes in process, on the backend `POLO_TEST_BACKEND` names:
//! a day's photos in time order with their positions, thumbnails at both
//! sizes, and each user seeing only their own.

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
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::HOST, "polo.example")
        .header(header::AUTHORIZATION, format!("Basic {basic}"))
        .body(Body::empty())
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
        altitude_m: None,
        camera: Some("Pixel 8".to_owned()),
    }
}

fn user(store: &dyn polo_store::Store, name: &str) -> UserId {
    store.create_user(name, &crate::auth::hash_password(PASSWORD).unwrap(), false).unwrap().id
}

#[tokio::test]
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

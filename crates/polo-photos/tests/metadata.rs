//! Metadata read back from files of every container polo reads, made by
//! `polo_photos::synthetic`, for each way a file states its time.

use polo_domain::{Coord, Timestamp};
use polo_photos::meta::MetaReader;
use polo_photos::synthetic::{ImageFormat, Spec, VideoFormat, image, video};
use polo_photos::{CaptureTime, MediaKind, PhotoError};

fn lubeck() -> Coord {
    Coord::from_degrees(53.8655, 10.6866).unwrap()
}

fn at(h: u32, m: u32, s: u32) -> Timestamp {
    Timestamp::from_civil(2024, 7, 14, h, m, s, 0).unwrap()
}

fn read(name: &str, bytes: &[u8]) -> Result<polo_photos::PhotoMeta, PhotoError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    MetaReader::new().read(&path)
}

fn close(a: Coord, b: Coord) -> bool {
    (a.lat() - b.lat()).abs() < 1e-5 && (a.lon() - b.lon()).abs() < 1e-5
}

#[test]
fn every_image_container_gives_time_offset_position_and_camera() {
    let spec = Spec {
        wall: Some(at(14, 3, 10)),
        offset_minutes: Some(120),
        position: Some(lubeck()),
        altitude_m: Some(12.5),
        gps_time: None,
        make_model: Some(("Apple".into(), "iPhone 15".into())),
    };
    let formats = [
        (ImageFormat::Jpeg, "a.jpg"),
        (ImageFormat::Png, "a.png"),
        (ImageFormat::Webp, "a.webp"),
        (ImageFormat::Heic, "a.heic"),
    ];
    for (format, name) in formats {
        let meta = read(name, &image(format, &spec)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meta.kind, MediaKind::Image, "{name}");
        assert_eq!(meta.taken, Some(CaptureTime::Zoned { at: at(12, 3, 10), offset_minutes: 120 }), "{name}");
        assert!(close(meta.position.unwrap(), lubeck()), "{name}: {:?}", meta.position);
        assert_eq!(meta.altitude_m, Some(12.5), "{name}");
        assert_eq!(meta.camera.as_deref(), Some("Apple iPhone 15"), "{name}");
    }
}

#[test]
fn a_wall_clock_time_takes_its_offset_from_the_gps_time_stamp_or_stays_local() {
    let with_gps = Spec {
        wall: Some(at(9, 30, 0)),
        position: Some(Coord::from_degrees(40.7128, -74.006).unwrap()),
        gps_time: Some(at(13, 29, 58)),
        ..Spec::default()
    };
    let meta = read("ny.jpg", &image(ImageFormat::Jpeg, &with_gps)).unwrap();
    assert_eq!(meta.taken, Some(CaptureTime::Zoned { at: at(13, 30, 0), offset_minutes: -240 }));
    let bare = Spec { wall: Some(at(9, 30, 0)), ..Spec::default() };
    let meta = read("bare.jpg", &image(ImageFormat::Jpeg, &bare)).unwrap();
    assert_eq!(meta.taken, Some(CaptureTime::Local(at(9, 30, 0))));
    assert_eq!(meta.position, None);
    assert_eq!(meta.camera, None);
    // India, half an hour off the hour.
    let india = Spec { wall: Some(at(17, 30, 0)), offset_minutes: Some(330), ..Spec::default() };
    let meta = read("in.jpg", &image(ImageFormat::Jpeg, &india)).unwrap();
    assert_eq!(meta.taken, Some(CaptureTime::Zoned { at: at(12, 0, 0), offset_minutes: 330 }));
    // West of Greenwich with a negative offset.
    let west = Spec { wall: Some(at(6, 0, 0)), offset_minutes: Some(-600), ..Spec::default() };
    let meta = read("hi.jpg", &image(ImageFormat::Jpeg, &west)).unwrap();
    assert_eq!(meta.taken, Some(CaptureTime::Zoned { at: at(16, 0, 0), offset_minutes: -600 }));
}

#[test]
fn videos_give_their_utc_creation_time_and_iso6709_location() {
    let sydney = Coord::from_degrees(-33.8688, 151.2093).unwrap();
    let spec = Spec { wall: Some(at(12, 0, 0)), position: Some(sydney), altitude_m: Some(3.0), ..Spec::default() };
    for (format, name) in [(VideoFormat::Mp4, "v.mp4"), (VideoFormat::Mov, "v.mov")] {
        let meta = read(name, &video(format, &spec)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(meta.kind, MediaKind::Video, "{name}");
        assert_eq!(meta.taken, Some(CaptureTime::Utc(at(12, 0, 0))), "{name}");
        assert!(close(meta.position.unwrap(), sydney), "{name}: {:?}", meta.position);
    }
    // A creation time of 0 (1904) means "not set".
    let unset = read("unset.mp4", &video(VideoFormat::Mp4, &Spec::default())).unwrap();
    assert_eq!((unset.taken, unset.position), (None, None));
}

#[test]
fn a_photo_without_metadata_has_none_and_a_damaged_one_is_an_error() {
    let meta = read("empty.jpg", &image(ImageFormat::Jpeg, &Spec::default())).unwrap();
    assert_eq!((meta.taken, meta.position), (None, None));
    match read("broken.jpg", b"this is not an image at all, only text") {
        Err(PhotoError::Unreadable { path, reason }) => {
            assert!(path.ends_with("broken.jpg"));
            assert!(!reason.is_empty());
        }
        other => panic!("{other:?}"),
    }
    // A file cut off inside its metadata.
    let whole = image(ImageFormat::Jpeg, &Spec { wall: Some(at(9, 0, 0)), ..Spec::default() });
    assert!(matches!(read("cut.jpg", &whole[..40]), Err(PhotoError::Unreadable { .. })));
}

#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target to fuzz/corpus/<target>/.

Seeds come from the importers' fixtures (crates/polo-formats/tests/fixtures),
the shared corpus of real files (shared/corpus beside the checkout or one
folder up, when it exists; POLO_CORPUS overrides), the committed crash corpus
(crates/*/tests/fuzz_regressions) and a few small inputs written here. JSON
files are also cut into the record lists the element targets read. Nothing
here is committed as a corpus: run this before `cargo fuzz run`.

    python3 fuzz/seed.py
"""

import gzip
import io
import json
import os
import pathlib
import zipfile

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIXTURES = ROOT / "crates/polo-formats/tests/fixtures"
SHARED = pathlib.Path(
    os.environ.get("POLO_CORPUS")
    or next((p for p in (ROOT.parent / "shared/corpus", ROOT.parent.parent / "shared/corpus") if p.is_dir()), "/nonexistent")
)
REGRESSIONS = [ROOT / "crates/polo-formats/tests/fuzz_regressions", ROOT / "crates/polo-server/tests/fuzz_regressions"]
OUT = FUZZ / "corpus"
MAX_SEED = 64 * 1024

GPX = b"""<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><trkseg>
<trkpt lat="48.1" lon="11.5"><ele>520</ele><time>2024-05-01T10:00:00Z</time><desc>x</desc></trkpt>
<trkpt lat="48.2" lon="11.6"><time>2024-05-01T10:00:05+02:00</time><extensions><speed>3</speed></extensions></trkpt>
</trkseg></trk><wpt lat="1" lon="2"><time>2024-05-01T10:00:00Z</time></wpt></gpx>"""

KML = b"""<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document>
<Placemark><name>a</name><TimeStamp><when>2024-05-01T10:00:00Z</when></TimeStamp><Point><coordinates>11.5,48.1,500</coordinates></Point></Placemark>
<Placemark><gx:Track><when>2024-05-01T10:00:00Z</when><when>2024-05-01T10:00:01Z</when><gx:coord>11.5 48.1 500</gx:coord><gx:coord>11.6 48.2 501</gx:coord></gx:Track></Placemark>
<Placemark><TimeSpan><begin>2024-05-01T10:00:00Z</begin><end>2024-05-01T11:00:00Z</end></TimeSpan><LineString><coordinates>11.5,48.1 11.6,48.2</coordinates></LineString></Placemark>
</Document></kml>"""

CSV = b"""latitude,longitude,time,accuracy,altitude,speed,device
48.1,11.5,2024-05-01T10:00:00Z,5,520,1.5,phone
48.2,11.6,1714557605,,,,
"48.3","11.7","2024-05-01 10:00:10",3,"1,5",2,"a ""b"" c"
"""

STRAVA = b"""Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Filename
1,"May 1, 2024, 6:30:00 AM",Morning Run,Run,,600,activities/1.gpx.gz
2,"May 2, 2024, 12:01:00 PM",Ride,Ride,"a, b",3600.5,activities/2.fit.gz
"""

HEADERLESS = b"48.1,11.5,1714557600\n48.2,11.6,1714557605\n48.3,11.7,1714557610\n"

OSMAND = [
    b"id=phone&lat=48.1&lon=11.5&timestamp=1714557600&speed=3&hdop=1.2\n\n",
    b"\napplication/x-www-form-urlencoded\ndeviceid=phone&location=48.1,11.5&timestamp=2024-05-01T10:00:00Z&batt=50",
    b"id=phone\napplication/json\n{\"location\":{\"timestamp\":\"2024-05-01T10:00:00Z\",\"coords\":{\"latitude\":48.1,"
    b"\"longitude\":11.5,\"accuracy\":5,\"speed\":1,\"heading\":90,\"altitude\":500},\"battery\":{\"level\":0.5},"
    b"\"is_moving\":true,\"activity\":{\"type\":\"walking\"}},\"device_id\":\"phone\"}",
    b"\n\n[{\"id\":\"a\",\"lat\":48.1,\"lon\":11.5,\"timestamp\":1714557600},{\"id\":\"b\",\"lat\":\"x\"}]",
]

BATCH = [
    b'[{"lat":48.1,"lon":11.5,"time":"2024-05-01T10:00:00Z","accuracy":5,"device":"phone","extra":{"a":1}}]',
    b'{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[11.5,48.1,500]},'
    b'"properties":{"time":"2024-05-01T10:00:00Z","speed":2}}]}',
    b'{"type":"Feature","geometry":{"type":"Point","coordinates":[11.5,48.1]},"properties":{"timestamp":1714557600}}',
]

OWNTRACKS = [
    b'{"_type":"location","lat":48.1,"lon":11.5,"tst":1714557600,"acc":5,"alt":500,"vel":10,"cog":90,"batt":80,'
    b'"tid":"ph","topic":"owntracks/alice/phone","t":"u","created_at":1714557601,"_id":"abc"}',
    b'{"_type":"transition","event":"enter","lat":48.1,"lon":11.5,"tst":1714557600,"wtst":1700000000,"rid":"r","desc":"home"}',
    b'{"_type":"waypoints","waypoints":[{"_type":"waypoint","desc":"home","lat":48.1,"lon":11.5,"rad":50,"tst":1700000000}]}',
    b'{"_type":"card","name":"Alice","face":"iVBORw0KGgo=","tid":"al"}',
    b'{"_type":"lwt","tst":1714557600}',
    b'{"_type":"encrypted","data":"AAAA"}',
    b"",
]

DECRYPT = [
    b"s3cret passphrase\x00" + OWNTRACKS[0],
    b"0123456789abcdef0123456789abcdefEXTRA\x00[]",
    b"k\x00" + OWNTRACKS[1],
]


def files(*patterns, roots=(FIXTURES, SHARED)):
    for root in roots:
        if root.is_dir():
            for pattern in patterns:
                for path in sorted(root.rglob(pattern)):
                    if path.is_file() and path.stat().st_size <= MAX_SEED:
                        yield path.read_bytes()


def elements(data, *keys):
    """The elements of the arrays under `keys` (or of a top-level array), comma-joined."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return []
    arrays = [doc] if isinstance(doc, list) else [doc.get(k) for k in keys if isinstance(doc, dict)]
    out = []
    for array in arrays:
        if isinstance(array, list) and array:
            out.append(",".join(json.dumps(e, separators=(",", ":")) for e in array).encode())
    return out


def zip_of(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def rec_payloads():
    for data in files("*.rec"):
        for line in data.splitlines():
            if b"{" in line:
                yield line[line.index(b"{"):]


def main():
    everything = list(files("*"))
    json_files = list(files("*.json", "*.geojson"))
    seeds = {
        "detect": everything,
        "import": everything + [GPX, KML, CSV, STRAVA, HEADERLESS],
        "gzip": everything + [GPX, CSV],
        "json": json_files,
        "gpx": list(files("*.gpx")) + [GPX],
        "kml": list(files("*.kml")) + [KML],
        "csv": list(files("*.csv")) + [CSV],
        "strava": [STRAVA],
        "owntracks_rec": list(files("*.rec")),
        "fit": list(files("*.fit")),
        "tcx": list(files("*.tcx")),
        "plt": list(files("*.plt")),
        "nmea": list(files("*.nmea")),
        "igc": list(files("*.igc")),
        "headerless": list(files("*.txt")) + [HEADERLESS],
        "google_records": [e for d in json_files for e in elements(d, "locations")],
        "google_semantic": [e for d in json_files for e in elements(d, "timelineObjects")],
        "google_android": [e for d in json_files for e in elements(d, "semanticSegments", "rawSignals")],
        "google_ios": [e for d in json_files if d.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"[") for e in elements(d)],
        "geojson": [e for d in json_files for e in elements(d, "features", "locations")],
        "polarsteps": [e for d in json_files for e in elements(d, "all_steps", "locations")],
        "archive": list(files("*.kmz", "*.zip"))
        + [
            zip_of([("doc.kml", KML), ("files/a.gpx", GPX)]),
            zip_of([("apple_health_export/export.xml", b"<?xml version=\"1.0\"?><HealthData/>"),
                    ("apple_health_export/workout-routes/route_1.gpx", GPX)]),
            zip_of([("activities.csv", STRAVA), ("activities/1.gpx.gz", gzip.compress(GPX))]),
            zip_of([("Takeout/inner.zip", zip_of([("a.csv", CSV)]))]),
        ],
        "ingest_owntracks": OWNTRACKS + list(rec_payloads()),
        "owntracks_decrypt": DECRYPT,
        "ingest_overland": [d for d in json_files if b'"locations"' in d and b'"Feature"' in d],
        "ingest_osmand": OSMAND,
        "ingest_batch": BATCH,
    }
    for target, inputs in seeds.items():
        directory = OUT / target
        directory.mkdir(parents=True, exist_ok=True)
        regressions = [p.read_bytes() for r in REGRESSIONS for p in sorted((r / target).glob("*")) if p.is_file()]
        for i, data in enumerate(inputs + regressions):
            (directory / f"seed-{i:04}").write_bytes(data)
        print(f"{target}: {len(inputs) + len(regressions)} seeds")


if __name__ == "__main__":
    main()

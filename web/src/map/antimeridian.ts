// Natural Earth outlines are cut at ±180°: a ring that crosses it (Russia,
// Fiji, Antarctica) jumps from +180 to -180, which a flat map draws as a
// line (and a filled band) across the whole world. Unwrapping each ring so
// consecutive longitudes differ by at most 180° keeps it in one piece; the
// part beyond 180° is simply drawn east of the map's edge.

type Position = number[];

export function unwrapRing(ring: Position[]): Position[] {
  const out: Position[] = [];
  let previous: number | null = null;
  let west = Infinity;
  let east = -Infinity;
  for (const [lon, lat, ...rest] of ring) {
    let x = lon;
    if (previous !== null) {
      while (x - previous > 180) x -= 360;
      while (x - previous < -180) x += 360;
    }
    out.push([x, lat, ...rest]);
    previous = x;
    west = Math.min(west, x);
    east = Math.max(east, x);
  }
  // Where the ring starts decides which copy unwrapping lands on (a ring
  // starting in Chukotka would put all of Eurasia 360° west): bring the
  // middle of its extent back to [-180, 180].
  const shift = -360 * Math.round((west + east) / 2 / 360);
  return shift === 0 ? out : out.map(([x, ...rest]) => [x + shift, ...rest]);
}

export function unwrapGeometry(geometry: GeoJSON.Geometry | null): GeoJSON.Geometry | null {
  if (!geometry) return geometry;
  switch (geometry.type) {
    case "Polygon":
      return { ...geometry, coordinates: geometry.coordinates.map(unwrapRing) };
    case "MultiPolygon":
      return { ...geometry, coordinates: geometry.coordinates.map((polygon) => polygon.map(unwrapRing)) };
    case "LineString":
      return { ...geometry, coordinates: unwrapRing(geometry.coordinates) };
    case "MultiLineString":
      return { ...geometry, coordinates: geometry.coordinates.map(unwrapRing) };
    case "GeometryCollection":
      return { ...geometry, geometries: geometry.geometries.map((g) => unwrapGeometry(g) as GeoJSON.Geometry) };
    default:
      return geometry;
  }
}

export function unwrapFeatures<T extends GeoJSON.FeatureCollection>(collection: T): T {
  return { ...collection, features: collection.features.map((f) => ({ ...f, geometry: unwrapGeometry(f.geometry) as GeoJSON.Geometry })) };
}

// The rectangle a selection on the map sends to the server, without
// Leaflet (so it is unit-tested in Node): longitudes brought into -180..180,
// a rectangle across the antimeridian as west > east.

/** A longitude brought into -180..180 (a map panned around the world reports more). */
export function wrapLongitude(lon: number): number {
  return ((((lon + 180) % 360) + 360) % 360) - 180;
}

/** `[west, south, east, north]` of a rectangle drawn on the map (edges as the map reports them). */
export function bboxOf(bounds: { west: number; south: number; east: number; north: number }): [number, number, number, number] {
  const wide = bounds.east - bounds.west >= 360;
  const west = wide ? -180 : wrapLongitude(bounds.west);
  const east = wide ? 180 : wrapLongitude(bounds.east);
  const round = (v: number) => Math.round(v * 1e6) / 1e6;
  return [round(west), round(Math.max(-90, bounds.south)), round(east), round(Math.min(90, bounds.north))];
}

// Turning the server's compact map overview into lines to draw: segments of
// flat [lon,lat,…] with second deltas become runs of [lat,lon] with absolute
// times, and a day's track is cut where its legs change mode so each run can
// be drawn in its mode's colour.

import type { Entry, MapOverview, MapSegment, Mode } from "./api";

export interface TrackLine {
  device: number;
  latlngs: [number, number][];
  /** Seconds since 1970, one per point. */
  times: number[];
}

export function decodeSegment(segment: MapSegment): TrackLine {
  const latlngs: [number, number][] = [];
  const times: number[] = [];
  let t = segment.start;
  for (let i = 0, p = 0; p + 1 < segment.coords.length; i += 1, p += 2) {
    t += segment.times[i] ?? 0;
    latlngs.push([segment.coords[p + 1], segment.coords[p]]);
    times.push(t);
  }
  return { device: segment.device, latlngs, times };
}

export function decodeOverview(overview: MapOverview): TrackLine[] {
  return overview.segments.map(decodeSegment);
}

export interface ColouredRun {
  /** A mode for a leg, "stay" for points inside a stay, "unknown" outside any entry. */
  mode: Mode | "stay";
  /** Index of the timeline entry the run belongs to, -1 when none. */
  entry: number;
  latlngs: [number, number][];
}

/**
 * Cuts lines into runs by the entry each point's time falls in. Consecutive
 * runs share their boundary point so the drawn line has no holes.
 */
export function colourByEntries(lines: TrackLine[], entries: Entry[]): ColouredRun[] {
  const spans = entries
    .map((entry, index) => ({
      index,
      mode: (entry.kind === "leg" ? entry.mode ?? "unknown" : "stay") as Mode | "stay",
      start: Date.parse(entry.start) / 1000,
      end: Date.parse(entry.end) / 1000,
    }))
    .sort((a, b) => a.start - b.start);
  const runs: ColouredRun[] = [];
  for (const line of lines) {
    let current: ColouredRun | null = null;
    let cursor = 0;
    for (let i = 0; i < line.latlngs.length; i += 1) {
      const t = line.times[i];
      while (cursor < spans.length && spans[cursor].end <= t) cursor += 1;
      // Legs win over stays at shared boundaries: a leg starts where a stay ends.
      let span = cursor < spans.length && spans[cursor].start <= t ? spans[cursor] : null;
      if (span && span.mode === "stay" && cursor + 1 < spans.length && spans[cursor + 1].start <= t) {
        span = spans[cursor + 1];
      }
      const mode = span ? span.mode : "unknown";
      const entry = span ? span.index : -1;
      if (!current || current.mode !== mode || current.entry !== entry) {
        const before: ColouredRun | null = current;
        const previous = before ? before.latlngs[before.latlngs.length - 1] : undefined;
        const run: ColouredRun = { mode, entry, latlngs: previous ? [previous] : [] };
        runs.push(run);
        current = run;
      }
      (current as ColouredRun).latlngs.push(line.latlngs[i]);
    }
  }
  return runs.filter((run) => run.latlngs.length > 1 || run.mode === "stay");
}

const EARTH_RADIUS_M = 6_371_008.8;

export function haversine(a: [number, number], b: [number, number]): number {
  const rad = Math.PI / 180;
  const dLat = (b[0] - a[0]) * rad;
  const dLon = (b[1] - a[1]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/**
 * Speed in km/h between consecutive points, smoothed over `window` points so
 * GPS jitter does not make spikes; times in seconds. Points with the same
 * time as their predecessor are skipped.
 */
export function speedSeries(latlngs: [number, number][], times: number[], window = 5): { t: number[]; kmh: number[] } {
  const t: number[] = [];
  const kmh: number[] = [];
  for (let i = 1; i < latlngs.length; i += 1) {
    const from = Math.max(0, i - window);
    const dt = times[i] - times[from];
    if (dt <= 0) continue;
    let metres = 0;
    for (let j = from + 1; j <= i; j += 1) metres += haversine(latlngs[j - 1], latlngs[j]);
    t.push(times[i]);
    kmh.push((metres / dt) * 3.6);
  }
  return { t, kmh };
}

export function lineLength(latlngs: [number, number][]): number {
  let metres = 0;
  for (let i = 1; i < latlngs.length; i += 1) metres += haversine(latlngs[i - 1], latlngs[i]);
  return metres;
}

/** [[south, west], [north, east]] of every point, or null without points. */
export function boundsOf(lines: { latlngs: [number, number][] }[]): [[number, number], [number, number]] | null {
  let south = Infinity;
  let west = Infinity;
  let north = -Infinity;
  let east = -Infinity;
  for (const line of lines) {
    for (const [lat, lon] of line.latlngs) {
      if (lat < south) south = lat;
      if (lat > north) north = lat;
      if (lon < west) west = lon;
      if (lon > east) east = lon;
    }
  }
  return Number.isFinite(south) ? [[south, west], [north, east]] : null;
}

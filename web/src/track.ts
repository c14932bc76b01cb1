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

interface Span {
  index: number;
  mode: Mode | "stay";
  start: number;
  end: number;
}

/**
 * Cuts lines into runs by timeline entry. Each step between two consecutive
 * points takes the entry it overlaps most in time (legs win ties), so a
 * straight stretch the simplification reduced to its two ends still gets its
 * leg's colour, and points in the small gaps between entries do not break
 * the line. Consecutive runs share their boundary point.
 */
export function colourByEntries(lines: TrackLine[], entries: Entry[]): ColouredRun[] {
  const spans: Span[] = entries
    .map((entry, index) => ({
      index,
      mode: (entry.kind === "leg" ? entry.mode ?? "unknown" : "stay") as Mode | "stay",
      start: Date.parse(entry.start) / 1000,
      end: Date.parse(entry.end) / 1000,
    }))
    .sort((a, b) => a.start - b.start);
  const runs: ColouredRun[] = [];
  for (const line of lines) {
    const { latlngs, times } = line;
    if (latlngs.length === 1) {
      const span = spans.find((s) => s.start <= times[0] && times[0] < s.end);
      runs.push({ mode: span?.mode ?? "unknown", entry: span?.index ?? -1, latlngs: [latlngs[0]] });
      continue;
    }
    let cursor = 0;
    let current: ColouredRun | null = null;
    for (let i = 1; i < latlngs.length; i += 1) {
      const t0 = times[i - 1];
      const t1 = Math.max(times[i], t0);
      while (cursor < spans.length && spans[cursor].end <= t0) cursor += 1;
      let best: Span | null = null;
      let bestOverlap = -1;
      for (let k = cursor; k < spans.length && spans[k].start <= t1; k += 1) {
        const span = spans[k];
        const overlap = t1 > t0 ? Math.min(t1, span.end) - Math.max(t0, span.start) : span.start <= t0 && t0 < span.end ? 0 : -1;
        if (overlap < 0 || (overlap === 0 && t1 > t0)) continue;
        const better = overlap > bestOverlap || (overlap === bestOverlap && span.mode !== "stay" && best?.mode === "stay");
        if (better) {
          best = span;
          bestOverlap = overlap;
        }
      }
      const mode = best ? best.mode : "unknown";
      const entry = best ? best.index : -1;
      if (!current || current.mode !== mode || current.entry !== entry) {
        current = { mode, entry, latlngs: [latlngs[i - 1]] };
        runs.push(current);
      }
      current.latlngs.push(latlngs[i]);
    }
  }
  return runs;
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

/**
 * Whether a map zoom shows more than an overview's level is exact for, so
 * that the view is worth asking for in finer detail. An overview drawn
 * point for point (level 0, nothing thinned or cut) never is.
 */
export function needsDetail(overview: Pick<MapOverview, "level" | "zoom" | "thinned" | "truncated">, zoom: number): boolean {
  return zoom > overview.zoom && (overview.level > 0 || overview.thinned || overview.truncated);
}

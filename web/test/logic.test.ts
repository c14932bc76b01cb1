// Unit tests of the app's non-trivial logic: decoding the server's map
// overview, cutting a day's track by its entries, speeds, formatting.
import { describe, expect, it } from "vitest";
import type { Entry, MapOverview, Trip } from "../src/api";
import { tripTitle } from "../src/trip-title";
import { addDays, clockTime, dateAt, dateTime, formatBattery, formatDistance, formatDuration, isDate, timeRange } from "../src/format";
import { boundsOf, colourByEntries, decodeOverview, haversine, needsDetail, speedSeries } from "../src/track";
import { heatColour } from "../src/map/heat";
import { unwrapRing } from "../src/map/antimeridian";
import { ownTracksConfig, ownTracksConfigUrl } from "../src/owntracks";

const overview: MapOverview = {
  from: "2024-05-01T00:00:00Z",
  to: "2024-05-02T00:00:00Z",
  level: 0,
  zoom: 18,
  level_points: [4, 4, 2, 2],
  points: 4,
  thinned: false,
  truncated: false,
  devices: ["phone"],
  segments: [{ device: 0, start: 1000, coords: [13.4, 52.5, 13.41, 52.5, 13.42, 52.51, 13.43, 52.51], times: [0, 60, 60, 60] }],
};

const entry = (kind: "stay" | "leg", start: number, end: number, mode?: Entry["mode"]): Entry => ({
  kind,
  origin: "detected",
  start: new Date(start * 1000).toISOString(),
  end: new Date(end * 1000).toISOString(),
  duration_s: end - start,
  points: 1,
  mode,
});

describe("track", () => {
  it("decodes overview segments into lat/lon with absolute times", () => {
    const [line] = decodeOverview(overview);
    expect(line.latlngs[0]).toEqual([52.5, 13.4]);
    expect(line.latlngs[3]).toEqual([52.51, 13.43]);
    expect(line.times).toEqual([1000, 1060, 1120, 1180]);
  });

  it("cuts a track into runs by the entry each step overlaps most, sharing boundary points", () => {
    const lines = decodeOverview(overview);
    const runs = colourByEntries(lines, [entry("stay", 900, 1060), entry("leg", 1060, 1200, "cycle")]);
    expect(runs.map((r) => [r.mode, r.entry, r.latlngs.length])).toEqual([
      ["stay", 0, 2],
      ["cycle", 1, 3],
    ]);
    expect(runs[1].latlngs[0]).toEqual([52.5, 13.41]);
  });

  it("colours a straight leg reduced to its two ends, across gaps between entries", () => {
    // Simplification left one point at the end of the stay and one at the
    // end of the walk; the next stay starts 10 s after the walk ends.
    const line = { device: 0, latlngs: [[52.5, 13.4], [52.5, 13.42], [52.5, 13.42]] as [number, number][], times: [480, 1290, 1900] };
    const runs = colourByEntries([line], [entry("stay", 0, 481), entry("leg", 481, 1290, "walk"), entry("stay", 1300, 5000)]);
    expect(runs.map((r) => [r.mode, r.entry])).toEqual([
      ["walk", 1],
      ["stay", 2],
    ]);
  });

  it("marks points outside every entry as unknown", () => {
    const runs = colourByEntries(decodeOverview(overview), []);
    expect(runs).toHaveLength(1);
    expect(runs[0].mode).toBe("unknown");
    expect(runs[0].entry).toBe(-1);
  });

  it("measures distances and speeds", () => {
    const metres = haversine([52.5, 13.4], [52.5, 13.41]);
    expect(metres).toBeGreaterThan(670);
    expect(metres).toBeLessThan(690);
    const { kmh } = speedSeries([[52.5, 13.4], [52.5, 13.41]], [0, 60], 1);
    expect(kmh[0]).toBeCloseTo((metres / 60) * 3.6, 5);
    expect(speedSeries([[0, 0], [0, 1]], [5, 5]).kmh).toEqual([]);
  });

  it("bounds every point", () => {
    expect(boundsOf(decodeOverview(overview))).toEqual([[52.5, 13.4], [52.51, 13.43]]);
    expect(boundsOf([])).toBeNull();
  });
});

describe("format", () => {
  it("formats durations and distances", () => {
    expect(formatDuration(30)).toBe("30 s");
    expect(formatDuration(90 * 60)).toBe("1 h 30 min");
    expect(formatDuration(3 * 86400 + 3600)).toBe("3 d 1 h");
    expect(formatDistance(950)).toBe("950 m");
    expect(formatDistance(2500)).toBe("2.5 km");
    expect(formatDistance(123_456)).toBe("123 km");
  });

  it("does calendar arithmetic and validates dates", () => {
    expect(addDays("2024-02-28", 1)).toBe("2024-02-29");
    expect(addDays("2024-03-01", -1)).toBe("2024-02-29");
    expect(addDays("2024-12-31", 1)).toBe("2025-01-01");
    expect(isDate("2023-02-29")).toBe(false);
    expect(isDate("2024-02-29")).toBe(true);
    expect(isDate("2024-2-9")).toBe(false);
  });

  it("shows times in the zone the points carried", () => {
    expect(clockTime("2024-05-01T22:30:00Z", 120)).toBe("00:30");
    expect(clockTime("2024-05-01T02:05:00Z", -300)).toBe("21:05");
    // A trip's start at its own offset, whatever the browser's zone: 05:52 UTC in Lübeck is 07:52.
    expect(dateTime("2024-05-01T05:52:00Z", 120)).toBe("1 May 2024, 07:52");
    expect(dateTime("2024-04-30T23:30:00Z", 120)).toBe("1 May 2024, 01:30");
  });

  it("reads battery levels as fractions or percentages", () => {
    expect(formatBattery(0.42)).toBe("42 %");
    expect(formatBattery(87)).toBe("87 %");
    expect(formatBattery(null)).toBe("–");
  });
});

describe("maps and devices", () => {
  it("keeps rings cut at the antimeridian in one piece", () => {
    const ring = [[178, 65], [180, 66], [-180, 66], [-179, 65], [-180, 64], [180, 64], [178, 65]];
    const unwrapped = unwrapRing(ring);
    expect(unwrapped.map((p) => p[0])).toEqual([178, 180, 180, 181, 180, 180, 178]);
    for (let i = 1; i < unwrapped.length; i += 1) expect(Math.abs(unwrapped[i][0] - unwrapped[i - 1][0])).toBeLessThanOrEqual(180);
  });

  it("keeps a ring that starts east of the antimeridian where it belongs", () => {
    // Eurasia-like: starts in Chukotka (-175), crosses west to 170 and on to Europe (10).
    const ring = [[-175, 66], [175, 66], [100, 60], [10, 52], [100, 40], [175, 62], [-175, 64], [-175, 66]];
    const unwrapped = unwrapRing(ring);
    expect(unwrapped.find((p) => p[1] === 52)?.[0]).toBe(10);
    expect(unwrapped[0][0]).toBe(185);
  });

  it("colours heat from blue to red", () => {
    expect(heatColour(0)).toMatch(/^rgba\(37,99,235,/);
    expect(heatColour(1)).toMatch(/^rgba\(220,38,38,/);
  });

  it("builds the OwnTracks configuration link", () => {
    const config = ownTracksConfig("https://polo.example", "jane", "my phone", "polo_secret");
    expect(config).toMatchObject({ _type: "configuration", mode: 3, url: "https://polo.example/api/owntracks", auth: true, username: "jane", password: "polo_secret", deviceId: "my phone", tid: "MY" });
    const url = ownTracksConfigUrl(config);
    expect(url.startsWith("owntracks:///config?inline=")).toBe(true);
    const decoded = JSON.parse(atob(decodeURIComponent(url.split("inline=")[1])));
    expect(decoded).toEqual(config);
  });
});

describe("entry time ranges", () => {
  it("shows bare 24-hour clock times within the day", () => {
    expect(timeRange("2024-05-14T06:05:00Z", "2024-05-14T19:40:00Z", 0, "2024-05-14")).toBe("06:05 – 19:40");
  });
  it("dates the end of an entry that crosses midnight", () => {
    expect(timeRange("2024-05-14T20:22:00Z", "2024-05-15T07:57:00Z", 0, "2024-05-14")).toBe("20:22 – 15 May 07:57");
  });
  it("dates the start of an entry that began the day before, in local time", () => {
    // 22:00 UTC on the 13th is midnight in Lübeck (UTC+2): the stay starts on the day itself.
    expect(timeRange("2024-05-13T22:00:00Z", "2024-05-14T05:00:00Z", 120, "2024-05-14")).toBe("00:00 – 07:00");
    expect(timeRange("2024-05-13T21:00:00Z", "2024-05-14T05:00:00Z", 120, "2024-05-14")).toBe("13 May 23:00 – 07:00");
  });
  it("adds the year when the other date is in another year", () => {
    expect(timeRange("2023-12-31T18:00:00Z", "2024-01-01T09:00:00Z", 0, "2024-01-01")).toBe("31 Dec 2023 18:00 – 09:00");
  });
  it("takes the local date at the offset", () => {
    expect(dateAt("2024-05-14T23:30:00Z", 120)).toBe("2024-05-15");
    expect(dateAt("2024-05-14T00:30:00Z", -300)).toBe("2024-05-13");
  });
});

describe("map explorer detail", () => {
  it("asks for the view only when zoomed in beyond a simplified overview", () => {
    const coarse = { level: 2, zoom: 10, thinned: false, truncated: false };
    expect(needsDetail(coarse, 10)).toBe(false);
    expect(needsDetail(coarse, 11)).toBe(true);
    expect(needsDetail({ ...coarse, level: 0, zoom: 18 }, 19)).toBe(false);
    expect(needsDetail({ level: 0, zoom: 18, thinned: true, truncated: false }, 19)).toBe(true);
  });
});

describe("tripTitle", () => {
  const trip = (ends: Partial<Trip>): Trip => ({
    device: "phone",
    start: "2024-05-21T07:00:00Z",
    utc_offset_minutes: 120,
    end: "2024-05-21T07:30:00Z",
    duration_s: 1800,
    distance_m: 2000,
    mean_speed_mps: 1.1,
    max_speed_mps: 2,
    main_mode: "walk",
    entries: [],
    ...ends,
  });
  const names = new Map([[1, "Home"], [2, "Office"]]);

  it("names both ends by their places, or as the day view names a visit at no place", () => {
    expect(tripTitle(trip({ origin_place: 1, destination_place: 2, origin_title: "x", destination_title: "y" }), names)).toBe("Home → Office");
    expect(tripTitle(trip({ origin_place: 1, origin_title: "Home", destination_title: "Near Ismaning" }), names)).toBe("Home → Near Ismaning");
  });

  it("never shows a question mark for an end a recording gap hides", () => {
    expect(tripTitle(trip({ origin_place: 1 }), names)).toBe("From Home");
    expect(tripTitle(trip({ destination_title: "Near Ismaning" }), names)).toBe("To near Ismaning");
    expect(tripTitle(trip({}), names)).toMatch(/^Walking, /);
  });
});

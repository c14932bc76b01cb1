// The Zones page's rules: drawing circles and polygons by clicks, the rules
// form, and how events and deliveries read.
import { describe, expect, it } from "vitest";
import { addPoint, describeDelivery, describeEvent, describeKinds, distanceM, draftOf, fieldsOf, newestFirst, rulesOf, shapeOf, webhookBody, type Delivery, type Draft, type ZoneEvent } from "../src/zones";

describe("drawing", () => {
  it("makes a circle from a centre click and an edge click", () => {
    let draft: Draft = { type: "circle", radius_m: 100 };
    expect(shapeOf(draft)).toBe("Click the map to place the centre.");
    draft = addPoint(draft, [52.52, 13.405]);
    expect(shapeOf(draft)).toEqual({ type: "circle", center: [52.52, 13.405], radius_m: 100 });
    // About 111 m north.
    draft = addPoint(draft, [52.521, 13.405]);
    expect(shapeOf(draft)).toEqual({ type: "circle", center: [52.52, 13.405], radius_m: 111 });
    expect(shapeOf({ type: "circle", center: [0, 0], radius_m: 60_000 })).toMatch(/radius must be 1 to 50,000/);
  });

  it("makes a polygon of at least three corners and drops a repeated first corner", () => {
    let draft: Draft = { type: "polygon", vertices: [] };
    draft = addPoint(addPoint(draft, [0, 0]), [0, 0.01]);
    expect(shapeOf(draft)).toBe("Click the map to add corners: 2 of at least 3.");
    draft = addPoint(addPoint(draft, [0.01, 0.01]), [0, 0]);
    expect(shapeOf(draft)).toEqual({ type: "polygon", vertices: [[0, 0], [0, 0.01], [0.01, 0.01]] });
  });

  it("edits a stored shape without changing it", () => {
    const polygon = { type: "polygon" as const, vertices: [[1, 1], [1, 2], [2, 2]] as [number, number][] };
    expect(shapeOf(draftOf(polygon))).toEqual(polygon);
    expect(shapeOf(draftOf({ type: "circle", center: [1, 2], radius_m: 80 }))).toEqual({ type: "circle", center: [1, 2], radius_m: 80 });
  });

  it("measures great-circle distances", () => {
    expect(distanceM([0, 0], [0, 1])).toBeCloseTo(111_195, -1);
    expect(distanceM([52.5, 13.4], [52.5, 13.4])).toBe(0);
  });
});

describe("rules form", () => {
  it("leaves empty fields to the server's defaults and names a bad field", () => {
    const fields = { dwell_s: "60", exit_buffer_m: "", exit_confirmations: "3", cooldown_s: " ", dwell_alert_s: "" };
    expect(rulesOf(fields)).toEqual({ dwell_s: 60, exit_confirmations: 3 });
    expect(rulesOf({ ...fields, exit_confirmations: "0" })).toBe("Fixes to confirm leaving must be a whole number from 1 to 20.");
    expect(rulesOf({ ...fields, dwell_s: "1.5" })).toMatch(/^Wait before entering/);
    expect(rulesOf({ ...fields, exit_buffer_m: "12.5" })).toEqual({ dwell_s: 60, exit_buffer_m: 12.5, exit_confirmations: 3 });
    expect(rulesOf(fieldsOf({ dwell_s: 120, exit_buffer_m: 50, exit_confirmations: 2, cooldown_s: 60, dwell_alert_s: null }))).toEqual({
      dwell_s: 120,
      exit_buffer_m: 50,
      exit_confirmations: 2,
      cooldown_s: 60,
    });
  });
});

describe("logs", () => {
  const event = (id: number, kind: string, detail: Record<string, unknown> = {}): ZoneEvent => ({
    id,
    kind,
    at_ms: 1_765_000_000_000 + id,
    device: 1,
    device_name: "phone",
    zone: kind.startsWith("device.") ? null : 7,
    zone_name: kind.startsWith("device.") ? null : "Home",
    past: false,
    detail,
  });

  it("reads events", () => {
    expect(describeEvent(event(1, "zone.enter"))).toBe("phone arrived · Home");
    expect(describeEvent(event(2, "device.battery_low", { battery_percent: 9 }))).toBe("phone battery low (9 %)");
    expect(describeEvent(event(3, "app.leave"))).toBe("phone left (says the app) · Home");
    expect(describeEvent(event(4, "zone.enter"), new Map([["phone", "Anna's Pixel"]]))).toBe("Anna's Pixel arrived · Home");
    expect(newestFirst([event(1, "zone.enter"), event(2, "zone.leave"), event(3, "zone.enter")], 2).map((e) => e.id)).toEqual([3, 2]);
  });

  it("reads visits, trips and friends, which name no zone", () => {
    const free = (id: number, kind: string, detail: Record<string, unknown>): ZoneEvent => ({ ...event(id, kind, detail), zone: null, zone_name: null });
    expect(describeEvent(free(1, "visit.start", { place_name: "Bakery" }))).toBe("phone visiting · Bakery");
    expect(describeEvent(free(2, "trip.start", { from_place_name: "Bakery", from_place: 3 }))).toBe("phone set off · Bakery");
    expect(describeEvent(free(3, "trip.end", { place_name: null, distance_m: 4321.5 }))).toBe("phone arrived after a trip of 4.3 km");
    expect(describeEvent(free(4, "friend.nearby", { friend: "bob", distance_m: 120.4 }))).toBe("phone is near bob (120 m)");
    expect(describeEvent(free(5, "friend.away", { friend: "bob", distance_m: 1650 }))).toBe("phone is away from bob (1,650 m)");
  });

  it("reads deliveries", () => {
    const base: Delivery = { id: 1, event: 4, idempotency_key: "k", status: "delivered", attempts: 1, next_attempt_ms: 0, last_status: 200, last_error: null, updated_ms: 0 };
    expect(describeDelivery(base)).toBe("delivered after 1 attempt");
    expect(describeDelivery({ ...base, status: "dead", attempts: 12, last_status: 503 })).toBe("given up after 12 attempts (HTTP 503)");
    expect(describeDelivery({ ...base, status: "pending", attempts: 2, last_status: null, last_error: "connection refused", next_attempt_ms: 40_000 }, 10_000)).toBe(
      "pending, next try in 30 s (2 attempts, last: connection refused)",
    );
    const queued = { ...base, status: "pending" as const, attempts: 0, last_status: null, next_attempt_ms: 5_000 };
    expect(describeDelivery(queued, 10_000)).toBe("queued (after earlier deliveries to this URL)");
    expect(describeDelivery(queued, 1_000)).toBe("queued, due in 4 s");
  });
});

describe("webhook form", () => {
  it("makes the subscription's body, kinds in the server's order", () => {
    expect(webhookBody({ url: " https://ntfy.sh/family ", preset: "ntfy", kinds: ["trip.end", "zone.enter"] })).toEqual({
      url: "https://ntfy.sh/family",
      preset: "ntfy",
      kinds: ["zone.enter", "trip.end"],
    });
    expect(webhookBody({ url: "http://10.0.0.2:8123/api/webhook/polo", preset: "json", kinds: [] })).toEqual({
      url: "http://10.0.0.2:8123/api/webhook/polo",
      preset: "json",
      kinds: [],
    });
  });

  it("says what is wrong before the server does", () => {
    expect(webhookBody({ url: "", preset: "json", kinds: [] })).toBe("Enter the URL to send events to.");
    expect(webhookBody({ url: "ftp://example.org", preset: "json", kinds: [] })).toMatch(/^The URL must start with http/);
    expect(webhookBody({ url: "https:///path", preset: "json", kinds: [] })).toMatch(/^The URL must start with http/);
    expect(webhookBody({ url: "https://a.example/x y", preset: "json", kinds: [] })).toMatch(/^The URL must start with http/);
    expect(webhookBody({ url: `https://a.example/${"x".repeat(2_000)}`, preset: "json", kinds: [] })).toMatch(/longer than 2,000/);
    expect(webhookBody({ url: "https://a.example/", preset: "telegram", kinds: [] })).toBe("Choose a payload preset.");
  });

  it("describes a filter", () => {
    expect(describeKinds([])).toBe("all events");
    expect(describeKinds(["visit.start", "friend.away", "custom.kind"])).toBe("Visit started, Friend away, custom.kind");
  });
});

// Zones, pure: the shapes the Zones page draws, what it sends to
// /api/v1/zones, and how events and deliveries read to people. Kept apart
// from the page so the rules are unit-tested without a map.

export type LatLon = [number, number];

export type Shape = { type: "circle"; center: LatLon; radius_m: number } | { type: "polygon"; vertices: LatLon[] };

export interface Rules {
  dwell_s?: number;
  exit_buffer_m?: number;
  exit_confirmations?: number;
  cooldown_s?: number;
  dwell_alert_s?: number | null;
}

export interface Zone {
  id: number;
  name: string;
  shape: Shape;
  rules: Rules;
  updated_ms: number;
  origin?: string;
  /** The group it belongs to (every member's phones fire it), or null: yours alone. */
  group?: number | null;
  group_name?: string | null;
  /** Whether you may change it: yours, or a group's you administer or made. */
  editable?: boolean;
}

export interface ZoneEvent {
  id: number;
  kind: string;
  at_ms: number;
  device: number;
  device_name: string;
  zone: number | null;
  zone_name: string | null;
  past: boolean;
  detail: Record<string, unknown>;
}

export interface Webhook {
  id: number;
  url: string;
  preset: string;
  kinds: string[];
  zones: number[];
  created_ms: number;
  /** `false` while switched off: nothing is queued for it. */
  enabled: boolean;
}

export interface Delivery {
  id: number;
  event: number;
  idempotency_key: string;
  status: "pending" | "delivered" | "dead";
  attempts: number;
  next_attempt_ms: number;
  last_status: number | null;
  last_error: string | null;
  updated_ms: number;
}

/** The server's limits (polo-zones): a circle's radius, a polygon's vertex count. */
export const MAX_RADIUS_M = 50_000;
export const MAX_VERTICES = 1_000;
export const DEFAULT_RULES = { dwell_s: 120, exit_buffer_m: 50, exit_confirmations: 2, cooldown_s: 60 } as const;

const EARTH_RADIUS_M = 6_371_008.8;

/** Great-circle distance in metres. */
export function distanceM(a: LatLon, b: LatLon): number {
  const rad = Math.PI / 180;
  const dLat = (b[0] - a[0]) * rad;
  const dLon = (b[1] - a[1]) * rad;
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(a[0] * rad) * Math.cos(b[0] * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

/** A drawing in progress: a circle's centre and edge, or a polygon's vertices so far. */
export type Draft = { type: "circle"; center?: LatLon; radius_m: number } | { type: "polygon"; vertices: LatLon[] };

/** What a click on the map does to a draft: a circle's first click is its centre, the next sets the radius. */
export function addPoint(draft: Draft, point: LatLon): Draft {
  if (draft.type === "polygon") return draft.vertices.length >= MAX_VERTICES ? draft : { ...draft, vertices: [...draft.vertices, point] };
  if (!draft.center) return { ...draft, center: point };
  return { ...draft, radius_m: Math.max(1, Math.min(MAX_RADIUS_M, Math.round(distanceM(draft.center, point)))) };
}

/** The shape a draft makes, or why it does not make one yet. */
export function shapeOf(draft: Draft): Shape | string {
  if (draft.type === "circle") {
    if (!draft.center) return "Click the map to place the centre.";
    if (!(draft.radius_m >= 1 && draft.radius_m <= MAX_RADIUS_M)) return `The radius must be 1 to ${MAX_RADIUS_M.toLocaleString("en")} m.`;
    return { type: "circle", center: draft.center, radius_m: draft.radius_m };
  }
  const vertices = closedDuplicateDropped(draft.vertices);
  if (vertices.length < 3) return `Click the map to add corners: ${vertices.length} of at least 3.`;
  return { type: "polygon", vertices };
}

/** The server wants the ring open: a last vertex equal to the first is dropped. */
function closedDuplicateDropped(vertices: LatLon[]): LatLon[] {
  if (vertices.length > 1) {
    const [first, last] = [vertices[0]!, vertices[vertices.length - 1]!];
    if (first[0] === last[0] && first[1] === last[1]) return vertices.slice(0, -1);
  }
  return vertices;
}

/** A draft of an existing zone, for editing. */
export function draftOf(shape: Shape): Draft {
  return shape.type === "circle" ? { type: "circle", center: shape.center, radius_m: shape.radius_m } : { type: "polygon", vertices: [...shape.vertices] };
}

/** Form fields as the request body's rules: empty fields are left out (the server's defaults apply). */
export function rulesOf(fields: Record<keyof Rules, string>): Rules | string {
  const rules: Rules = {};
  const limits: Record<keyof Rules, [number, number, string]> = {
    dwell_s: [0, 86_400, "Wait before entering"],
    exit_buffer_m: [0, 5_000, "Exit buffer"],
    exit_confirmations: [1, 20, "Fixes to confirm leaving"],
    cooldown_s: [0, 86_400, "Cooldown"],
    dwell_alert_s: [1, 604_800, "Dwell alert"],
  };
  for (const key of Object.keys(limits) as (keyof Rules)[]) {
    const text = fields[key]?.trim() ?? "";
    if (text === "") continue;
    const value = Number(text);
    const [min, max, label] = limits[key];
    if (!Number.isFinite(value) || value < min || value > max || (key !== "exit_buffer_m" && !Number.isInteger(value))) {
      return `${label} must be a whole number from ${min} to ${max.toLocaleString("en")}.`;
    }
    rules[key] = value;
  }
  return rules;
}

/** The form fields of a zone's rules. */
export function fieldsOf(rules: Rules): Record<keyof Rules, string> {
  const text = (v: number | null | undefined) => (v === undefined || v === null ? "" : String(v));
  return {
    dwell_s: text(rules.dwell_s),
    exit_buffer_m: text(rules.exit_buffer_m),
    exit_confirmations: text(rules.exit_confirmations),
    cooldown_s: text(rules.cooldown_s),
    dwell_alert_s: text(rules.dwell_alert_s),
  };
}

const KIND_LABELS: Record<string, string> = {
  "zone.enter": "arrived",
  "zone.leave": "left",
  "zone.dwell": "still at",
  "device.silent": "silent",
  "device.battery_low": "battery low",
  "app.enter": "arrived (says the app)",
  "app.leave": "left (says the app)",
  "visit.start": "visiting",
  "visit.end": "left",
  "trip.start": "set off",
  "trip.end": "arrived after a trip",
  "friend.nearby": "is near",
  "friend.away": "is away from",
};

/** Every event kind a webhook can ask for, with what it means, in the form's order. */
export const EVENT_KINDS: { kind: string; label: string }[] = [
  { kind: "zone.enter", label: "Zone entered" },
  { kind: "zone.leave", label: "Zone left" },
  { kind: "zone.dwell", label: "Still in a zone" },
  { kind: "visit.start", label: "Visit started" },
  { kind: "visit.end", label: "Visit ended" },
  { kind: "trip.start", label: "Trip started" },
  { kind: "trip.end", label: "Trip ended" },
  { kind: "friend.nearby", label: "Friend nearby" },
  { kind: "friend.away", label: "Friend away" },
  { kind: "device.silent", label: "Device silent" },
  { kind: "device.battery_low", label: "Battery low" },
  { kind: "app.enter", label: "App: region entered" },
  { kind: "app.leave", label: "App: region left" },
];

/** The payload presets, with the URL each receiver expects. */
export const PRESETS: { preset: string; label: string; example: string }[] = [
  { preset: "json", label: "JSON (the event as it is)", example: "https://example.org/polo-hook" },
  { preset: "ntfy", label: "ntfy", example: "https://ntfy.sh/your-topic" },
  { preset: "gotify", label: "Gotify", example: "https://gotify.example.org/message?token=…" },
  { preset: "discord", label: "Discord", example: "https://discord.com/api/webhooks/…" },
  { preset: "slack", label: "Slack", example: "https://hooks.slack.com/services/…" },
];

/** The most URL characters the server takes. */
export const MAX_URL_CHARS = 2_000;

export interface WebhookForm {
  url: string;
  preset: string;
  kinds: string[];
}

/** The body of `POST /api/v1/webhooks` for the form, or what is wrong with it. */
export function webhookBody(form: WebhookForm): { url: string; preset: string; kinds: string[] } | string {
  const url = form.url.trim();
  if (!url) return "Enter the URL to send events to.";
  if (url.length > MAX_URL_CHARS) return `The URL is longer than ${MAX_URL_CHARS.toLocaleString("en")} characters.`;
  const rest = /^https?:\/\/(.*)$/i.exec(url)?.[1];
  if (rest === undefined || rest === "" || rest.startsWith("/") || /\s/.test(url)) return "The URL must start with http:// or https:// and name a host.";
  if (!PRESETS.some((p) => p.preset === form.preset)) return "Choose a payload preset.";
  const kinds = EVENT_KINDS.map((k) => k.kind).filter((k) => form.kinds.includes(k));
  return { url, preset: form.preset, kinds };
}

/** A subscription's filter for people: "all events" or the kinds' labels. */
export function describeKinds(kinds: string[]): string {
  if (kinds.length === 0) return "all events";
  return kinds.map((k) => EVENT_KINDS.find((e) => e.kind === k)?.label ?? k).join(", ");
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** One line for an event ("phone arrived · Home"), the device by its label when it has one. */
export function describeEvent(event: ZoneEvent, labels: ReadonlyMap<string, string> = new Map()): string {
  const what = KIND_LABELS[event.kind] ?? event.kind;
  const detail = event.detail;
  const device = labels.get(event.device_name) ?? event.device_name;
  const distance = typeof detail.distance_m === "number" ? detail.distance_m : null;
  const friend = text(detail.friend);
  if (friend) return `${device} ${what} ${friend}${distance !== null ? ` (${Math.round(distance).toLocaleString("en")} m)` : ""}`;
  const battery = typeof detail.battery_percent === "number" ? ` (${detail.battery_percent} %)` : "";
  const trip = event.kind === "trip.end" && distance !== null ? ` of ${(distance / 1000).toFixed(1)} km` : "";
  const where = event.zone_name ?? text(detail.place_name) ?? text(detail.from_place_name);
  return `${device} ${what}${trip}${where ? ` · ${where}` : ""}${battery}`;
}

/** A delivery's state for people. */
export function describeDelivery(delivery: Delivery, now = Date.now()): string {
  const attempts = `${delivery.attempts} attempt${delivery.attempts === 1 ? "" : "s"}`;
  const answer = delivery.last_status !== null ? `HTTP ${delivery.last_status}` : delivery.last_error ?? "";
  if (delivery.status === "delivered") return `delivered after ${attempts}`;
  if (delivery.status === "dead") return `given up after ${attempts}${answer ? ` (${answer})` : ""}`;
  const wait = Math.round((delivery.next_attempt_ms - now) / 1000);
  if (delivery.attempts === 0) return wait > 0 ? `queued, due in ${wait} s` : "queued (after earlier deliveries to this URL)";
  return `pending, ${wait > 0 ? `next try in ${wait} s` : "trying again"} (${attempts}${answer ? `, last: ${answer}` : ""})`;
}

/** The newest `keep` events, newest first, from pages read oldest first. */
export function newestFirst(events: ZoneEvent[], keep: number): ZoneEvent[] {
  return events.slice(-keep).reverse();
}

// The HTTP client of the app: every call goes through `api`, which sends the
// session cookie, adds the CSRF token to unsafe methods (the server refuses
// them without it) and turns the server's error shape {code, message} into
// an ApiError the pages can show as is.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** localStorage key saying a session cookie may exist (the cookie itself is HttpOnly). */
export const SESSION_HINT = "polo.session";

let csrfToken: string | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function getCsrfToken(): string | null {
  return csrfToken;
}

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  // X-Requested-With: the server then leaves WWW-Authenticate off a 401, so
  // the browser shows no Basic login dialog of its own.
  const headers: Record<string, string> = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, "network", `The server could not be reached (${String(e)}).`);
  }
  return readResponse<T>(response);
}

export async function readResponse<T>(response: Response): Promise<T> {
  if (response.status === 204) return undefined as T;
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok) {
    if (type.includes("json")) {
      const error = (await response.json().catch(() => null)) as { code?: string; message?: string } | null;
      throw new ApiError(response.status, error?.code ?? "error", error?.message ?? response.statusText);
    }
    throw new ApiError(response.status, "error", `${response.status} ${response.statusText}`);
  }
  if (type.includes("json")) return (await response.json()) as T;
  return (await response.text()) as T;
}

export const get = <T>(path: string) => api<T>("GET", path);

/** What deleting an account removed (`POST /api/v1/me/delete`, `DELETE /api/v1/users/{name}`). */
export interface DeletedAccount {
  name: string;
  points: number;
  devices: number;
}

/** Deletes the caller's own account; the server ends the session. */
export const deleteMyAccount = (currentPassword: string) => api<DeletedAccount>("POST", "/api/v1/me/delete", { current_password: currentPassword });

/** Deletes another user's account (administrators). */
export const deleteUser = (name: string) => api<DeletedAccount>("DELETE", `/api/v1/users/${encodeURIComponent(name)}`);

/** Forgets the session in the browser after it ended on the server, and shows the login page. */
export function leaveForLogin(): void {
  localStorage.removeItem(SESSION_HINT);
  setCsrfToken(null);
  window.location.assign("/login");
}

/** Headers of the app's requests made outside `api` (tiles, uploads). */
export const APP_HEADERS: Record<string, string> = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };

/** Query string from an object, leaving out undefined and empty values. */
export function qs(params: Record<string, string | number | boolean | undefined | null>): string {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ---- shapes of the API (see /api/openapi.json) ----

export interface User {
  id: number;
  name: string;
  admin: boolean;
  created: string;
  /** A role besides administrator: "health-authority" or null. */
  role?: string | null;
}

export interface Me {
  user: User;
  device: { id: number; name: string } | null;
  via: string;
  csrf_token: string | null;
}

export interface InstanceConfig {
  instance_name: string;
  tile_url: string;
  tile_attribution: string;
  version: string;
  registration: boolean | string;
  /** Whether an administrator turned the exposure checks on. */
  exposure?: boolean;
  /** The identity provider's login button text, when OIDC is configured. */
  oidc_login?: string | null;
  /** Whether the password form is shown (false: the identity provider only). */
  password_login?: boolean;
}

export type Mode = "walk" | "cycle" | "road" | "rail" | "flight" | "unknown";
export const MODES: Mode[] = ["walk", "cycle", "road", "rail", "flight", "unknown"];

export interface Entry {
  kind: "stay" | "leg";
  origin: "detected" | "imported";
  start: string;
  end: string;
  duration_s: number;
  points: number;
  utc_offset_minutes?: number;
  lat?: number;
  lon?: number;
  visit?: boolean;
  place_id?: number;
  place_name?: string;
  /** The name to show: the place's name, street address, "Near <town>", region or country. */
  title?: string;
  country?: string;
  town?: string;
  address?: string;
  distance_m?: number;
  mode?: Mode;
  mode_corrected?: boolean;
  cruising_speed_mps?: number;
  max_speed_mps?: number;
  mean_speed_mps?: number;
  /** Stays: you edited it (`PUT /api/v1/timeline/visits`). */
  edited?: boolean;
  /** Stays: the device's points end in it; `end` is its last fix there, and later points may extend it. */
  ongoing?: boolean;
}

/** A photo or video of the library (`GET /api/v1/photos`). */
export interface PhotoView {
  id: string;
  name: string;
  media: "image" | "video";
  /** When it was taken, RFC 3339 in its own clock's offset. */
  taken: string;
  offset_from?: string;
  lat?: number;
  lon?: number;
  /** `file`: its own GPS; `history`: proposed from the location history. */
  position_from?: "file" | "history";
  confidence?: "high" | "medium" | "low";
  error_m?: number;
  camera?: string;
  /** When a proposed position was applied (written to polo's XMP sidecar); absent while proposed. */
  applied?: string;
  /** Absent for videos and HEIC: no thumbnail is made of them. */
  thumbnail?: string;
}

export interface PhotoPage {
  photos: PhotoView[];
  truncated: boolean;
}

export type Confidence = "high" | "medium" | "low";

/** A position proposed from the history (`GET /api/v1/photos/proposals`), with its reasons. */
export interface ProposalView {
  id: string;
  name: string;
  media: "image" | "video";
  taken: string;
  lat: number;
  lon: number;
  confidence: Confidence;
  error_m?: number;
  nearest_fix_s?: number;
  moving?: boolean;
  /** When it was applied; absent while only proposed. */
  applied?: string;
  thumbnail?: string;
}

export interface ProposalPage {
  proposals: ProposalView[];
  counts: { high: number; medium: number; low: number; applied: number };
  truncated: boolean;
  next?: string;
}

export type PhotoOutcomeKind = "written" | "updated" | "unchanged" | "removed" | "absent" | "skipped" | "not_found" | "failed";

export interface PhotoOutcome {
  id: string;
  name?: string;
  outcome: PhotoOutcomeKind;
  message?: string;
}

/** What `POST /api/v1/photos/proposals/apply` or `/undo` did, photo by photo. */
export interface BatchOutcome {
  results: PhotoOutcome[];
  written: number;
  unchanged: number;
  removed: number;
  failed: number;
  more: boolean;
}

export interface DayTimeline {
  date: string;
  device?: string;
  from: string;
  to: string;
  utc_offset_minutes: number;
  entries: Entry[];
  /** Every device that tracked something that day, most tracked first. */
  devices: { name: string; label?: string; tracked_s: number }[];
}

export interface Trip {
  device: string;
  start: string;
  /** UTC offset at the start, minutes east: the local time of the place. */
  utc_offset_minutes?: number;
  end: string;
  /** UTC offset at the end, minutes east. */
  end_utc_offset_minutes?: number;
  duration_s: number;
  distance_m: number;
  mean_speed_mps: number;
  max_speed_mps: number;
  main_mode: Mode;
  origin_place?: number;
  destination_place?: number;
  /** The name of the visit it left from, also when that visit is at no place. */
  origin_title?: string;
  /** The name of the visit it arrived at. */
  destination_title?: string;
  entries: Entry[];
}

export interface MapSegment {
  device: number;
  start: number;
  coords: number[];
  times: number[];
}

export interface MapOverview {
  from: string;
  to: string;
  level: number;
  zoom: number;
  level_points: number[];
  points: number;
  thinned: boolean;
  truncated: boolean;
  devices: string[];
  segments: MapSegment[];
}

export interface MapTile {
  z: number;
  x: number;
  y: number;
  cell_zoom: number;
  grid: number;
  total: number;
  max: number;
  cells: [number, number, number][];
}

/** The zone (yours or a group's) that holds a place and names it unless you did. */
export interface PlaceZone {
  id: number;
  name: string;
  group?: number;
  group_name?: string;
}

export interface Place {
  id: number;
  name?: string;
  zone?: PlaceZone;
  /** The name to show: yours, its zone's, the street address, "Near <town>", region or country. */
  title?: string;
  lat: number;
  lon: number;
  country_code?: string;
  country?: string;
  region?: string;
  town?: string;
  address?: string;
  merged: number[];
  visits: number;
  hours: number;
  first_visit: string;
  first_visit_utc_offset_minutes?: number;
  last_visit?: string;
  last_visit_utc_offset_minutes?: number;
  home: boolean;
  work: boolean;
}

export interface StatsPeriod {
  from: string;
  to: string;
  days_tracked: number;
  distance_km: number;
  moving_hours: number;
  stationary_hours: number;
  by_mode: Partial<Record<Mode, { km: number; hours: number }>>;
  days_per_country: Record<string, number>;
  towns: string[];
  new_places: number[];
  top_places: { id: number; name?: string; title?: string; days: number }[];
}

export interface Stats {
  period: string;
  periods: StatsPeriod[];
}

export interface FileReport {
  path: string;
  format: string | null;
  points_added: number;
  duplicates: number;
  /** Points left out because you had deleted them. */
  deleted_left_out?: number;
  intervals_added: number;
  interval_duplicates: number;
  rejected: number;
  rejects_file: string | null;
  error: string | null;
  skipped: string | null;
  /** What the importer assumed about the file (guessed columns, times read as UTC). */
  notes?: string[];
  /** Per device, the span of the points stored (what deleting the import removes). */
  devices?: { device: string; first: string; last: string; points_added: number }[];
}

export interface ImportJob {
  id: string;
  status: "queued" | "running" | "done" | "failed";
  file_name: string;
  bytes_total: number;
  bytes_read: number;
  points_added: number;
  duplicates: number;
  /** Points left out because you had deleted them (when finished). */
  deleted_left_out?: number;
  intervals_added: number;
  rejected: number;
  files: FileReport[];
  rejects_file?: string;
  error: string | null;
  started: string;
  finished: string | null;
  url: string;
}

export interface Device {
  id: number;
  /** The name points arrive under. */
  name: string;
  /** What you call it (`PUT /api/v1/devices/{id}/label`, or from Takeout Settings.json). */
  label?: string;
  last_seen?: string | null;
  battery?: number | null;
  last_position?: { lat: number; lon: number } | null;
  last_point?: { time: string; lat: number; lon: number } | null;
}

export interface Token {
  id: number;
  device: { id: number; name: string };
  label: string;
  created: string;
  last_used: string | null;
}

export interface Share {
  id: number | string;
  kind: "trip" | "range" | "live";
  from?: string | null;
  to?: string | null;
  device?: string | null;
  label?: string | null;
  created: string;
  expires?: string | null;
  revoked?: string | null;
  active?: boolean;
  /** The public page leaves out place names and addresses. */
  hide_places?: boolean;
  url?: string;
  token?: string;
}

export interface PublicShare {
  kind: "trip" | "range" | "live";
  label?: string | null;
  owner: string;
  from?: string | null;
  to?: string | null;
  expires?: string | null;
  live: boolean;
  /** The owner hid place names: stays carry only their town and country. */
  hide_places?: boolean;
}

export interface Friend {
  user: string;
  granted_by_me: boolean;
  granted_to_me: boolean;
  mutual: boolean;
}

/** One encounter with a friend (`/api/v1/together`): your time, place and offsets. */
export interface TogetherEncounter {
  first: string;
  utc_offset_minutes?: number;
  last: string;
  end_utc_offset_minutes?: number;
  minutes: number;
  min_distance_m: number;
  pairs: number;
  lat: number;
  lon: number;
  title?: string;
}

/** A friend who shares both ways, with your encounters in a range and their totals. */
export interface FriendTogether {
  user: string;
  minutes: number;
  count: number;
  last_met?: string;
  last_met_utc_offset_minutes?: number;
  encounters: TogetherEncounter[];
}

export interface Together {
  from: string;
  to: string;
  max_distance_m: number;
  max_gap_s: number;
  friends: FriendTogether[];
}

export interface TogetherWith {
  from: string;
  to: string;
  max_distance_m: number;
  max_gap_s: number;
  friend: FriendTogether;
  latest: TogetherEncounter | null;
}

export interface LivePosition {
  user?: string;
  device: string;
  lat: number;
  lon: number;
  time: string;
  accuracy?: number | null;
  battery?: number | null;
  speed?: number | null;
}

export interface PointView {
  device: string;
  time: string;
  lat: number;
  lon: number;
  altitude?: number | null;
  speed?: number | null;
  /** A fix the timeline leaves out (a teleport, too inaccurate, or flagged by the user). */
  flagged?: boolean;
  flag_reason?: "teleport" | "inaccurate" | "user";
}

/** A group you are in (`GET /api/v1/groups`). */
export interface Group {
  id: number;
  name: string;
  created_ms: number;
  created_by: string | null;
  /** Whether you administer it. */
  admin: boolean;
  members: number;
}

export interface GroupMember {
  user: string;
  admin: boolean;
  joined_ms: number;
}

/** `GET /api/v1/groups/{id}`. */
export interface GroupDetail extends Group {
  member_list: GroupMember[];
  zones: number[];
}

export interface GroupInvitation {
  id: number;
  created_by: string | null;
  created_ms: number;
  expires_ms: number;
  max_uses: number;
  uses: number;
  revoked_ms: number | null;
  active: boolean;
  /** Only in the answer that made it. */
  token?: string;
  url?: string;
}

/** `GET /api/v1/groups/join/{token}`. */
export interface InvitationPreview {
  group_id: number;
  group: string;
  invited_by: string | null;
  expires_ms: number;
  member: boolean;
  valid: boolean;
  reason: string | null;
}

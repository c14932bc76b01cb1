// Formatting of times, durations, distances and dates for display. Times
// come from the API in UTC; the timeline shows them in the zone the points
// carried (utc_offset_minutes), so a day in Tokyo reads in Tokyo time.

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 59.5) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  const rest = minutes % 60;
  if (hours < 48) return rest ? `${hours} h ${rest} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  const restHours = hours % 24;
  return restHours ? `${days} d ${restHours} h` : `${days} d`;
}

export function formatDistance(metres: number): string {
  if (!Number.isFinite(metres)) return "–";
  if (metres < 1000) return `${Math.round(metres)} m`;
  if (metres < 10_000) return `${(metres / 1000).toFixed(1)} km`;
  return `${Math.round(metres / 1000).toLocaleString("en")} km`;
}

export function formatSpeed(mps: number | undefined | null): string {
  if (mps === undefined || mps === null || !Number.isFinite(mps)) return "–";
  return `${(mps * 3.6).toFixed(mps * 3.6 < 10 ? 1 : 0)} km/h`;
}

const pad = (n: number) => String(n).padStart(2, "0");

/** "HH:MM" of a UTC time shown at a UTC offset in minutes. */
export function clockTime(iso: string, offsetMinutes = 0): string {
  const t = new Date(Date.parse(iso) + offsetMinutes * 60_000);
  return `${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
}

/** "YYYY-MM-DD" of a UTC time shown at a UTC offset in minutes. */
export function dateAt(iso: string, offsetMinutes = 0): string {
  const t = new Date(Date.parse(iso) + offsetMinutes * 60_000);
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** "14 May" of a "YYYY-MM-DD", or "14 May 2023" when `withYear`. */
function shortDate(date: string, withYear: boolean): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", { day: "numeric", month: "short", year: withYear ? "numeric" : undefined, timeZone: "UTC" });
}

/**
 * "HH:MM – HH:MM" of an entry on the day `day`, in 24-hour local time. An
 * end (or start) on another date carries that date, so a stay across
 * midnight reads "20:22 – 15 May 07:57", never the bare "20:22 – 07:57".
 */
export function timeRange(start: string, end: string, offsetMinutes: number, day: string): string {
  const part = (iso: string) => {
    const date = dateAt(iso, offsetMinutes);
    const clock = clockTime(iso, offsetMinutes);
    return date === day ? clock : `${shortDate(date, date.slice(0, 4) !== day.slice(0, 4))} ${clock}`;
  };
  return `${part(start)} – ${part(end)}`;
}

/** "YYYY-MM-DD" of a Date in the browser's zone. */
export function localDate(date: Date): string {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/** The calendar date `days` after "YYYY-MM-DD". */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d + days));
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

export function isDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const [y, m, d] = text.split("-").map(Number);
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** "Mon 3 Jun 2024" for a "YYYY-MM-DD". */
export function longDate(date: string): string {
  const [y, m, d] = date.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString("en-GB", {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: "numeric",
    timeZone: "UTC",
  });
}

/** A short date-time for lists ("3 Jun 2024, 14:05"): at the UTC offset in
 * minutes where the time was (the local time of the place), else in the
 * browser's zone. */
export function dateTime(iso: string | null | undefined, offsetMinutes?: number | null): string {
  if (!iso) return "–";
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const style = { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" } as const;
  if (offsetMinutes === undefined || offsetMinutes === null) return t.toLocaleString("en-GB", style);
  return new Date(t.getTime() + offsetMinutes * 60_000).toLocaleString("en-GB", { ...style, timeZone: "UTC" });
}

/** "3 min ago", "2 h ago", "5 d ago" relative to `now`. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "never";
  const seconds = (now - Date.parse(iso)) / 1000;
  if (!Number.isFinite(seconds)) return "–";
  if (seconds < 60) return "just now";
  return `${formatDuration(seconds)} ago`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatCount(n: number | undefined | null): string {
  return (n ?? 0).toLocaleString("en");
}

export const MODE_LABELS: Record<string, string> = {
  walk: "Walking",
  cycle: "Cycling",
  road: "Driving",
  rail: "Train",
  flight: "Flight",
  unknown: "Moving",
};

/** Colours readable on light and dark maps, one per mode. */
export const MODE_COLOURS: Record<string, string> = {
  walk: "#2e9e44",
  cycle: "#0a84c6",
  road: "#d9480f",
  rail: "#8e44ad",
  flight: "#c2185b",
  unknown: "#6b7280",
  stay: "#374151",
};

/** Battery level from either a fraction (0–1) or a percentage. */
export function formatBattery(level: number | null | undefined): string {
  if (level === null || level === undefined || !Number.isFinite(level)) return "–";
  const percent = level <= 1 && level > 0 && !Number.isInteger(level) ? level * 100 : level;
  return `${Math.round(percent)} %`;
}

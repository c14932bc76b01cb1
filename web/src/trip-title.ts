// The one title a trip is listed and shown with.
import type { Trip } from "./api";
import { dateTime, MODE_LABELS } from "./format";

/** "Near Ismaning" reads "near Ismaning" after "From" or "To". */
function lowerNear(name: string): string {
  return name.startsWith("Near ") ? `near ${name.slice(5)}` : name;
}

/**
 * "Home → Office"; "From Home" or "To Office" when a recording gap hides
 * the other end; "Walking, 21 May 2024" when neither end is known. An end
 * at no place is named as the day view names its visit ("Near Ismaning").
 */
export function tripTitle(trip: Trip, names: Map<number, string>): string {
  const end = (place: number | undefined, title: string | undefined) =>
    (place !== undefined ? names.get(place) : undefined) ?? title;
  const from = end(trip.origin_place, trip.origin_title);
  const to = end(trip.destination_place, trip.destination_title);
  if (from && to) return `${from} → ${to}`;
  if (from) return `From ${lowerNear(from)}`;
  if (to) return `To ${lowerNear(to)}`;
  return `${MODE_LABELS[trip.main_mode]}, ${dateTime(trip.start, trip.utc_offset_minutes)}`;
}

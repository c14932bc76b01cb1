// How encounters with friends read ("who was I with", /api/v1/together):
// one line per encounter for the day view and the Together section, kept
// apart from the components so the wording is unit-tested.
import type { FriendTogether, TogetherEncounter } from "./api";
import { dateTime, formatDuration, timeRange } from "./format";

/**
 * "at Café Luitpold", or "near Ismaning" for a name the offline geocoder
 * gave ("Near Ismaning"): "at Near Ismaning" would read wrong. Empty when
 * the place has no name.
 */
export function wherePhrase(title: string | undefined | null): string {
  const name = title?.trim();
  if (!name) return "";
  return name.startsWith("Near ") ? `near ${name.slice(5)}` : `at ${name}`;
}

/** "10:00 – 10:40" on `day` ("YYYY-MM-DD"), in your local time then. */
export function encounterTime(encounter: TogetherEncounter, day: string): string {
  return timeRange(encounter.first, encounter.last, encounter.utc_offset_minutes ?? 0, day);
}

/** "With anna, 14:10 – 15:30, at Café X": the day view's line for an encounter on `day`. */
export function togetherLine(friend: string, encounter: TogetherEncounter, day: string): string {
  const where = wherePhrase(encounter.title);
  return `With ${friend}, ${encounterTime(encounter, day)}${where ? `, ${where}` : ""}`;
}

/** Every friend's encounters of a day, in time order, for the day view. */
export function encountersOfDay(friends: FriendTogether[]): { friend: string; encounter: TogetherEncounter }[] {
  return friends
    .flatMap((f) => f.encounters.map((encounter) => ({ friend: f.user, encounter })))
    .sort((a, b) => Date.parse(a.encounter.first) - Date.parse(b.encounter.first) || a.friend.localeCompare(b.friend));
}

/** "2 h 40 min together in 3 encounters", or "Not met" without any. */
export function totalsLine(friend: FriendTogether): string {
  if (friend.count === 0) return "Not met";
  const times = friend.count === 1 ? "1 encounter" : `${friend.count} encounters`;
  return `${formatDuration(friend.minutes * 60)} together in ${times}`;
}

/** "Last met 3 Jun 2024, 14:05" at your local time then. */
export function lastMetLine(last: string | undefined, offsetMinutes: number | undefined): string {
  return last ? `Last met ${dateTime(last, offsetMinutes)}` : "";
}

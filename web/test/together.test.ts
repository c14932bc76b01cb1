// The wording of encounters with friends (src/together.ts).
import { describe, expect, it } from "vitest";
import type { FriendTogether, TogetherEncounter } from "../src/api";
import { encountersOfDay, lastMetLine, togetherLine, totalsLine, wherePhrase } from "../src/together";

const cafe: TogetherEncounter = {
  first: "2024-05-01T12:10:00Z",
  utc_offset_minutes: 120,
  last: "2024-05-01T13:30:00Z",
  end_utc_offset_minutes: 120,
  minutes: 80,
  min_distance_m: 2.4,
  pairs: 160,
  lat: 48.137,
  lon: 11.575,
  title: "Café X",
};

const friend = (user: string, encounters: TogetherEncounter[]): FriendTogether => ({
  user,
  minutes: encounters.reduce((sum, e) => sum + e.minutes, 0),
  count: encounters.length,
  encounters,
});

describe("wherePhrase", () => {
  it("says at a named place and near a town", () => {
    expect(wherePhrase("Café X")).toBe("at Café X");
    expect(wherePhrase("Near Ismaning")).toBe("near Ismaning");
    expect(wherePhrase("  ")).toBe("");
    expect(wherePhrase(undefined)).toBe("");
  });
});

describe("togetherLine", () => {
  it("reads in the local time of the encounter", () => {
    expect(togetherLine("Anna", cafe, "2024-05-01")).toBe("With Anna, 14:10 – 15:30, at Café X");
  });
  it("dates an end on another day and leaves out a missing place", () => {
    const late = { ...cafe, first: "2024-05-01T21:30:00Z", last: "2024-05-01T22:30:00Z", title: undefined };
    expect(togetherLine("Anna", late, "2024-05-01")).toBe("With Anna, 23:30 – 2 May 00:30");
  });
});

describe("encountersOfDay", () => {
  it("merges friends in time order", () => {
    const early = { ...cafe, first: "2024-05-01T08:00:00Z", last: "2024-05-01T08:20:00Z" };
    const list = encountersOfDay([friend("bob", [cafe]), friend("anna", [early])]);
    expect(list.map((x) => x.friend)).toEqual(["anna", "bob"]);
  });
});

describe("totals", () => {
  it("sums minutes and counts encounters", () => {
    const second = { ...cafe, first: "2024-05-02T12:10:00Z", last: "2024-05-02T12:30:00Z", minutes: 20 };
    expect(totalsLine(friend("anna", [cafe, second]))).toBe("1 h 40 min together in 2 encounters");
    expect(totalsLine(friend("anna", [cafe]))).toBe("1 h 20 min together in 1 encounter");
    expect(totalsLine(friend("anna", []))).toBe("Not met");
  });
  it("gives the last meeting in local time, or nothing", () => {
    expect(lastMetLine("2024-05-01T13:30:00Z", 120)).toBe("Last met 1 May 2024, 15:30");
    expect(lastMetLine(undefined, undefined)).toBe("");
  });
});

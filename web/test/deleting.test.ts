// Unit tests of the deleting and editing helpers: local times in the
// visit editor's inputs and the rectangle a map selection sends.
import { describe, expect, it } from "vitest";
import { fromLocalInput, toLocalInput } from "../src/components/Deleting";
import { bboxOf, wrapLongitude } from "../src/map/selection";

describe("visit editor times", () => {
  it("shows a UTC time at the stay's offset and reads it back", () => {
    expect(toLocalInput("2024-05-01T06:30:15Z", 120)).toBe("2024-05-01T08:30");
    expect(fromLocalInput("2024-05-01T08:30", 120)).toBe("2024-05-01T06:30:00Z");
    // Across midnight and west of Greenwich.
    expect(toLocalInput("2024-05-01T02:00:00Z", -300)).toBe("2024-04-30T21:00");
    expect(fromLocalInput("2024-04-30T21:00", -300)).toBe("2024-05-01T02:00:00Z");
    expect(fromLocalInput("yesterday", 0)).toBeNull();
  });
});

describe("map selections", () => {
  it("wraps longitudes and keeps a selection across the antimeridian", () => {
    expect(wrapLongitude(190)).toBe(-170);
    expect(wrapLongitude(-181)).toBe(179);
    expect(wrapLongitude(11.5)).toBeCloseTo(11.5);
    expect(bboxOf({ west: 11.5, south: 48.1, east: 11.6, north: 48.2 })).toEqual([11.5, 48.1, 11.6, 48.2]);
    // Drawn over the Pacific on a map panned east: west > east means across ±180°.
    expect(bboxOf({ west: 170, south: -20, east: 190, north: -10 })).toEqual([170, -20, -170, -10]);
    expect(bboxOf({ west: -400, south: -95, east: 400, north: 95 })).toEqual([-180, -90, 180, 90]);
  });
});

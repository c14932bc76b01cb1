// Unit tests of the photo review's helpers: a proposal's reasons, and what a
// batch of apply or undo says it did.
import { describe, expect, it } from "vitest";
import type { BatchOutcome, ProposalView } from "../src/api";
import { combine, isProblem, reasons, summary } from "../src/photoreview";

const proposal = (extra: Partial<ProposalView>): ProposalView => ({
  id: "1",
  name: "IMG_1.jpg",
  media: "image",
  taken: "2024-07-14T12:00:00.000+02:00",
  lat: 53.8655,
  lon: 10.6866,
  confidence: "high",
  ...extra,
});

const batch = (outcomes: BatchOutcome["results"][number]["outcome"][], more = false): BatchOutcome => {
  const results = outcomes.map((outcome, i) => ({ id: String(i), name: `IMG_${i}.jpg`, outcome }));
  const count = (...kinds: string[]) => results.filter((r) => kinds.includes(r.outcome)).length;
  return { results, written: count("written", "updated"), unchanged: count("unchanged", "absent"), removed: count("removed"), failed: count("failed"), more };
};

describe("proposal reasons", () => {
  it("says the error, the nearest fix and whether you moved", () => {
    expect(reasons(proposal({ error_m: 40, nearest_fix_s: 90, moving: false }))).toBe("±40 m · nearest fix 2 min · at rest");
    expect(reasons(proposal({ error_m: 4_200, nearest_fix_s: 12, moving: true }))).toBe("±4.2 km · nearest fix 12 s · moving");
    expect(reasons(proposal({}))).toBe("");
  });
});

describe("batch outcomes", () => {
  it("sum up what apply did, failures included", () => {
    expect(summary(batch(["written", "written", "unchanged", "failed", "skipped"]), "apply")).toBe(
      "2 positions applied (XMP sidecar written), 1 was applied already, 1 photo skipped, 1 photo failed.",
    );
    expect(summary(batch([]), "apply")).toBe("Nothing to do.");
    expect(summary(batch(["not_found"]), "apply")).toBe("1 photo not found.");
  });

  it("sum up what undo did", () => {
    expect(summary(batch(["removed", "removed", "absent"]), "undo")).toBe(
      "2 sidecars removed, 1 photo had no sidecar of polo's, 3 positions back to review.",
    );
  });

  it("add batches of all that match into one", () => {
    const both = combine([batch(["written", "failed"], true), batch(["written"], false)]);
    expect([both.results.length, both.written, both.failed, both.more]).toEqual([3, 2, 1, false]);
    expect(isProblem("failed") && isProblem("not_found") && !isProblem("unchanged")).toBe(true);
  });
});

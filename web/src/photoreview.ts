// The review of photo positions without the page: what a proposal's reasons
// say, what a batch did in a sentence, and how batches of "all that match"
// add up. Kept apart from the page so it is tested without a browser.

import type { BatchOutcome, Confidence, PhotoOutcomeKind, ProposalView } from "./api";
import { formatDistance, formatDuration } from "./format";

export const CONFIDENCE_COLOURS: Record<Confidence, string> = {
  high: "#15803d",
  medium: "#b45309",
  low: "#b91c1c",
};

/** The reasons behind a proposal's confidence: "±40 m · nearest fix 2 min · at rest". */
export function reasons(p: ProposalView): string {
  const parts: string[] = [];
  if (p.error_m !== undefined) parts.push(`±${formatDistance(p.error_m)}`);
  if (p.nearest_fix_s !== undefined) parts.push(`nearest fix ${formatDuration(p.nearest_fix_s)}`);
  if (p.moving !== undefined) parts.push(p.moving ? "moving" : "at rest");
  return parts.join(" · ");
}

export const OUTCOME_LABELS: Record<PhotoOutcomeKind, string> = {
  written: "sidecar written",
  updated: "sidecar updated",
  unchanged: "already applied",
  removed: "sidecar removed",
  absent: "no sidecar to remove",
  skipped: "skipped",
  not_found: "not found",
  failed: "failed",
};

/** Whether an outcome is a failure the user should look at. */
export function isProblem(kind: PhotoOutcomeKind): boolean {
  return kind === "failed" || kind === "not_found";
}

/** Several batches (one request of "all that match" takes at most 2,000) as one. */
export function combine(batches: BatchOutcome[]): BatchOutcome {
  return {
    results: batches.flatMap((b) => b.results),
    written: batches.reduce((n, b) => n + b.written, 0),
    unchanged: batches.reduce((n, b) => n + b.unchanged, 0),
    removed: batches.reduce((n, b) => n + b.removed, 0),
    failed: batches.reduce((n, b) => n + b.failed, 0),
    more: batches.length > 0 && batches[batches.length - 1].more,
  };
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en")} ${n === 1 ? one : many}`;

/** One sentence for what a batch did. */
export function summary(batch: BatchOutcome, action: "apply" | "undo"): string {
  const parts: string[] = [];
  if (action === "apply") {
    if (batch.written) parts.push(`${plural(batch.written, "position")} applied (XMP sidecar written)`);
    if (batch.unchanged) parts.push(`${plural(batch.unchanged, "was", "were")} applied already`);
  } else {
    if (batch.removed) parts.push(`${plural(batch.removed, "sidecar")} removed`);
    if (batch.unchanged) parts.push(`${plural(batch.unchanged, "photo")} had no sidecar of polo's`);
    const undone = batch.results.filter((r) => r.outcome === "removed" || r.outcome === "absent").length;
    if (undone) parts.push(`${plural(undone, "position")} back to review`);
  }
  const skipped = batch.results.filter((r) => r.outcome === "skipped").length;
  if (skipped) parts.push(`${plural(skipped, "photo")} skipped`);
  if (batch.failed) parts.push(`${plural(batch.failed, "photo")} failed`);
  const missing = batch.results.filter((r) => r.outcome === "not_found").length;
  if (missing) parts.push(`${plural(missing, "photo")} not found`);
  return parts.length ? `${parts.join(", ")}.` : "Nothing to do.";
}

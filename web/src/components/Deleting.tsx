// Deleting and correcting the history from any page: a delete button that
// asks first (inline, not a browser dialog), the toast that offers to undo a
// delete, and the editor of one visit on the day page.
//
// Deletes go to `POST /api/v1/points/delete`, which answers with an undo
// token valid for 15 minutes (`POST /api/v1/points/restore`); the server keeps
// the delete as a tombstone, so a re-import does not bring the points back.

import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, get, type DayTimeline, type Entry, type ImportJob, type Place } from "../api";
import { formatCount } from "../format";
import { ErrorBox } from "./ui";

/** Which points to delete (see `POST /api/v1/points/delete`). */
export interface DeleteSelection {
  from?: string;
  to?: string;
  device?: string;
  bbox?: [number, number, number, number];
  everything?: boolean;
}

export interface DeleteOutcome {
  deleted: number;
  undo?: string;
  undo_expires?: string;
  /** Several deletes undone together (an import over several devices). */
  undos?: string[];
}

export const deletePoints = (selection: DeleteSelection) => api<DeleteOutcome>("POST", "/api/v1/points/delete", selection);

/** A "Delete …" button that asks for confirmation inline, then deletes and reports what it did. */
export function DeleteButton({
  label,
  question,
  selection,
  onDeleted,
  testId,
  confirmWord,
}: {
  label: string;
  question: ComponentChildren;
  selection: DeleteSelection;
  onDeleted: (outcome: DeleteOutcome) => void;
  testId?: string;
  /** When set, the user must type this word before the delete is enabled (deleting everything). */
  confirmWord?: string;
}) {
  const [asking, setAsking] = useState(false);
  const [typed, setTyped] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const outcome = await deletePoints(selection);
      setAsking(false);
      setTyped("");
      onDeleted(outcome);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (!asking) {
    return (
      <button type="button" class="small danger" data-testid={testId} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  const ready = !confirmWord || typed.trim() === confirmWord;
  return (
    <div class="confirm-delete" role="group" aria-label={label}>
      <p>{question}</p>
      {confirmWord && (
        <label>
          Type <code>{confirmWord}</code> to confirm{" "}
          <input value={typed} onInput={(e) => setTyped(e.currentTarget.value)} data-testid={testId && `${testId}-word`} />
        </label>
      )}
      <button type="button" class="small danger primary" disabled={busy || !ready} onClick={run} data-testid={testId && `${testId}-confirm`}>
        {busy ? "Deleting…" : "Delete"}
      </button>{" "}
      <button type="button" class="small" disabled={busy} onClick={() => setAsking(false)}>
        Cancel
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

/** Says what a delete removed and offers to undo it while the server still can. */
export function UndoToast({ outcome, onUndone, onClose }: { outcome: DeleteOutcome; onUndone: () => void; onClose: () => void }) {
  const [busy, setBusy] = useState(false);
  const [restored, setRestored] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  // A new delete: a fresh toast, open for a minute (the undo itself works for 15).
  useEffect(() => {
    setRestored(null);
    setError(undefined);
    const timer = setTimeout(onClose, 60_000);
    return () => clearTimeout(timer);
  }, [outcome]);
  const tokens = outcome.undos ?? (outcome.undo ? [outcome.undo] : []);
  const undo = async () => {
    if (tokens.length === 0) return;
    setBusy(true);
    setError(undefined);
    try {
      let total = 0;
      for (const token of tokens) total += (await api<{ restored: number }>("POST", "/api/v1/points/restore", { undo: token })).restored;
      setRestored(total);
      onUndone();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="toast" role="status" aria-live="polite" data-testid="undo-toast">
      {restored === null ? (
        <>
          Deleted {formatCount(outcome.deleted)} {outcome.deleted === 1 ? "point" : "points"}.
          {tokens.length > 0 ? (
            <button type="button" class="small" disabled={busy} onClick={undo} data-testid="undo">
              Undo
            </button>
          ) : (
            outcome.deleted > 0 && <span class="muted"> Too many to undo.</span>
          )}
        </>
      ) : (
        <>Restored {formatCount(restored)} points.</>
      )}
      <button type="button" class="small link" onClick={onClose} aria-label="Close">
        ×
      </button>
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

const pad = (n: number) => String(n).padStart(2, "0");

/** `YYYY-MM-DDTHH:MM` of a UTC time at a UTC offset, for a `datetime-local` input. */
export function toLocalInput(iso: string, offsetMinutes: number): string {
  const t = new Date(Date.parse(iso) + offsetMinutes * 60_000);
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}T${pad(t.getUTCHours())}:${pad(t.getUTCMinutes())}`;
}

/** The UTC instant (RFC 3339) of a `datetime-local` value read at a UTC offset. */
export function fromLocalInput(value: string, offsetMinutes: number): string | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})$/.exec(value);
  if (!m) return null;
  const [y, mo, d, h, mi] = m.slice(1).map(Number);
  return new Date(Date.UTC(y, mo - 1, d, h, mi) - offsetMinutes * 60_000).toISOString().replace(".000Z", "Z");
}

/** Edits a visit: its times, its place, or deletes it from the timeline (its points stay). */
export function VisitEditor({ entry, day, onChanged }: { entry: Entry; day: DayTimeline; onChanged: () => void }) {
  const offset = entry.utc_offset_minutes ?? day.utc_offset_minutes;
  const [open, setOpen] = useState(false);
  const initial = { start: toLocalInput(entry.start, offset), end: toLocalInput(entry.end, offset) };
  const [start, setStart] = useState(initial.start);
  const [end, setEnd] = useState(initial.end);
  const [place, setPlace] = useState<string>(entry.place_id === undefined ? "" : String(entry.place_id));
  const [places, setPlaces] = useState<Place[] | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (!open || places) return;
    get<Place[]>("/api/v1/places").then(
      // The most visited first; a long history has thousands.
      (all) => setPlaces([...all].sort((a, b) => b.visits - a.visits).slice(0, 300)),
      setError,
    );
  }, [open]);
  if (!day.device || entry.origin !== "detected") return null;
  const send = async (body: Record<string, unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await api("PUT", "/api/v1/timeline/visits", { device: day.device, start: entry.start, ...body });
      setOpen(false);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const save = (event: Event) => {
    event.preventDefault();
    const body: Record<string, unknown> = {};
    if (start !== initial.start) body.new_start = fromLocalInput(start, offset);
    if (end !== initial.end) body.new_end = fromLocalInput(end, offset);
    if (place !== "" && Number(place) !== entry.place_id) body.place_id = Number(place);
    if (Object.keys(body).length === 0) {
      setOpen(false);
      return;
    }
    void send(body);
  };
  if (!open) {
    return (
      <span class="visit-actions">
        <button type="button" class="small link" onClick={() => setOpen(true)} data-testid="edit-visit">
          Edit visit
        </button>
        {entry.edited && (
          <button type="button" class="small link" disabled={busy} onClick={() => send({})} title="Back to what was detected">
            Undo edit
          </button>
        )}
        {error !== undefined && <ErrorBox error={error} />}
      </span>
    );
  }
  const known = places ?? [];
  return (
    <form class="visit-edit" onSubmit={save} aria-label="Edit visit">
      <label>
        From <input type="datetime-local" value={start} onInput={(e) => setStart(e.currentTarget.value)} required data-testid="visit-start" />
      </label>
      <label>
        To <input type="datetime-local" value={end} onInput={(e) => setEnd(e.currentTarget.value)} required data-testid="visit-end" />
      </label>
      <label>
        Place{" "}
        <select value={place} onChange={(e) => setPlace(e.currentTarget.value)} data-testid="visit-place">
          {entry.place_id === undefined && <option value="">(none)</option>}
          {entry.place_id !== undefined && !known.some((p) => p.id === entry.place_id) && (
            <option value={String(entry.place_id)}>{entry.place_name || `Place ${entry.place_id}`}</option>
          )}
          {known.map((p) => (
            <option value={String(p.id)}>{p.name || p.address || [p.town, p.country].filter(Boolean).join(", ") || `Place ${p.id}`}</option>
          ))}
        </select>
      </label>
      <div class="toolbar">
        <button type="submit" class="small primary" disabled={busy} data-testid="visit-save">
          Save
        </button>
        <button type="button" class="small danger" disabled={busy} onClick={() => send({ deleted: true })} data-testid="visit-delete">
          Delete visit
        </button>
        <button type="button" class="small" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

/** Deletes what an import stored: per device, every point in the span its points cover. */
export function ImportDelete({ job, onDeleted }: { job: ImportJob; onDeleted: () => void }) {
  const spans = new Map<string, { first: string; last: string; points: number }>();
  for (const file of job.files) {
    for (const span of file.devices ?? []) {
      const known = spans.get(span.device);
      spans.set(span.device, {
        first: known && known.first < span.first ? known.first : span.first,
        last: known && known.last > span.last ? known.last : span.last,
        points: (known?.points ?? 0) + span.points_added,
      });
    }
  }
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [deleted, setDeleted] = useState<DeleteOutcome | null>(null);
  if (spans.size === 0) return null;
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      let total = 0;
      const undos: string[] = [];
      for (const [device, span] of spans) {
        // The span's last point included.
        const to = new Date(Date.parse(span.last) + 1).toISOString();
        const outcome = await deletePoints({ device, from: span.first, to });
        total += outcome.deleted;
        if (outcome.undo) undos.push(outcome.undo);
      }
      setAsking(false);
      setDeleted({ deleted: total, undos });
      onDeleted();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="import-delete">
      {!asking ? (
        <button type="button" class="small danger" onClick={() => setAsking(true)} data-testid="delete-import">
          Delete its points
        </button>
      ) : (
        <div class="confirm-delete" role="group" aria-label="Delete the import's points">
          <p>Delete every point of these devices in the time the import covered (points from other sources in that time go too)?</p>
          <ul>
            {[...spans].map(([device, span]) => (
              <li>
                {device}: {span.first.slice(0, 16).replace("T", " ")} – {span.last.slice(0, 16).replace("T", " ")} UTC ({formatCount(span.points)} imported)
              </li>
            ))}
          </ul>
          <button type="button" class="small danger primary" disabled={busy} onClick={run} data-testid="delete-import-confirm">
            {busy ? "Deleting…" : "Delete"}
          </button>{" "}
          <button type="button" class="small" disabled={busy} onClick={() => setAsking(false)}>
            Cancel
          </button>
        </div>
      )}
      {error !== undefined && <ErrorBox error={error} />}
      {deleted && <UndoToast outcome={deleted} onUndone={onDeleted} onClose={() => setDeleted(null)} />}
    </div>
  );
}

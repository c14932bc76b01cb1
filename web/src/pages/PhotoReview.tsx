// Review photo positions: the photos `polo photos scan` placed from the
// location history, on a map and in a list with their confidence and its
// reasons. Choose some (or all that match the filter) and apply them: the
// server writes polo's XMP sidecar beside each original and reports every
// photo's outcome. The Applied tab lists what was applied, to undo.

import L from "leaflet";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, get, qs, type BatchOutcome, type Confidence, type PhotoOutcome, type ProposalPage, type ProposalView } from "../api";
import { dateTime, formatCount } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { boundsOf } from "../track";
import { MapBox } from "../components/MapBox";
import { offsetOf } from "../components/Photos";
import { ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import { CONFIDENCE_COLOURS, combine, isProblem, OUTCOME_LABELS, reasons, summary } from "../photoreview";

type Status = "proposed" | "applied";
type Action = "apply" | "undo";

const MIN_LABELS: Record<Confidence, string> = {
  low: "Every confidence",
  medium: "Medium and high",
  high: "High only",
};

export function PhotoReview() {
  const [status, setStatus] = useState<Status>("proposed");
  const [min, setMin] = useState<Confidence>("low");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [focused, setFocused] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ action: Action; batch: BatchOutcome } | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  // A date range, when given, is whole days in the browser's zone.
  const range = useMemo(() => ({ from: from ? new Date(`${from}T00:00:00`).toISOString() : undefined, to: to ? new Date(`${to}T00:00:00`).getTime() + 86_400_000 : undefined }), [from, to]);
  const rangeInvalid = range.from !== undefined && range.to !== undefined && Date.parse(range.from) >= range.to;
  const filter = { min_confidence: min, from: range.from, to: range.to === undefined ? undefined : new Date(range.to).toISOString() };
  const page = useAsync(
    () => (rangeInvalid ? Promise.resolve(null) : get<ProposalPage>(`/api/v1/photos/proposals${qs({ status, ...filter, limit: 500 })}`)),
    [status, min, from, to],
  );
  const proposals = page.data?.proposals ?? [];
  useEffect(() => setSelected(new Set()), [status, min, from, to]);
  // Photos no longer listed (applied, undone) leave the selection.
  useEffect(() => {
    const ids = new Set(proposals.map((p) => p.id));
    setSelected((current) => new Set([...current].filter((id) => ids.has(id))));
  }, [page.data]);

  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  const markers = useRef<Map<string, L.CircleMarker>>(new Map());
  const errorRing = useRef<L.Circle | null>(null);

  // Each proposal on the map, coloured by confidence; a chosen one filled.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    map.map.getContainer().dataset.proposalMarkers = String(proposals.length);
    const group = L.layerGroup().addTo(map.map);
    markers.current = new Map();
    for (const p of proposals) {
      const marker = L.circleMarker([p.lat, p.lon], {
        renderer: map.renderer,
        radius: 7,
        color: CONFIDENCE_COLOURS[p.confidence],
        weight: 2,
        fillColor: CONFIDENCE_COLOURS[p.confidence],
        fillOpacity: 0.25,
        className: "proposal-marker",
      })
        .bindTooltip(`${p.name} · ${p.confidence} confidence · ${reasons(p)}`)
        .on("click", () => toggle(p.id))
        .addTo(group);
      markers.current.set(p.id, marker);
    }
    if (proposals.length > 0) fitTo(map.map, boundsOf([{ latlngs: proposals.map((p) => [p.lat, p.lon] as [number, number]) }]), 15);
    return () => {
      group.remove();
    };
  }, [page.data, mapReady]);

  useEffect(() => {
    for (const [id, marker] of markers.current) marker.setStyle({ fillOpacity: selected.has(id) ? 0.85 : 0.25, weight: selected.has(id) ? 3 : 2 });
  }, [selected, page.data, mapReady]);

  // The focused proposal's estimated error as a ring around it.
  useEffect(() => {
    errorRing.current?.remove();
    errorRing.current = null;
    const map = mapRef.current;
    const p = proposals.find((x) => x.id === focused);
    if (!map || !p) return;
    errorRing.current = L.circle([p.lat, p.lon], { renderer: map.renderer, radius: Math.max(p.error_m ?? 0, 5), color: CONFIDENCE_COLOURS[p.confidence], weight: 1, dashArray: "4 4", fillOpacity: 0.08 }).addTo(map.map);
    markers.current.get(focused ?? "")?.openTooltip();
  }, [focused, page.data, mapReady]);

  const toggle = (id: string) =>
    setSelected((current) => {
      const next = new Set(current);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const allChosen = proposals.length > 0 && proposals.every((p) => selected.has(p.id));
  const action: Action = status === "proposed" ? "apply" : "undo";

  const run = async (body: { ids: string[] } | { matching: typeof filter }) => {
    setBusy(true);
    setError(undefined);
    try {
      const batches: BatchOutcome[] = [];
      // "All that match": one batch takes at most 2,000; the next request takes the rest.
      // A batch that changed nothing would only be taken again: stop there.
      for (let round = 0; round < 100; round++) {
        const batch = await api<BatchOutcome>("POST", `/api/v1/photos/proposals/${action}`, body);
        batches.push(batch);
        if (!("matching" in body) || !batch.more || batch.results.every((r) => isProblem(r.outcome) || r.outcome === "skipped")) break;
      }
      setResult({ action, batch: combine(batches) });
      page.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  const counts = page.data?.counts;
  const toReview = counts ? counts.high + counts.medium + counts.low : undefined;
  const matchingCount = status === "applied" ? counts?.applied : counts ? (min === "high" ? counts.high : min === "medium" ? counts.high + counts.medium : toReview) : undefined;
  const problems = new Map<string, PhotoOutcome>((result?.batch.results ?? []).filter((r) => isProblem(r.outcome) || r.outcome === "skipped").map((r) => [r.id, r]));

  return (
    <section class="photo-review">
      <PageTitle>Review photo positions</PageTitle>
      <p class="muted intro">
        Photos taken without GPS get a position from your location history. Check them here, then apply them: polo writes an XMP sidecar beside each photo (<code>IMG_1234.jpg.xmp</code>), which darktable, digiKam, Immich and PhotoPrism read. The photos themselves are never changed, and Undo removes polo's sidecars again.
      </p>
      <div class="tabs" role="tablist" aria-label="Which positions">
        <button type="button" role="tab" aria-selected={status === "proposed"} class={status === "proposed" ? "active" : ""} onClick={() => setStatus("proposed")}>
          To review{toReview !== undefined ? ` (${formatCount(toReview)})` : ""}
        </button>
        <button type="button" role="tab" aria-selected={status === "applied"} class={status === "applied" ? "active" : ""} onClick={() => setStatus("applied")}>
          Applied{counts ? ` (${formatCount(counts.applied)})` : ""}
        </button>
      </div>
      <div class="toolbar">
        <label>
          Confidence{" "}
          <select value={min} onChange={(e) => setMin(e.currentTarget.value as Confidence)} data-testid="min-confidence">
            {(Object.keys(MIN_LABELS) as Confidence[]).map((c) => (
              <option value={c}>{MIN_LABELS[c]}</option>
            ))}
          </select>
        </label>
        <label>
          From <input type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          To <input type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
      </div>
      {rangeInvalid && <Notice kind="warn">The end date is before the start date.</Notice>}
      <div class="review-actions" role="group" aria-label="Selection">
        <label class="inline">
          <input
            type="checkbox"
            checked={allChosen}
            disabled={proposals.length === 0 || busy}
            onChange={() => setSelected(allChosen ? new Set() : new Set(proposals.map((p) => p.id)))}
            data-testid="select-all"
          />{" "}
          Select all shown
        </label>
        <button type="button" class="primary" disabled={busy || selected.size === 0} onClick={() => run({ ids: [...selected] })} data-testid="run-selected">
          {action === "apply" ? `Apply ${formatCount(selected.size)}` : `Undo ${formatCount(selected.size)}`}
        </button>
        {matchingCount !== undefined && matchingCount > proposals.length && (
          <button type="button" disabled={busy} onClick={() => run({ matching: filter })}>
            {action === "apply" ? `Apply all ${formatCount(matchingCount)} matching` : `Undo all ${formatCount(matchingCount)}`}
          </button>
        )}
        {busy && <span class="muted">{action === "apply" ? "Writing sidecars…" : "Removing sidecars…"}</span>}
      </div>
      {error !== undefined && <ErrorBox error={error} />}
      {result && <BatchReport result={result} onClose={() => setResult(null)} />}
      <div class="split review-split">
        <div>
          {page.loading && !page.data && <Loading label="Loading proposals…" />}
          {page.error !== undefined && <ErrorBox error={page.error} retry={page.reload} />}
          {page.data && proposals.length === 0 && (
            <p class="muted" data-testid="no-proposals">
              {status === "proposed"
                ? toReview
                  ? "No proposal matches this filter."
                  : "Nothing to review: every photo has a position of its own or an applied one. `polo photos scan` adds new photos."
                : "No position has been applied yet."}
            </p>
          )}
          {page.data && proposals.length > 0 && (
            <p class="muted" data-testid="proposal-count">
              {page.data.truncated ? `The first ${formatCount(proposals.length)} of ${formatCount(matchingCount)}` : `${formatCount(proposals.length)} ${status === "proposed" ? "to review" : "applied"}`}
              {selected.size > 0 && ` · ${formatCount(selected.size)} selected`}
            </p>
          )}
          <ul class="proposal-list" aria-label={status === "proposed" ? "Proposed positions" : "Applied positions"}>
            {proposals.map((p) => (
              <ProposalRow key={p.id} proposal={p} chosen={selected.has(p.id)} focused={focused === p.id} problem={problems.get(p.id)} onToggle={() => toggle(p.id)} onFocus={() => setFocused(p.id)} />
            ))}
          </ul>
        </div>
        <MapBox
          label="Map of the proposed positions"
          class="review-map"
          onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }}
        />
      </div>
    </section>
  );
}

function ProposalRow({ proposal: p, chosen, focused, problem, onToggle, onFocus }: { proposal: ProposalView; chosen: boolean; focused: boolean; problem?: PhotoOutcome; onToggle: () => void; onFocus: () => void }) {
  const when = dateTime(p.taken, offsetOf(p.taken));
  return (
    <li class={`proposal card${chosen ? " chosen" : ""}${focused ? " focused" : ""}`} data-proposal={p.id}>
      <label class="proposal-choose">
        <input type="checkbox" checked={chosen} onChange={onToggle} aria-label={`Choose ${p.name}`} />
      </label>
      {p.thumbnail ? (
        <img class="proposal-thumb" src={`${p.thumbnail}?size=small`} alt={p.name} loading="lazy" decoding="async" />
      ) : (
        <span class={`photo-tile proposal-thumb ${p.media}`} role="img" aria-label={p.name}>
          <span aria-hidden="true">{p.media === "video" ? "▶" : "▣"}</span>
        </span>
      )}
      <div class="proposal-body">
        <button type="button" class="link proposal-name" onClick={onFocus}>
          {p.name}
        </button>
        <span class={`badge confidence-${p.confidence}`}>{p.confidence}</span>
        <div class="muted">
          {when} · {p.lat.toFixed(5)}, {p.lon.toFixed(5)}
        </div>
        <div class="muted">{reasons(p)}</div>
        {p.applied && <div class="muted">Applied {dateTime(p.applied, offsetOf(p.applied))}</div>}
        {problem && (
          <div class={problem.outcome === "skipped" ? "muted" : "proposal-problem"} role="status">
            {OUTCOME_LABELS[problem.outcome]}
            {problem.message ? `: ${problem.message}` : ""}
          </div>
        )}
      </div>
    </li>
  );
}

function BatchReport({ result, onClose }: { result: { action: Action; batch: BatchOutcome }; onClose: () => void }) {
  const { action, batch } = result;
  const [open, setOpen] = useState(batch.failed > 0);
  return (
    <div class={`notice notice-${batch.failed ? "warn" : "ok"} batch-report`} role="status" data-testid="batch-report">
      <p>
        <strong>{summary(batch, action)}</strong>{" "}
        {batch.results.length > 0 && (
          <button type="button" class="link" onClick={() => setOpen(!open)} aria-expanded={open}>
            {open ? "Hide each photo" : "Show each photo"}
          </button>
        )}{" "}
        <button type="button" class="link" onClick={onClose}>
          Dismiss
        </button>
      </p>
      {open && (
        <ul class="outcome-list">
          {batch.results.map((r) => (
            <li class={`outcome-${r.outcome}`} data-outcome={r.outcome}>
              <span class="outcome-name">{r.name ?? r.id}</span> <span class="badge">{OUTCOME_LABELS[r.outcome]}</span>
              {r.message && <span class="muted"> {r.message}</span>}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

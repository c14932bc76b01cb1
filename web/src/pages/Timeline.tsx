// The home page: one local day as a list of stays and trips beside a map of
// the day's track coloured by transport mode. ← and → move between days;
// clicking an entry focuses the map on it; place names and leg modes are
// edited inline (the server keeps the edits across recomputation).

import L from "leaflet";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, get, MODES, qs, type DayTimeline, type Entry, type MapOverview, type Mode, type PhotoPage, type PhotoView, type PointView, type Together } from "../api";
import { addDays, clockTime, formatDistance, formatDuration, formatSpeed, isDate, localDate, longDate, MODE_COLOURS, MODE_LABELS, timeRange } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { addPhotoMarkers } from "../map/photos";
import { navigate, useLocation } from "../router";
import { boundsOf, colourByEntries, decodeOverview, type ColouredRun } from "../track";
import { MapBox } from "../components/MapBox";
import { DeleteButton, UndoToast, VisitEditor, type DeleteOutcome } from "../components/Deleting";
import { ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";
import { encountersOfDay, togetherLine } from "../together";
import { PhotoStrip, photosOfEntries } from "../components/Photos";

interface DayData {
  day: DayTimeline;
  runs: ColouredRun[];
}

async function loadDay(date: string, device?: string): Promise<DayData> {
  const day = await get<DayTimeline>(`/api/v1/timeline/day${qs({ date, device })}`);
  let runs: ColouredRun[] = [];
  if (day.device) {
    const overview = await get<MapOverview>(`/api/v1/map/overview${qs({ from: day.from, to: day.to, device: day.device })}`);
    runs = colourByEntries(decodeOverview(overview), day.entries);
  }
  return { day, runs };
}

const FLAG_LABELS: Record<string, string> = { teleport: "teleport", inaccurate: "too inaccurate", user: "flagged by you" };

/** The fixes of a day the timeline leaves out (teleports, inaccurate, flagged by the user). */
async function loadFlagged(from: string, to: string, device: string): Promise<PointView[]> {
  const answer = await get<{ points: PointView[] }>(`/api/v1/points${qs({ from, to, device, outliers: "only", limit: 10000 })}`);
  return answer.points;
}

/** The day a path shows: `/day/YYYY-MM-DD`, or today. The key handler
 * reads it from the URL, since a second key press can come before the
 * first one's render. */
function dayOf(path: string): string {
  return path.startsWith("/day/") && isDate(path.slice(5)) ? path.slice(5) : localDate(new Date());
}

export function Timeline({ device }: { device?: string } = {}) {
  const { path } = useLocation();
  const date = dayOf(path);
  const today = localDate(new Date());
  const { data, error, loading, reload } = useAsync(() => loadDay(date, device), [date, device]);
  const [selected, setSelected] = useState<number | null>(null);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  const layerRef = useRef<L.LayerGroup | null>(null);
  const runLayers = useRef<Map<number, L.Polyline[]>>(new Map());
  const [showFlagged, setShowFlagged] = useState(false);
  const flagged = useAsync(
    () => (showFlagged && data?.day.device ? loadFlagged(data.day.from, data.day.to, data.day.device) : Promise.resolve([] as PointView[])),
    [showFlagged, data],
  );
  const flaggedLayer = useRef<L.LayerGroup | null>(null);
  // Encounters with friends who share both ways: a call of its own, so the
  // day's stays and legs (stored rows) show without waiting for the join.
  const together = useAsync(
    () => (data?.day.device ? get<Together>(`/api/v1/together${qs({ from: data.day.from, to: data.day.to })}`).then((t) => encountersOfDay(t.friends)) : Promise.resolve([])),
    [data],
  );
  const [deleted, setDeleted] = useState<DeleteOutcome | null>(null);
  // The day's photos from your library: a call of its own, beside each stay and trip they were taken in.
  const photos = useAsync(
    () => (data ? get<PhotoPage>(`/api/v1/photos${qs({ from: data.day.from, to: data.day.to })}`).then((page) => page.photos) : Promise.resolve([] as PhotoView[])),
    [data],
  );
  const toReview = (photos.data ?? []).filter((photo) => photo.position_from === "history" && !photo.applied).length;
  const placedPhotos = useMemo(() => (data && photos.data ? photosOfEntries(data.day.entries, photos.data) : null), [data, photos.data]);
  const photoLayer = useRef<L.LayerGroup | null>(null);

  // Moving between days keeps the chosen device.
  const go = (to: string) => navigate(`${to === today ? "/" : `/day/${to}`}${qs({ device })}`);

  // ← / → between days, unless typing in a field.
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      const target = event.target as HTMLElement | null;
      if (target && (target.isContentEditable || ["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName))) return;
      if (event.altKey || event.ctrlKey || event.metaKey) return;
      if (event.key === "ArrowLeft") {
        event.preventDefault();
        go(addDays(dayOf(location.pathname), -1));
      } else if (event.key === "ArrowRight") {
        event.preventDefault();
        go(addDays(dayOf(location.pathname), 1));
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [device]);

  useEffect(() => setSelected(null), [date]);

  // Draw the day on the map.
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !data) return;
    layerRef.current?.remove();
    const group = L.layerGroup().addTo(map.map);
    layerRef.current = group;
    runLayers.current = new Map();
    for (const run of data.runs) {
      if (run.latlngs.length < 2) continue;
      const stay = run.mode === "stay";
      const line = L.polyline(run.latlngs, {
        renderer: map.renderer,
        color: MODE_COLOURS[run.mode] ?? MODE_COLOURS.unknown,
        weight: stay ? 2 : 4,
        opacity: stay ? 0.5 : 0.9,
        dashArray: run.mode === "flight" ? "6 6" : undefined,
        className: `track track-${run.mode}`,
      }).addTo(group);
      if (run.entry >= 0) {
        line.on("click", () => setSelected(run.entry));
        const list = runLayers.current.get(run.entry) ?? [];
        list.push(line);
        runLayers.current.set(run.entry, list);
      }
    }
    data.day.entries.forEach((entry, index) => {
      if (entry.kind !== "stay" || entry.lat === undefined || entry.lon === undefined) return;
      L.circleMarker([entry.lat, entry.lon], {
        renderer: map.renderer,
        radius: entry.visit ? 7 : 4,
        color: "#fff",
        weight: 2,
        fillColor: entry.visit ? "#111827" : "#6b7280",
        fillOpacity: 0.9,
      })
        .bindTooltip(entry.title || "Stay")
        .on("click", () => setSelected(index))
        .addTo(group);
    });
    const stays = data.day.entries.filter((e) => e.lat !== undefined && e.lon !== undefined).map((e) => ({ latlngs: [[e.lat!, e.lon!] as [number, number]] }));
    fitTo(map.map, boundsOf([...data.runs, ...stays]));
  }, [data, mapReady]);

  // Where you were with friends: rings around your position, not part of the day's bounds.
  const togetherLayer = useRef<L.LayerGroup | null>(null);
  useEffect(() => {
    const map = mapRef.current;
    togetherLayer.current?.remove();
    togetherLayer.current = null;
    if (!map || !data || !together.data || together.data.length === 0) return;
    const group = L.layerGroup().addTo(map.map);
    togetherLayer.current = group;
    for (const { friend, encounter } of together.data) {
      L.circleMarker([encounter.lat, encounter.lon], { renderer: map.renderer, radius: 11, color: "#1d4ed8", weight: 3, fillOpacity: 0, className: "together-ring" })
        .bindTooltip(togetherLine(friend, encounter, data.day.date))
        .addTo(group);
    }
  }, [together.data, mapReady]);

  // Where the day's photos were taken (`map/photos.ts`).
  useEffect(() => {
    const map = mapRef.current;
    photoLayer.current?.remove();
    photoLayer.current = null;
    if (!map) return;
    photoLayer.current = addPhotoMarkers(map, photos.data ?? []);
  }, [photos.data, mapReady]);

  // The fixes the timeline left out, when asked for: red rings, not part of the day's bounds.
  useEffect(() => {
    const map = mapRef.current;
    flaggedLayer.current?.remove();
    flaggedLayer.current = null;
    if (!map || !showFlagged || !flagged.data) return;
    const group = L.layerGroup().addTo(map.map);
    flaggedLayer.current = group;
    for (const point of flagged.data) {
      L.circleMarker([point.lat, point.lon], { renderer: map.renderer, radius: 6, color: "#dc2626", weight: 2, fillOpacity: 0, className: "flagged-fix" })
        .bindTooltip(`${clockTime(point.time, data?.day.utc_offset_minutes)}: ${FLAG_LABELS[point.flag_reason ?? "user"]}`)
        .addTo(group);
    }
  }, [flagged.data, showFlagged, mapReady]);

  const [unflagError, setUnflagError] = useState<unknown>(undefined);
  const unflag = async (point: PointView) => {
    setUnflagError(undefined);
    try {
      await api("PUT", "/api/v1/points/flag", { device: point.device, time: point.time, flagged: false });
      reload();
    } catch (e) {
      setUnflagError(e);
    }
  };

  // Focus the selected entry.
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !data || selected === null) return;
    const entry = data.day.entries[selected];
    if (!entry) return;
    const lines = runLayers.current.get(selected) ?? [];
    for (const [index, list] of runLayers.current) for (const line of list) line.setStyle({ weight: index === selected ? 7 : data.day.entries[index]?.kind === "stay" ? 2 : 4 });
    const bounds = boundsOf(lines.map((l) => ({ latlngs: (l.getLatLngs() as L.LatLng[]).map((p) => [p.lat, p.lng] as [number, number]) })));
    if (bounds) fitTo(map.map, bounds, 17);
    else if (entry.lat !== undefined && entry.lon !== undefined) map.map.setView([entry.lat, entry.lon], 16);
    document.getElementById(`entry-${selected}`)?.scrollIntoView({ block: "nearest" });
  }, [selected, data]);

  const totals = useMemo(() => {
    if (!data) return null;
    let metres = 0;
    let moving = 0;
    for (const e of data.day.entries) {
      if (e.kind === "leg") {
        metres += e.distance_m ?? 0;
        moving += e.duration_s;
      }
    }
    return { metres, moving, places: data.day.entries.filter((e) => e.kind === "stay" && e.visit).length };
  }, [data]);

  return (
    <section class="timeline-page">
      <PageTitle
        actions={
          <div class="day-nav" role="group" aria-label="Day">
            <button type="button" onClick={() => go(addDays(date, -1))} aria-label="Previous day" title="Previous day (←)">
              ←
            </button>
            <label class="visually-hidden" for="day-picker">
              Day
            </label>
            <input id="day-picker" type="date" value={date} max="9999-12-31" onChange={(e) => isDate(e.currentTarget.value) && go(e.currentTarget.value)} />
            <button type="button" onClick={() => go(addDays(date, 1))} aria-label="Next day" title="Next day (→)">
              →
            </button>
            {date !== today && (
              <button type="button" onClick={() => go(today)}>
                Today
              </button>
            )}
          </div>
        }
      >
        {longDate(date)}
      </PageTitle>
      <div class="split">
        <div class="day-list" aria-busy={loading}>
          {loading && <Loading label="Loading the day…" />}
          {error !== undefined && <ErrorBox error={error} retry={reload} />}
          {data && totals && (
            <p class="day-summary" data-testid="day-summary">
              {data.day.device ? (
                <>
                  <strong>{formatDistance(totals.metres)}</strong> travelled · {formatDuration(totals.moving)} moving · {totals.places} {totals.places === 1 ? "place" : "places"}
                  <span class="muted"> · {data.day.devices.find((d) => d.name === data.day.device)?.label ?? `device ${data.day.device}`}</span>
                </>
              ) : (
                <span class="muted">Nothing was recorded on this day.</span>
              )}
            </p>
          )}
          {data && together.data && together.data.length > 0 && (
            <ul class="together-day" aria-label="Together with friends" data-testid="together-day">
              {together.data.map(({ friend, encounter }) => (
                <li key={`${friend}-${encounter.first}`}>{togetherLine(friend, encounter, data.day.date)}</li>
              ))}
            </ul>
          )}
          {data && data.day.device && (
            <div class="day-delete">
              <DeleteButton
                label="Delete this day"
                testId="delete-day"
                question={<>Delete every point recorded on {longDate(date)}, from every device? A re-import of the same files will not bring them back.</>}
                selection={{ from: data.day.from, to: data.day.to }}
                onDeleted={(outcome) => {
                  setDeleted(outcome);
                  reload();
                }}
              />
            </div>
          )}
          {deleted && <UndoToast outcome={deleted} onUndone={reload} onClose={() => setDeleted(null)} />}
          {data && data.day.devices.length > 1 && (
            <div class="toolbar device-switch" role="group" aria-label="Device">
              {data.day.devices.map((d) => (
                <button
                  type="button"
                  class={d.name === data.day.device ? "small active" : "small"}
                  aria-pressed={d.name === data.day.device}
                  title={`${formatDuration(d.tracked_s)} tracked`}
                  onClick={() => navigate(`${date === today ? "/" : `/day/${date}`}${qs({ device: d.name })}`)}
                >
                  {d.label ?? d.name}
                </button>
              ))}
            </div>
          )}
          {data && data.day.device && (
            <div class="flagged-fixes">
              <label>
                <input type="checkbox" checked={showFlagged} onChange={(e) => setShowFlagged(e.currentTarget.checked)} /> Show fixes left out (teleports)
              </label>
              {showFlagged && flagged.data && flagged.data.length === 0 && <span class="muted"> · none this day</span>}
              {showFlagged && flagged.data && flagged.data.length > 0 && (
                <ul aria-label="Fixes left out">
                  {flagged.data.map((point) => (
                    <li key={point.time}>
                      {clockTime(point.time, data.day.utc_offset_minutes)} · {FLAG_LABELS[point.flag_reason ?? "user"]} ·{" "}
                      <button type="button" class="small link" onClick={() => unflag(point)}>
                        Use this fix
                      </button>
                    </li>
                  ))}
                </ul>
              )}
              {flagged.error !== undefined && <ErrorBox error={flagged.error} />}
              {unflagError !== undefined && <ErrorBox error={unflagError} />}
            </div>
          )}
          {data && data.day.device && data.day.entries.length === 0 && <p class="muted">Points were recorded, but no stays or trips are known yet; the timeline catches up within seconds.</p>}
          {data && (
            <ol class="entries" aria-label="Stays and trips">
              {data.day.entries.map((entry, index) => (
                <EntryItem
                  key={`${entry.start}-${entry.kind}`}
                  index={index}
                  entry={entry}
                  day={data.day}
                  selected={selected === index}
                  onSelect={() => setSelected(index)}
                  onChanged={reload}
                  photos={placedPhotos?.byEntry.get(index) ?? []}
                />
              ))}
            </ol>
          )}
          {placedPhotos && placedPhotos.outside.length > 0 && (
            <div class="day-photos">
              <h3>{data?.day.entries.length ? "Other photos of the day" : "Photos of the day"}</h3>
              <PhotoStrip photos={placedPhotos.outside} label="Other photos of the day" />
            </div>
          )}
          {photos.error !== undefined && <ErrorBox error={photos.error} />}
          {toReview > 0 && (
            <p class="muted review-hint" data-testid="review-hint">
              {toReview === 1 ? "One photo of this day was" : `${toReview} photos of this day were`} placed from your history. <a href="/photos/review">Review photo positions</a>
            </p>
          )}
          {data && !data.day.device && <LastDayHint />}
        </div>
        <MapBox label="Map of the day's track" class="day-map" onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }} />
      </div>
    </section>
  );
}

function LastDayHint() {
  const { data } = useAsync(() => get<{ locations: PointView[] }>("/api/v1/locations/last"), []);
  const newest = data?.locations.map((l) => l.time).sort().pop();
  if (!newest) return null;
  const day = localDate(new Date(newest));
  return (
    <p>
      <a href={`/day/${day}`}>Go to the last recorded day ({longDate(day)})</a>
    </p>
  );
}

function EntryItem({ entry, index, day, selected, onSelect, onChanged, photos }: { entry: Entry; index: number; day: DayTimeline; selected: boolean; onSelect: () => void; onChanged: () => void; photos: PhotoView[] }) {
  const offset = entry.utc_offset_minutes ?? day.utc_offset_minutes;
  const time = timeRange(entry.start, entry.end, offset, day.date);
  const [editing, setEditing] = useState(false);
  const [name, setName] = useState(entry.place_name ?? "");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const saveName = async (event: Event) => {
    event.preventDefault();
    if (entry.place_id === undefined) return;
    setBusy(true);
    setError(undefined);
    try {
      await api("PATCH", `/api/v1/places/${entry.place_id}`, { name: name.trim() || null });
      setEditing(false);
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const saveMode = async (mode: Mode) => {
    setBusy(true);
    setError(undefined);
    try {
      await api("PUT", "/api/v1/timeline/legs/mode", { device: day.device, start: entry.start, mode });
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  if (entry.kind === "stay") {
    const title = entry.title || (entry.visit ? "Unnamed place" : "Short stop");
    return (
      <li id={`entry-${index}`} class={`entry stay ${selected ? "selected" : ""} ${entry.visit ? "visit" : ""}`} data-kind="stay">
        <button type="button" class="entry-main" onClick={onSelect} aria-pressed={selected}>
          <span class="entry-time">{time}</span>
          <span class="entry-title">
                        {title}
          </span>
          <span class="entry-meta">
            {formatDuration(entry.duration_s)}
            {entry.town && !title.includes(entry.town) && ` · ${entry.town}`}
            {entry.country && ` · ${entry.country}`}
            {entry.origin === "imported" && " · imported"}
            {entry.edited && " · edited"}
            {entry.ongoing && " · last seen here"}
          </span>
        </button>
        {entry.place_id !== undefined &&
          (editing ? (
            <form class="inline-edit" onSubmit={saveName}>
              <label class="visually-hidden" for={`place-name-${index}`}>
                Place name
              </label>
              <input id={`place-name-${index}`} value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={200} autoFocus />
              <button type="submit" class="small primary" disabled={busy}>
                Save
              </button>
              <button type="button" class="small" onClick={() => setEditing(false)}>
                Cancel
              </button>
            </form>
          ) : (
            <button type="button" class="small link rename" onClick={() => setEditing(true)} aria-label={`Rename ${title}`}>
              Rename
            </button>
          ))}
        <PhotoStrip photos={photos} label={`Photos at ${title}`} />
        <VisitEditor entry={entry} day={day} onChanged={onChanged} />
        {error !== undefined && <ErrorBox error={error} />}
      </li>
    );
  }
  const mode = entry.mode ?? "unknown";
  return (
    <li id={`entry-${index}`} class={`entry leg ${selected ? "selected" : ""}`} data-kind="leg" style={{ "--mode": MODE_COLOURS[mode] }}>
      <button type="button" class="entry-main" onClick={onSelect} aria-pressed={selected}>
        <span class="entry-time">{time}</span>
        <span class="entry-title">
          {MODE_LABELS[mode]} {entry.distance_m !== undefined && formatDistance(entry.distance_m)}
        </span>
        <span class="entry-meta">
          {formatDuration(entry.duration_s)}
          {entry.mean_speed_mps !== undefined && ` · ${formatSpeed(entry.mean_speed_mps)} avg`}
          {entry.mode_corrected && " · corrected"}
          {entry.origin === "imported" && " · imported"}
        </span>
      </button>
      <PhotoStrip photos={photos} label={`Photos on the way (${MODE_LABELS[mode]})`} />
      {entry.origin === "detected" && day.device && (
        <label class="mode-edit">
          <span class="visually-hidden">Transport mode</span>
          <select value={mode} disabled={busy} onChange={(e) => saveMode(e.currentTarget.value as Mode)} aria-label={`Transport mode of the trip at ${clockTime(entry.start, offset)}`}>
            {MODES.map((m) => (
              <option value={m}>{MODE_LABELS[m]}</option>
            ))}
          </select>
        </label>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </li>
  );
}

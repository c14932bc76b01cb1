// Trips: the legs and short stops between two visits, as the server groups
// them. The list covers up to a year at a time; the detail page draws the
// route from the raw points, with its stats and speed and elevation charts,
// and can share the trip as an expiring public link.

import L from "leaflet";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, get, qs, type PhotoPage, type Place, type PointView, type Share, type Trip } from "../api";
import { addDays, clockTime, dateTime, formatDistance, formatDuration, formatSpeed, isDate, localDate, MODE_COLOURS, MODE_LABELS } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { addPhotoMarkers } from "../map/photos";
import { navigate, useLocation } from "../router";
import { tripTitle } from "../trip-title";
import { boundsOf, colourByEntries, speedSeries } from "../track";
import { Chart } from "../components/Chart";
import { MapBox } from "../components/MapBox";
import { PhotoStrip } from "../components/Photos";
import { CopyButton, ErrorBox, Loading, PageTitle, Pager, pageOf, useAsync } from "../components/ui";

function placeNames(places: Place[] | undefined): Map<number, string> {
  const names = new Map<number, string>();
  for (const place of places ?? []) names.set(place.id, place.title || `Place ${place.id}`);
  return names;
}

export function tripHref(trip: Trip): string {
  return `/trips/${encodeURIComponent(trip.device)}/${encodeURIComponent(trip.start)}`;
}

/**
 * Where the default range ends: the day after the newest recorded point of
 * a device that has trips in the 90 days before it, in the browser's zone
 * (tomorrow when nothing is recorded). Devices are tried newest first, so
 * an imported history opens on its last 90 days even after a phone that has
 * only just started sending joined it.
 */
async function defaultEnd(): Promise<string> {
  const { locations } = await get<{ locations: PointView[] }>("/api/v1/locations/last");
  const ends = [...new Set(locations.map((l) => addDays(localDate(new Date(l.time)), 1)))].sort().reverse();
  for (const end of ends) {
    const trips = await get<Trip[]>(`/api/v1/timeline/trips${qs({ from: `${addDays(end, -90)}T00:00:00Z`, to: `${end}T00:00:00Z` })}`);
    if (trips.length > 0) return end;
  }
  return ends[0] ?? addDays(localDate(new Date()), 1);
}

export function Trips() {
  const { search } = useLocation();
  const asked = isDate(search.get("to") ?? "") ? search.get("to")! : undefined;
  const end = useAsync(() => (asked ? Promise.resolve(asked) : defaultEnd()), [asked]);
  if (end.error !== undefined) return <ErrorBox error={end.error} retry={end.reload} />;
  if (!end.data) return <Loading label="Loading trips…" />;
  const to = end.data;
  const from = isDate(search.get("from") ?? "") ? search.get("from")! : addDays(to, -90);
  return <TripList key={`${from}/${to}`} from={from} to={to} />;
}

function TripList({ from, to }: { from: string; to: string }) {
  const [fromInput, setFromInput] = useState(from);
  const [toInput, setToInput] = useState(to);
  const [mode, setMode] = useState("");
  const [filter, setFilter] = useState("");
  const [page, setPage] = useState(0);
  const trips = useAsync(() => get<Trip[]>(`/api/v1/timeline/trips${qs({ from: `${from}T00:00:00Z`, to: `${to}T00:00:00Z` })}`), [from, to]);
  const places = useAsync(() => get<Place[]>("/api/v1/places"), []);
  const names = useMemo(() => placeNames(places.data), [places.data]);
  const sorted = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    return [...(trips.data ?? [])].reverse().filter((trip) => (!mode || trip.main_mode === mode) && (!needle || tripTitle(trip, names).toLowerCase().includes(needle)));
  }, [trips.data, mode, filter, names]);
  useEffect(() => setPage(0), [mode, filter]);
  const visible = pageOf(sorted, page);
  return (
    <section>
      <PageTitle>Trips</PageTitle>
      <form
        class="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          if (isDate(fromInput) && isDate(toInput) && fromInput < toInput) navigate(`/trips${qs({ from: fromInput, to: toInput })}`);
        }}
      >
        <label>
          From <input type="date" value={fromInput} onInput={(e) => setFromInput(e.currentTarget.value)} />
        </label>
        <label>
          To <input type="date" value={toInput} onInput={(e) => setToInput(e.currentTarget.value)} />
        </label>
        <button type="submit" class="small primary">
          Show
        </button>
        <span class="muted">At most 366 days at a time.</span>
      </form>
      <div class="toolbar">
        <label>
          Mode{" "}
          <select value={mode} onChange={(e) => setMode(e.currentTarget.value)}>
            <option value="">All</option>
            {Object.entries(MODE_LABELS).map(([value, text]) => (
              <option value={value}>{text}</option>
            ))}
          </select>
        </label>
        <label>
          Search <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="place name" />
        </label>
        {trips.data && trips.data.length > 0 && (
          <span class="muted" data-testid="trips-count">
            {sorted.length === trips.data.length ? `${sorted.length.toLocaleString("en")} trips` : `${sorted.length.toLocaleString("en")} of ${trips.data.length.toLocaleString("en")} trips`}
          </span>
        )}
      </div>
      {trips.loading && <Loading label="Loading trips…" />}
      {trips.error !== undefined && <ErrorBox error={trips.error} retry={trips.reload} />}
      {trips.data && trips.data.length === 0 && <p class="muted">No trips in this range.</p>}
      {sorted.length > 0 && (
        <table class="data trips stack">
          <caption class="visually-hidden">Trips, newest first</caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">From → to</th>
              <th scope="col">Mode</th>
              <th scope="col" class="num">Distance</th>
              <th scope="col" class="num">Duration</th>
              <th scope="col" class="num">Avg speed</th>
            </tr>
          </thead>
          <tbody>
            {visible.rows.map((trip) => (
              <tr>
                <td class="lead">
                  <a href={tripHref(trip)}>{dateTime(trip.start, trip.utc_offset_minutes)}</a>
                </td>
                <td data-label="From → to">{tripTitle(trip, names)}</td>
                <td data-label="Mode">
                  <span class="mode-chip" style={{ "--mode": MODE_COLOURS[trip.main_mode] }}>
                    {MODE_LABELS[trip.main_mode]}
                  </span>
                </td>
                <td class="num" data-label="Distance">
                  {formatDistance(trip.distance_m)}
                </td>
                <td class="num" data-label="Duration">
                  {formatDuration(trip.duration_s)}
                </td>
                <td class="num" data-label="Avg speed">
                  {formatSpeed(trip.mean_speed_mps)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager page={visible.page} pages={visible.pages} total={sorted.length} onPage={setPage} label="Pages of trips" />
    </section>
  );
}

async function loadPoints(from: string, to: string, device: string): Promise<PointView[]> {
  const points: PointView[] = [];
  let cursor: string | undefined;
  // A trip rarely has more than a few thousand points; stop at 100,000. Teleports stay out,
  // as they are out of the trip's distance and speeds.
  for (let page = 0; page < 10; page += 1) {
    const answer = await get<{ points: PointView[]; next_cursor: string | null }>(`/api/v1/points${qs({ from, to, device, limit: 10000, cursor, outliers: "exclude" })}`);
    points.push(...answer.points);
    if (!answer.next_cursor) break;
    cursor = answer.next_cursor;
  }
  return points;
}

async function loadTrip(device: string, start: string): Promise<{ trip: Trip; points: PointView[] }> {
  const t = Date.parse(start);
  if (Number.isNaN(t)) throw new Error(`"${start}" is not a time`);
  const from = new Date(t - 86_400_000).toISOString();
  const to = new Date(t + 3 * 86_400_000).toISOString();
  const trips = await get<Trip[]>(`/api/v1/timeline/trips${qs({ from, to, device })}`);
  const trip = trips.find((candidate) => Date.parse(candidate.start) === t);
  if (!trip) throw new Error("This trip is not in the timeline (any more): it may have been recomputed.");
  const points = await loadPoints(trip.start, trip.end, device);
  return { trip, points };
}

export function TripDetail({ device, start }: { device: string; start: string }) {
  const { data, error, loading, reload } = useAsync(() => loadTrip(device, start), [device, start]);
  const places = useAsync(() => get<Place[]>("/api/v1/places"), []);
  const names = useMemo(() => placeNames(places.data), [places.data]);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  // The trip's gallery: the photos of your library taken between its start and end.
  const photos = useAsync(() => (data ? get<PhotoPage>(`/api/v1/photos${qs({ from: data.trip.start, to: data.trip.end })}`) : Promise.resolve(null)), [data]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !photos.data) return;
    const layer = addPhotoMarkers(map, photos.data.photos);
    return () => {
      layer?.remove();
    };
  }, [photos.data, mapReady]);

  const series = useMemo(() => {
    if (!data) return null;
    const latlngs = data.points.map((p) => [p.lat, p.lon] as [number, number]);
    const times = data.points.map((p) => Date.parse(p.time) / 1000);
    const speed = speedSeries(latlngs, times);
    const withAltitude = data.points.filter((p) => p.altitude !== null && p.altitude !== undefined);
    return {
      latlngs,
      times,
      speed,
      elevation: withAltitude.length > 1 ? { t: withAltitude.map((p) => Date.parse(p.time) / 1000), m: withAltitude.map((p) => p.altitude as number) } : null,
    };
  }, [data]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !data || !series) return;
    const group = L.layerGroup().addTo(map.map);
    const runs = colourByEntries([{ device: 0, latlngs: series.latlngs, times: series.times }], data.trip.entries);
    for (const run of runs) {
      if (run.latlngs.length < 2) continue;
      L.polyline(run.latlngs, { renderer: map.renderer, color: MODE_COLOURS[run.mode], weight: run.mode === "stay" ? 2 : 4, className: "track" }).addTo(group);
    }
    const first = series.latlngs[0];
    const last = series.latlngs[series.latlngs.length - 1];
    if (first) L.circleMarker(first, { renderer: map.renderer, radius: 6, color: "#fff", weight: 2, fillColor: "#16a34a", fillOpacity: 1 }).bindTooltip("Start").addTo(group);
    if (last) L.circleMarker(last, { renderer: map.renderer, radius: 6, color: "#fff", weight: 2, fillColor: "#dc2626", fillOpacity: 1 }).bindTooltip("End").addTo(group);
    fitTo(map.map, boundsOf([{ latlngs: series.latlngs }]));
    return () => {
      group.remove();
    };
  }, [data, series, mapReady]);

  const trip = data?.trip;
  const title = trip ? tripTitle(trip, names) : "Trip";
  return (
    <section>
      <p>
        <a href="/trips">← All trips</a>
      </p>
      <PageTitle actions={trip && <ShareTrip trip={trip} />}>{title}</PageTitle>
      {loading && <Loading label="Loading the trip…" />}
      {error !== undefined && <ErrorBox error={error} retry={reload} />}
      {trip && (
        <dl class="stats-grid">
          <div>
            <dt>When</dt>
            <dd>
              {dateTime(trip.start, trip.utc_offset_minutes)} – {clockTime(trip.end, trip.end_utc_offset_minutes ?? trip.utc_offset_minutes ?? -new Date(trip.end).getTimezoneOffset())}
            </dd>
          </div>
          <div>
            <dt>Distance</dt>
            <dd>{formatDistance(trip.distance_m)}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd>{formatDuration(trip.duration_s)}</dd>
          </div>
          <div>
            <dt>Average speed</dt>
            <dd>{formatSpeed(trip.mean_speed_mps)}</dd>
          </div>
          <div>
            <dt>Top speed</dt>
            <dd>{formatSpeed(trip.max_speed_mps)}</dd>
          </div>
          <div>
            <dt>Mode</dt>
            <dd>
              {MODE_LABELS[trip.main_mode]}
            </dd>
          </div>
          <div>
            <dt>Points</dt>
            <dd>{data?.points.length.toLocaleString("en")}</dd>
          </div>
        </dl>
      )}
      <MapBox
        label="Route of the trip"
        class="trip-map"
        onReady={(m) => {
          mapRef.current = m;
          setMapReady(true);
        }}
      />
      {photos.data && photos.data.photos.length > 0 && (
        <>
          <h2>Photos</h2>
          <PhotoStrip photos={photos.data.photos} label="Photos of the trip" gallery />
          {photos.data.truncated && <p class="muted">Only the first {photos.data.photos.length.toLocaleString("en")} photos of the trip are shown.</p>}
        </>
      )}
      {photos.error !== undefined && <ErrorBox error={photos.error} retry={photos.reload} />}
      {series && series.speed.t.length > 1 && <h2>Speed</h2>}
      {series && series.speed.t.length > 1 && <Chart title="Speed over time" x={series.speed.t} series={[{ label: "Speed", unit: "km/h", values: series.speed.kmh, colour: "#2563eb" }]} />}
      {series?.elevation && <h2>Elevation</h2>}
      {series?.elevation && <Chart title="Elevation over time" x={series.elevation.t} series={[{ label: "Elevation", unit: "m", values: series.elevation.m, colour: "#16a34a" }]} />}
      {trip && (
        <>
          <h2>Legs and stops</h2>
          <ol class="entries compact">
            {trip.entries.map((entry) => (
              <li class={`entry ${entry.kind}`}>
                <span class="entry-time">
                  {clockTime(entry.start, entry.utc_offset_minutes ?? 0)} – {clockTime(entry.end, entry.utc_offset_minutes ?? 0)}
                </span>{" "}
                {entry.kind === "leg" ? `${MODE_LABELS[entry.mode ?? "unknown"]} ${formatDistance(entry.distance_m ?? 0)}` : `${entry.title || "Stop"}`} · {formatDuration(entry.duration_s)}
              </li>
            ))}
          </ol>
        </>
      )}
    </section>
  );
}

function ShareTrip({ trip }: { trip: Trip }) {
  const [share, setShare] = useState<Share | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [hidePlaces, setHidePlaces] = useState(true);
  const create = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setShare(await api<Share>("POST", "/api/v1/shares", { kind: "trip", from: trip.start, to: trip.end, device: trip.device, label: `Trip on ${trip.start.slice(0, 10)}`, expires_in_s: 7 * 86400, hide_places: hidePlaces }));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (share) {
    const url = new URL(share.url ?? "", location.origin).toString();
    return (
      <span class="share-result">
        <a href={share.url ?? "#"} target="_blank" rel="noopener">
          {url}
        </a>{" "}
        <CopyButton text={url} />
      </span>
    );
  }
  return (
    <span>
      <button type="button" class="small" onClick={create} disabled={busy}>
        Share for 7 days
      </button>{" "}
      <label class="inline small">
        <input type="checkbox" checked={hidePlaces} onChange={(e) => setHidePlaces(e.currentTarget.checked)} /> hide place names
      </label>
      {error !== undefined && <ErrorBox error={error} />}
    </span>
  );
}

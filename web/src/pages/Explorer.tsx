// The map explorer: any range from an hour to all time. The server picks
// the level of detail that fits the point budget (/api/v1/map/overview), so a
// decade is ~30,000 points and one JSON answer; the tracks of each device are
// drawn as one multi-line on the canvas. Zoomed in beyond what that level is
// exact for, the view itself is asked for (`bbox`), and its finer lines are
// drawn over the faded overview. Heatmap and fog-of-war are tile
// layers over the same range, and live positions (own devices and friends
// who share with you) arrive over server-sent events.

import L from "leaflet";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, qs, type LivePosition, type MapOverview, type Me, type PointView } from "../api";
import { ago, formatBattery, formatCount, formatSpeed } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { createCellLayer } from "../map/cells";
import { navigate, useLocation } from "../router";
import { boundsOf, decodeOverview, needsDetail } from "../track";
import { MapBox } from "../components/MapBox";
import { ErrorBox, Loading, PageTitle } from "../components/ui";
import { AreaDelete } from "../components/AreaDelete";

const PRESETS: [string, string, number][] = [
  ["1h", "Last hour", 3600],
  ["24h", "Last 24 hours", 86400],
  ["7d", "7 days", 7 * 86400],
  ["30d", "30 days", 30 * 86400],
  ["1y", "1 year", 365 * 86400],
  ["10y", "10 years", 3653 * 86400],
  // Back to 1990: older than any phone or GPS logger history people import.
  ["all", "All time", Infinity],
];

/** The earliest instant "All time" covers. */
const ALL_TIME_FROM = Date.UTC(1990, 0, 1);

const DEVICE_COLOURS = ["#e63946", "#1d4ed8", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2"];

function toInput(date: Date): string {
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}

export function rangeFor(search: URLSearchParams, now = new Date()): { from: Date; to: Date; preset: string | null } {
  const preset = search.get("range");
  const from = search.get("from");
  const to = search.get("to");
  if (from && to && !Number.isNaN(Date.parse(from)) && !Number.isNaN(Date.parse(to)) && Date.parse(from) < Date.parse(to)) {
    return { from: new Date(from), to: new Date(to), preset: null };
  }
  const match = PRESETS.find(([key]) => key === preset) ?? PRESETS[3];
  const start = Number.isFinite(match[2]) ? now.getTime() - match[2] * 1000 : ALL_TIME_FROM;
  return { from: new Date(start), to: now, preset: match[0] };
}

interface LiveEntry extends LivePosition {
  key: string;
}

/** The overview's lines, one multi-line per device, on the map's canvas. */
function trackLines(map: PoloMap, data: MapOverview, opacity = 0.8): { group: L.LayerGroup; lines: ReturnType<typeof decodeOverview> } {
  const group = L.layerGroup();
  const lines = decodeOverview(data);
  const byDevice = new Map<number, [number, number][][]>();
  for (const line of lines) {
    const list = byDevice.get(line.device) ?? [];
    list.push(line.latlngs);
    byDevice.set(line.device, list);
  }
  for (const [device, list] of byDevice) {
    L.polyline(list, {
      renderer: map.renderer,
      color: DEVICE_COLOURS[device % DEVICE_COLOURS.length],
      weight: 2.5,
      opacity,
      interactive: false,
      smoothFactor: 3,
      lineJoin: "bevel",
      lineCap: "butt",
      className: "track",
    }).addTo(group);
  }
  return { group, lines };
}

/** A Leaflet view as the overview's `bbox` (west,south,east,north), longitudes kept as the map has them. */
function bboxOf(bounds: L.LatLngBounds): string {
  const round = (v: number) => v.toFixed(5);
  return [bounds.getWest(), Math.max(-90, bounds.getSouth()), bounds.getEast(), Math.min(90, bounds.getNorth())].map(round).join(",");
}

export function Explorer({ me }: { me: Me }) {
  const { search } = useLocation();
  const [range] = useState(() => rangeFor(search));
  const current = rangeFor(search, range.to);
  const [overview, setOverview] = useState<MapOverview | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<unknown>(undefined);
  const [heatmap, setHeatmap] = useState(search.get("layer") === "heatmap");
  const [fog, setFog] = useState(search.get("layer") === "fog");
  const [tracks, setTracks] = useState(true);
  const [live, setLive] = useState<Record<string, LiveEntry>>({});
  const [liveState, setLiveState] = useState<"connecting" | "open" | "closed">("connecting");
  const [, setTick] = useState(0);
  const mapRef = useRef<PoloMap | null>(null);
  const trackLayer = useRef<L.LayerGroup | null>(null);
  const detailLayer = useRef<L.LayerGroup | null>(null);
  const cellLayers = useRef<{ heatmap?: L.GridLayer; fog?: L.GridLayer }>({});
  const liveMarkers = useRef<Map<string, L.CircleMarker>>(new Map());
  const [mapReady, setMapReady] = useState(false);
  // Bumped after a delete: the tracks and cells are fetched again.
  const [version, setVersion] = useState(0);
  const [fromInput, setFromInput] = useState(toInput(current.from));
  const [toInputValue, setToInputValue] = useState(toInput(current.to));

  const fromIso = current.from.toISOString();
  const toIso = current.to.toISOString();
  useEffect(() => {
    setFromInput(toInput(new Date(fromIso)));
    setToInputValue(toInput(new Date(toIso)));
  }, [fromIso, toIso]);

  // Fetch and draw the overview of the range.
  useEffect(() => {
    if (!mapReady) return;
    let live = true;
    const started = performance.now();
    setLoading(true);
    setError(undefined);
    get<MapOverview>(`/api/v1/map/overview${qs({ from: fromIso, to: toIso })}`)
      .then((data) => {
        if (!live) return;
        const map = mapRef.current!;
        trackLayer.current?.remove();
        detailLayer.current?.remove();
        detailLayer.current = null;
        const { group, lines } = trackLines(map, data);
        trackLayer.current = group;
        if (tracks) group.addTo(map.map);
        fitTo(map.map, boundsOf(lines), 16);
        setOverview(data);
        setLoading(false);
        // Measured by the front-end performance check (polo-bench web): Leaflet
        // draws the canvas in the next animation frame; the one after that
        // runs once it was painted.
        requestAnimationFrame(() =>
          requestAnimationFrame(() => {
            const element = map.map.getContainer();
            element.dataset.rendered = String(Math.round(performance.now() - started));
            element.dataset.points = String(data.points);
            element.dataset.level = String(data.level);
            performance.mark("polo:map-rendered", { detail: { points: data.points, segments: data.segments.length } });
          }),
        );
      })
      .catch((e) => {
        if (!live) return;
        setError(e);
        setLoading(false);
      });
    return () => {
      live = false;
    };
  }, [mapReady, fromIso, toIso, version]);

  useEffect(() => {
    const map = mapRef.current;
    const layer = trackLayer.current;
    if (!map || !layer) return;
    if (tracks) layer.addTo(map.map);
    else layer.remove();
  }, [tracks, overview]);

  // Zoomed in beyond the overview's level: the view's own, finer lines.
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !overview || !tracks) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let asked = 0;
    const fade = (faded: boolean) => trackLayer.current?.eachLayer((l) => (l as L.Polyline).setStyle({ opacity: faded ? 0.3 : 0.8 }));
    const refine = () => {
      const ask = ++asked;
      if (!needsDetail(overview, map.map.getZoom())) {
        detailLayer.current?.remove();
        detailLayer.current = null;
        fade(false);
        return;
      }
      get<MapOverview>(`/api/v1/map/overview${qs({ from: fromIso, to: toIso, bbox: bboxOf(map.map.getBounds()) })}`)
        .then((data) => {
          if (ask !== asked) return;
          detailLayer.current?.remove();
          const { group } = trackLines(map, data, 0.9);
          detailLayer.current = group.addTo(map.map);
          fade(true);
          const element = map.map.getContainer();
          element.dataset.detailLevel = String(data.level);
          element.dataset.detailPoints = String(data.points);
        })
        .catch(() => undefined);
    };
    const schedule = () => {
      clearTimeout(timer);
      timer = setTimeout(refine, 300);
    };
    map.map.on("moveend", schedule);
    schedule();
    return () => {
      clearTimeout(timer);
      asked += 1;
      map.map.off("moveend", schedule);
      detailLayer.current?.remove();
      detailLayer.current = null;
      fade(false);
    };
  }, [overview, tracks, fromIso, toIso]);

  // Heatmap and fog layers follow the range.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    const cellRange = { from: fromIso, to: toIso };
    for (const [kind, on] of [
      ["heatmap", heatmap],
      ["fog", fog],
    ] as const) {
      cellLayers.current[kind]?.remove();
      cellLayers.current[kind] = undefined;
      if (on) cellLayers.current[kind] = createCellLayer(kind, cellRange).addTo(map.map);
    }
  }, [heatmap, fog, fromIso, toIso, mapReady, version]);

  // Live positions: the newest point of each own device, then SSE updates.
  useEffect(() => {
    if (!mapReady) return;
    let closed = false;
    get<{ locations: PointView[] }>("/api/v1/locations/last")
      .then((data) => {
        if (closed) return;
        setLive((previous) => {
          const next = { ...previous };
          for (const p of data.locations) {
            const key = `${me.user.name}/${p.device}`;
            if (!next[key]) next[key] = { key, user: me.user.name, device: p.device, lat: p.lat, lon: p.lon, time: p.time };
          }
          return next;
        });
      })
      .catch(() => undefined);
    const source = new EventSource("/api/v1/live");
    source.onopen = () => setLiveState("open");
    source.onerror = () => setLiveState(source.readyState === EventSource.CLOSED ? "closed" : "connecting");
    source.addEventListener("position", (event) => {
      const position = JSON.parse((event as MessageEvent<string>).data) as LivePosition;
      const key = `${position.user ?? me.user.name}/${position.device}`;
      setLive((previous) => ({ ...previous, [key]: { ...position, key } }));
    });
    const timer = setInterval(() => setTick((n) => n + 1), 30_000);
    return () => {
      closed = true;
      source.close();
      clearInterval(timer);
    };
  }, [mapReady]);

  // Keep one marker per live device.
  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    for (const entry of Object.values(live)) {
      const own = entry.user === undefined || entry.user === me.user.name;
      let marker = liveMarkers.current.get(entry.key);
      if (!marker) {
        marker = L.circleMarker([entry.lat, entry.lon], {
          renderer: map.renderer,
          radius: 8,
          color: "#fff",
          weight: 3,
          fillColor: own ? "#2563eb" : "#f59e0b",
          fillOpacity: 1,
          className: "live-marker",
        }).addTo(map.map);
        liveMarkers.current.set(entry.key, marker);
      } else {
        marker.setLatLng([entry.lat, entry.lon]);
      }
      marker.bindTooltip(`${own ? entry.device : `${entry.user} · ${entry.device}`} · ${ago(entry.time)}`);
    }
  }, [live]);

  const choose = (params: Record<string, string>) => navigate(`/map${qs(params)}`, true);

  return (
    <section class="explorer-page">
      <PageTitle>Map</PageTitle>
      <form
        class="toolbar"
        aria-label="Range and layers"
        onSubmit={(e) => {
          e.preventDefault();
          const from = new Date(fromInput);
          const to = new Date(toInputValue);
          if (!Number.isNaN(from.getTime()) && !Number.isNaN(to.getTime()) && from < to) choose({ from: from.toISOString(), to: to.toISOString() });
        }}
      >
        <div class="presets" role="group" aria-label="Range presets">
          {PRESETS.map(([key, label]) => (
            <button type="button" class={current.preset === key ? "small active" : "small"} aria-pressed={current.preset === key} onClick={() => choose({ range: key })}>
              {label}
            </button>
          ))}
        </div>
        <label>
          From <input type="datetime-local" value={fromInput} onInput={(e) => setFromInput(e.currentTarget.value)} />
        </label>
        <label>
          To <input type="datetime-local" value={toInputValue} onInput={(e) => setToInputValue(e.currentTarget.value)} />
        </label>
        <button type="submit" class="small primary">
          Show
        </button>
        <div class="layers" role="group" aria-label="Layers">
          <label>
            <input type="checkbox" checked={tracks} onChange={(e) => setTracks(e.currentTarget.checked)} /> Tracks
          </label>
          <label>
            <input type="checkbox" checked={heatmap} onChange={(e) => setHeatmap(e.currentTarget.checked)} /> Heatmap
          </label>
          <label>
            <input type="checkbox" checked={fog} onChange={(e) => setFog(e.currentTarget.checked)} /> Fog of war
          </label>
        </div>
      </form>
      <div class="explorer">
        <MapBox
          label="Map of the chosen range"
          class="explorer-map"
          onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }}
        />
        <aside class="map-side" aria-label="Map details">
          {loading && <Loading label="Loading tracks…" />}
          {error !== undefined && <ErrorBox error={error} />}
          {overview && !loading && (
            <p class="muted" data-testid="overview-info">
              {formatCount(overview.points)} {overview.points === 1 ? "point" : "points"} drawn
              {overview.thinned || overview.truncated ? " (simplified to stay fast: zoom in for finer detail)" : ""}.
              {overview.devices.length > 0 && ` Devices: ${overview.devices.join(", ")}.`}
            </p>
          )}
          <AreaDelete map={mapReady ? mapRef.current : null} from={fromIso} to={toIso} onDeleted={() => setVersion((n) => n + 1)} />
          <h2>Live</h2>
          <p class="muted" aria-live="polite">
            {liveState === "open" ? "Connected: positions update as they arrive." : liveState === "connecting" ? "Connecting…" : "Disconnected."}
          </p>
          <ul class="live-list">
            {Object.values(live)
              .sort((a, b) => a.key.localeCompare(b.key))
              .map((entry) => (
                <li data-testid={`live-${entry.device}`} data-lat={entry.lat} data-lon={entry.lon}>
                  <button type="button" class="link" onClick={() => mapRef.current?.map.setView([entry.lat, entry.lon], 15)}>
                    {entry.user && entry.user !== me.user.name ? `${entry.user} · ` : ""}
                    {entry.device}
                  </button>
                  <span class="muted">
                    {" "}
                    {entry.lat.toFixed(5)}, {entry.lon.toFixed(5)} · {ago(entry.time)}
                    {entry.battery !== undefined && entry.battery !== null && ` · battery ${formatBattery(entry.battery)}`}
                    {entry.speed !== undefined && entry.speed !== null && ` · ${formatSpeed(entry.speed)}`}
                  </span>
                </li>
              ))}
          </ul>
        </aside>
      </div>
    </section>
  );
}

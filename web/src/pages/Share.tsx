// The public share page, /s/<token>: no account, no session. It shows only
// what the link shares, through the public share routes: the track and the
// stays and trips of a trip or range, or the live position of a live share.

import L from "leaflet";
import { useEffect, useRef, useState } from "preact/hooks";
import { get, type Entry, type InstanceConfig, type LivePosition, type PublicShare } from "../api";
import { ago, clockTime, dateTime, formatDistance, formatDuration, MODE_COLOURS, MODE_LABELS } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { boundsOf } from "../track";
import { MapBox } from "../components/MapBox";
import { ErrorBox, Loading, useAsync } from "../components/ui";

interface DeviceEntries {
  device: string;
  entries: Entry[];
}

type LineFeature = GeoJSON.Feature<GeoJSON.LineString | GeoJSON.MultiLineString, { mode?: string } | null>;

export function SharePage({ token, config }: { token: string; config: InstanceConfig | null }) {
  const base = `/api/v1/public/shares/${encodeURIComponent(token)}`;
  const share = useAsync(() => get<PublicShare>(base), [token]);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  const [entries, setEntries] = useState<DeviceEntries[] | null>(null);
  const [live, setLive] = useState<LivePosition | null>(null);
  const [trackError, setTrackError] = useState<unknown>(undefined);
  const marker = useRef<L.CircleMarker | null>(null);

  useEffect(() => {
    document.title = share.data?.label ? `${share.data.label} · shared by ${share.data.owner}` : "Shared location · polo";
  }, [share.data]);

  // Track and timeline of a trip or range.
  useEffect(() => {
    const map = mapRef.current;
    const info = share.data;
    if (!map || !info || info.kind === "live") return;
    let layer: L.GeoJSON | null = null;
    get<GeoJSON.FeatureCollection | GeoJSON.Feature>(`${base}/track`)
      .then((geojson) => {
        layer = L.geoJSON(geojson as GeoJSON.GeoJsonObject, {
          style: (f) => {
            const mode = (f as LineFeature | undefined)?.properties?.mode;
            return { color: (mode && MODE_COLOURS[mode]) || "#e63946", weight: 4, opacity: 0.9 };
          },
          pointToLayer: (_f, latlng) => L.circleMarker(latlng, { renderer: map.renderer, radius: 3 }),
          renderer: map.renderer,
        } as L.GeoJSONOptions).addTo(map.map);
        const b = layer.getBounds();
        if (b.isValid()) map.map.fitBounds(b, { padding: [24, 24], maxZoom: 16 });
      })
      .catch(setTrackError);
    get<DeviceEntries[]>(`${base}/timeline`)
      .then(setEntries)
      .catch(() => setEntries([]));
    return () => {
      layer?.remove();
    };
  }, [share.data, mapReady]);

  // Live: the position stream.
  useEffect(() => {
    const info = share.data;
    if (!mapReady || !info || !(info.kind === "live" || info.live)) return;
    const source = new EventSource(`${base}/live`);
    source.addEventListener("position", (event) => setLive(JSON.parse((event as MessageEvent<string>).data) as LivePosition));
    return () => source.close();
  }, [share.data, mapReady]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !live) return;
    if (!marker.current) {
      marker.current = L.circleMarker([live.lat, live.lon], { renderer: map.renderer, radius: 9, color: "#fff", weight: 3, fillColor: "#2563eb", fillOpacity: 1, className: "live-marker" }).addTo(map.map);
      fitTo(map.map, boundsOf([{ latlngs: [[live.lat, live.lon]] }]), 15);
    } else {
      marker.current.setLatLng([live.lat, live.lon]);
    }
  }, [live]);

  const info = share.data;
  return (
    <div class="shell public">
      <header class="topbar">
        <span class="brand">{config?.instance_name || "polo"}</span>
        <span class="muted">Shared location</span>
      </header>
      <main id="main" class="share-page">
        {share.loading && <Loading label="Opening the shared link…" />}
        {share.error !== undefined && (
          <div class="card">
            <h1>This link does not work</h1>
            <ErrorBox error={share.error} />
            <p class="muted">It may have expired or been revoked by its owner.</p>
          </div>
        )}
        {info && (
          <>
            <div class="page-title">
              <h1 data-testid="share-title">{info.label || (info.kind === "live" ? `${info.owner}'s live location` : `${info.owner}'s ${info.kind}`)}</h1>
            </div>
            <p class="muted">
              Shared by <strong>{info.owner}</strong>
              {info.from && ` · ${dateTime(info.from)} – ${dateTime(info.to)}`}
              {info.expires ? ` · link expires ${dateTime(info.expires)}` : ""}
            </p>
            {info.kind === "live" && (
              <p aria-live="polite" data-testid="share-live">
                {live ? `Last position ${ago(live.time)} (${live.lat.toFixed(5)}, ${live.lon.toFixed(5)})` : "Waiting for the next position…"}
              </p>
            )}
            {trackError !== undefined && <ErrorBox error={trackError} />}
          </>
        )}
        <div class="split share-split">
          <MapBox
            label="Map of what is shared"
            class="share-map"
            onReady={(m) => {
              mapRef.current = m;
              setMapReady(true);
            }}
          />
          {entries && entries.some((d) => d.entries.length > 0) && (
            <ol class="entries compact" aria-label="Stays and trips">
              {entries.flatMap((d) =>
                d.entries.map((entry) => (
                  <li class={`entry ${entry.kind}`} data-kind={entry.kind}>
                    <span class="entry-time">
                      {clockTime(entry.start, entry.utc_offset_minutes ?? 0)} – {clockTime(entry.end, entry.utc_offset_minutes ?? 0)}
                    </span>{" "}
                    {entry.kind === "leg"
                      ? `${MODE_LABELS[entry.mode ?? "unknown"]} ${formatDistance(entry.distance_m ?? 0)}`
                      : `${entry.title || "Stop"}`}{" "}
                    · {formatDuration(entry.duration_s)}
                  </li>
                )),
              )}
            </ol>
          )}
        </div>
      </main>
    </div>
  );
}

// Zones: the places polo watches for you. Draw a circle (centre, then edge)
// or a polygon (corner by corner) on the map, name it, tune when it fires;
// below, what happened (the event log) and where it was sent (each
// webhook's delivery log). Zones from the OwnTracks app appear here too.

import L from "leaflet";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, get } from "../api";
import { dateTime } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { MapBox } from "../components/MapBox";
import { ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import {
  addPoint,
  DEFAULT_RULES,
  describeDelivery,
  describeEvent,
  draftOf,
  fieldsOf,
  newestFirst,
  rulesOf,
  shapeOf,
  type Delivery,
  type Draft,
  type LatLon,
  type Rules,
  type Shape,
  type Webhook,
  type Zone,
  type ZoneEvent,
} from "../zones";

const ZONE_COLOUR = "#2563eb";
const DRAFT_COLOUR = "#d97706";
/** Events shown, newest first. */
const EVENTS_SHOWN = 100;
/** Pages of 1000 read at most to find the newest events. */
const EVENT_PAGES = 20;

type Editing = { id: number | null; name: string; draft: Draft; fields: Record<keyof Rules, string> };

function layerOf(shape: Shape, colour: string, renderer: L.Canvas): L.Path {
  const style = { renderer, color: colour, weight: 2, fillColor: colour, fillOpacity: 0.15 };
  return shape.type === "circle" ? L.circle(shape.center, { ...style, radius: shape.radius_m }) : L.polygon(shape.vertices, style);
}

function boundsOfShapes(shapes: Shape[]): [[number, number], [number, number]] | null {
  const corners = shapes.flatMap((s) => (s.type === "circle" ? circleCorners(s.center, s.radius_m) : s.vertices));
  if (corners.length === 0) return null;
  const lats = corners.map((c) => c[0]);
  const lons = corners.map((c) => c[1]);
  return [
    [Math.min(...lats), Math.min(...lons)],
    [Math.max(...lats), Math.max(...lons)],
  ];
}

/** The south-west and north-east corners of a circle's box (a circle layer needs a map for its bounds). */
function circleCorners(center: LatLon, radius_m: number): LatLon[] {
  const dLat = radius_m / 111_320;
  const dLon = radius_m / (111_320 * Math.max(0.01, Math.cos((center[0] * Math.PI) / 180)));
  return [
    [center[0] - dLat, center[1] - dLon],
    [center[0] + dLat, center[1] + dLon],
  ];
}

function describeShape(shape: Shape): string {
  return shape.type === "circle" ? `circle, ${Math.round(shape.radius_m).toLocaleString("en")} m` : `polygon, ${shape.vertices.length} corners`;
}

export function Zones() {
  const zones = useAsync(() => get<{ zones: Zone[] }>("/api/v1/zones").then((r) => r.zones), []);
  const [editing, setEditing] = useState<Editing | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  const editingRef = useRef<Editing | null>(null);
  editingRef.current = editing;

  // Stored zones (the one being edited is drawn as the draft instead).
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !zones.data) return;
    const group = L.layerGroup().addTo(map.map);
    for (const zone of zones.data) {
      if (editing?.id === zone.id) continue;
      layerOf(zone.shape, ZONE_COLOUR, map.renderer).bindTooltip(zone.name).addTo(group);
    }
    return () => {
      group.remove();
    };
  }, [zones.data, mapReady, editing?.id]);

  // Fit the map to the zones once they are known.
  useEffect(() => {
    const map = mapRef.current;
    if (map && zones.data && zones.data.length > 0) fitTo(map.map, boundsOfShapes(zones.data.map((z) => z.shape)), 15);
  }, [zones.data?.length, mapReady]);

  // The draft, and clicks that draw it.
  useEffect(() => {
    const map = mapRef.current;
    if (!map || !editing) return;
    const group = L.layerGroup().addTo(map.map);
    const { draft } = editing;
    const shape = shapeOf(draft);
    if (typeof shape !== "string") layerOf(shape, DRAFT_COLOUR, map.renderer).addTo(group);
    const corners = draft.type === "polygon" ? draft.vertices : draft.center ? [draft.center] : [];
    for (const corner of corners) L.circleMarker(corner, { renderer: map.renderer, radius: 5, color: "#fff", weight: 1.5, fillColor: DRAFT_COLOUR, fillOpacity: 1 }).addTo(group);
    if (draft.type === "polygon" && draft.vertices.length === 2) L.polyline(draft.vertices, { renderer: map.renderer, color: DRAFT_COLOUR, weight: 2 }).addTo(group);
    return () => {
      group.remove();
    };
  }, [editing?.draft, mapReady]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map) return;
    const onClick = (e: L.LeafletMouseEvent) => {
      const current = editingRef.current;
      if (!current) return;
      const point: LatLon = [Number(e.latlng.lat.toFixed(6)), Number(L.Util.wrapNum(e.latlng.lng, [-180, 180], true).toFixed(6))];
      setEditing({ ...current, draft: addPoint(current.draft, point) });
    };
    map.map.on("click", onClick);
    map.map.getContainer().classList.toggle("drawing", editing !== null);
    return () => {
      map.map.off("click", onClick);
    };
  }, [mapReady, editing !== null]);

  const start = (type: "circle" | "polygon") => {
    setError(undefined);
    setEditing({ id: null, name: "", draft: type === "circle" ? { type, radius_m: 100 } : { type, vertices: [] }, fields: fieldsOf({}) });
  };
  const edit = (zone: Zone) => {
    setError(undefined);
    setEditing({ id: zone.id, name: zone.name, draft: draftOf(zone.shape), fields: fieldsOf(zone.rules) });
    const bounds = boundsOfShapes([zone.shape]);
    if (mapRef.current && bounds) fitTo(mapRef.current.map, bounds, 17);
  };
  const save = async () => {
    if (!editing) return;
    const shape = shapeOf(editing.draft);
    const rules = rulesOf(editing.fields);
    const problem = !editing.name.trim() ? "Give the zone a name." : typeof shape === "string" ? shape : typeof rules === "string" ? rules : null;
    if (problem) {
      setError(new Error(problem));
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const body = { name: editing.name.trim(), shape, rules };
      if (editing.id === null) await api("POST", "/api/v1/zones", body);
      else await api("PUT", `/api/v1/zones/${editing.id}`, body);
      setEditing(null);
      zones.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const remove = async (zone: Zone) => {
    if (!confirm(`Delete the zone "${zone.name}"? Its events stay in the log.`)) return;
    try {
      await api("DELETE", `/api/v1/zones/${zone.id}`);
      if (editing?.id === zone.id) setEditing(null);
      zones.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <PageTitle
        actions={
          !editing && (
            <>
              <button type="button" class="small primary" onClick={() => start("circle")}>
                New circle
              </button>
              <button type="button" class="small" onClick={() => start("polygon")}>
                New polygon
              </button>
            </>
          )
        }
      >
        Zones
      </PageTitle>
      <div class="split zones-split">
        <div>
          {editing && <ZoneForm editing={editing} busy={busy} onChange={setEditing} onSave={save} onCancel={() => setEditing(null)} />}
          {error !== undefined && <ErrorBox error={error} />}
          {zones.loading && !zones.data && <Loading label="Loading zones…" />}
          {zones.error !== undefined && <ErrorBox error={zones.error} retry={zones.reload} />}
          {zones.data && zones.data.length === 0 && !editing && (
            <p class="muted">No zones yet. Draw one: polo tells you (and your webhooks) when a device arrives, leaves or stays.</p>
          )}
          <ul class="zone-list" data-testid="zone-list">
            {(zones.data ?? []).map((zone) => (
              <li class={`card zone${editing?.id === zone.id ? " editing" : ""}`} data-zone={zone.id}>
                <div class="place-head">
                  <strong>{zone.name}</strong>
                  {zone.origin && <span class="badge">from {zone.origin === "owntracks" ? "OwnTracks" : zone.origin}</span>}
                </div>
                <p class="muted">
                  {describeShape(zone.shape)} · enters after {zone.rules.dwell_s ?? DEFAULT_RULES.dwell_s} s
                  {zone.rules.dwell_alert_s ? ` · alert after ${Math.round(zone.rules.dwell_alert_s / 60)} min` : ""}
                </p>
                <div class="row-actions">
                  <button type="button" class="small" onClick={() => edit(zone)} disabled={editing !== null}>
                    Edit
                  </button>
                  <button type="button" class="small danger" onClick={() => remove(zone)}>
                    Delete
                  </button>
                </div>
              </li>
            ))}
          </ul>
        </div>
        <MapBox
          label="Map of your zones"
          class="zones-map"
          onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }}
        />
      </div>
      <div class="split even zones-logs">
        <EventLog />
        <WebhookLog />
      </div>
    </section>
  );
}

function ZoneForm({ editing, busy, onChange, onSave, onCancel }: { editing: Editing; busy: boolean; onChange: (e: Editing) => void; onSave: () => void; onCancel: () => void }) {
  const { draft } = editing;
  const shape = shapeOf(draft);
  const field = (key: keyof Rules, label: string, placeholder: string, help: string) => (
    <label>
      {label}
      <input
        inputMode="numeric"
        value={editing.fields[key]}
        placeholder={placeholder}
        title={help}
        onInput={(e) => onChange({ ...editing, fields: { ...editing.fields, [key]: e.currentTarget.value } })}
      />
    </label>
  );
  return (
    <form class="card zone-form" data-testid="zone-form" onSubmit={(e) => (e.preventDefault(), onSave())}>
      <h2>{editing.id === null ? `New ${draft.type}` : "Edit zone"}</h2>
      <Notice>{typeof shape === "string" ? shape : draft.type === "circle" ? "Click the map again to set the radius, or type it." : "Click to add corners; the last joins the first."}</Notice>
      <label>
        Name <input value={editing.name} maxLength={200} required onInput={(e) => onChange({ ...editing, name: e.currentTarget.value })} placeholder="Home" />
      </label>
      {draft.type === "circle" && draft.center && (
        <div class="row-actions">
          <button type="button" class="small" onClick={() => onChange({ ...editing, draft: { ...draft, center: undefined } })}>
            Move the centre
          </button>
        </div>
      )}
      {draft.type === "circle" && (
        <label>
          Radius (m)
          <input
            inputMode="numeric"
            value={String(draft.radius_m)}
            onInput={(e) => onChange({ ...editing, draft: { ...draft, radius_m: Number(e.currentTarget.value) } })}
          />
        </label>
      )}
      {draft.type === "polygon" && (
        <div class="row-actions">
          <button type="button" class="small" disabled={draft.vertices.length === 0} onClick={() => onChange({ ...editing, draft: { ...draft, vertices: draft.vertices.slice(0, -1) } })}>
            Undo corner
          </button>
          <button type="button" class="small" disabled={draft.vertices.length === 0} onClick={() => onChange({ ...editing, draft: { ...draft, vertices: [] } })}>
            Start over
          </button>
        </div>
      )}
      <details>
        <summary>When it fires</summary>
        <div class="zone-rules">
          {field("dwell_s", "Wait before entering (s)", String(DEFAULT_RULES.dwell_s), "A drive-by shorter than this fires nothing")}
          {field("exit_buffer_m", "Exit buffer (m)", String(DEFAULT_RULES.exit_buffer_m), "How far outside a fix must be to count as gone")}
          {field("exit_confirmations", "Fixes to confirm leaving", String(DEFAULT_RULES.exit_confirmations), "Clear fixes in a row")}
          {field("cooldown_s", "Cooldown (s)", String(DEFAULT_RULES.cooldown_s), "The least time between two events")}
          {field("dwell_alert_s", "Dwell alert (s)", "none", "Fire once when a visit lasts this long")}
        </div>
      </details>
      <div class="row-actions">
        <button type="submit" class="small primary" disabled={busy || typeof shape === "string"}>
          Save
        </button>
        <button type="button" class="small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** The newest events, and what the devices are called (their labels: "Anna's Pixel", not `google-…`). */
async function newestEvents(): Promise<{ events: ZoneEvent[]; labels: Map<string, string> }> {
  let after = 0;
  let all: ZoneEvent[] = [];
  for (let page = 0; page < EVENT_PAGES; page++) {
    const { events, next } = await get<{ events: ZoneEvent[]; next: number }>(`/api/v1/events?after=${after}&limit=1000`);
    all = all.concat(events).slice(-EVENTS_SHOWN);
    if (events.length < 1000) break;
    after = next;
  }
  const { devices } = await get<{ devices: { name: string; label?: string | null }[] }>("/api/v1/devices");
  const labels = new Map(devices.flatMap((d) => (d.label ? [[d.name, d.label] as [string, string]] : [])));
  return { events: newestFirst(all, EVENTS_SHOWN), labels };
}

function EventLog() {
  const events = useAsync(newestEvents, []);
  return (
    <div class="card" data-testid="event-log">
      <div class="place-head">
        <h2>Events</h2>
        <button type="button" class="small" onClick={events.reload}>
          Refresh
        </button>
      </div>
      {events.loading && !events.data && <Loading label="Loading events…" />}
      {events.error !== undefined && <ErrorBox error={events.error} retry={events.reload} />}
      {events.data && events.data.events.length === 0 && <p class="muted">Nothing has happened yet.</p>}
      <ul class="log">
        {(events.data?.events ?? []).map((event) => (
          <li class={event.past ? "muted" : ""}>
            <span class="log-when">{dateTime(new Date(event.at_ms).toISOString())}</span> {describeEvent(event, events.data?.labels)}
            {event.past && <span class="badge">past</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}

function WebhookLog() {
  const hooks = useAsync(() => get<{ webhooks: Webhook[] }>("/api/v1/webhooks").then((r) => r.webhooks), []);
  const [open, setOpen] = useState<number | null>(null);
  return (
    <div class="card" data-testid="webhook-log">
      <h2>Webhooks</h2>
      {hooks.loading && !hooks.data && <Loading label="Loading webhooks…" />}
      {hooks.error !== undefined && <ErrorBox error={hooks.error} retry={hooks.reload} />}
      {hooks.data && hooks.data.length === 0 && (
        <p class="muted">
          No webhooks. Subscribe a URL with <code>POST /api/v1/webhooks</code> (see the API documentation); its deliveries show here.
        </p>
      )}
      <ul class="log">
        {(hooks.data ?? []).map((hook) => (
          <li>
            <button type="button" class="link webhook-url" aria-expanded={open === hook.id} onClick={() => setOpen(open === hook.id ? null : hook.id)}>
              {hook.url}
            </button>{" "}
            <span class="badge">{hook.preset}</span>
            <span class="muted"> {hook.kinds.length ? hook.kinds.join(", ") : "all events"}</span>
            {open === hook.id && <Deliveries webhook={hook.id} />}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Deliveries({ webhook }: { webhook: number }) {
  const deliveries = useAsync(() => get<{ deliveries: Delivery[] }>(`/api/v1/webhooks/${webhook}/deliveries?limit=50`).then((r) => r.deliveries), [webhook]);
  if (deliveries.loading && !deliveries.data) return <Loading label="Loading deliveries…" />;
  if (deliveries.error !== undefined) return <ErrorBox error={deliveries.error} retry={deliveries.reload} />;
  if (!deliveries.data?.length) return <p class="muted">Nothing sent yet.</p>;
  return (
    <ul class="log deliveries">
      {deliveries.data.map((d) => (
        <li class={`delivery-${d.status}`}>
          <span class="log-when">{dateTime(new Date(d.updated_ms).toISOString())}</span> event {d.event}: {describeDelivery(d)}
        </li>
      ))}
    </ul>
  );
}

// Zones: the places polo watches for you. Draw a circle (centre, then edge)
// or a polygon (corner by corner) on the map, name it, tune when it fires;
// below, what happened (the event log), and the webhooks: subscribe a URL
// with a payload preset and an event filter (its secret is shown once),
// delete one, read its delivery log. Zones from the OwnTracks app appear here too.

import L from "leaflet";
import { useEffect, useRef, useState } from "preact/hooks";
import { api, get, type Group } from "../api";
import { dateTime } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { MapBox } from "../components/MapBox";
import { CopyButton, ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import {
  addPoint,
  DEFAULT_RULES,
  describeDelivery,
  describeEvent,
  describeKinds,
  EVENT_KINDS,
  draftOf,
  fieldsOf,
  MAX_URL_CHARS,
  newestFirst,
  PRESETS,
  rulesOf,
  shapeOf,
  type Delivery,
  type Draft,
  type LatLon,
  type Rules,
  type Shape,
  type Webhook,
  type WebhookForm as WebhookFormFields,
  type Zone,
  type ZoneEvent,
  webhookBody,
} from "../zones";

const ZONE_COLOUR = "#2563eb";
const DRAFT_COLOUR = "#d97706";
/** Events shown, newest first. */
const EVENTS_SHOWN = 100;
/** Pages of 1000 read at most to find the newest events. */
const EVENT_PAGES = 20;

/** `group`: "" for your own zone, else a group's id (chosen when the zone is made). */
type Editing = { id: number | null; name: string; draft: Draft; fields: Record<keyof Rules, string>; group: string };

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
  // The groups you administer: a new zone may belong to one of them.
  const groups = useAsync(() => get<{ groups: Group[] }>("/api/v1/groups").then((r) => r.groups.filter((g) => g.admin)), []);
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
    setEditing({ id: null, name: "", draft: type === "circle" ? { type, radius_m: 100 } : { type, vertices: [] }, fields: fieldsOf({}), group: "" });
  };
  const edit = (zone: Zone) => {
    setError(undefined);
    setEditing({ id: zone.id, name: zone.name, draft: draftOf(zone.shape), fields: fieldsOf(zone.rules), group: zone.group ? String(zone.group) : "" });
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
      const body = { name: editing.name.trim(), shape, rules, group: editing.group ? Number(editing.group) : undefined };
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
          {editing && <ZoneForm editing={editing} groups={groups.data ?? []} busy={busy} onChange={setEditing} onSave={save} onCancel={() => setEditing(null)} />}
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
                  {zone.group_name && <span class="badge" title="Every member's phones fire it">group: {zone.group_name}</span>}
                </div>
                <p class="muted">
                  {describeShape(zone.shape)} · enters after {zone.rules.dwell_s ?? DEFAULT_RULES.dwell_s} s
                  {zone.rules.dwell_alert_s ? ` · alert after ${Math.round(zone.rules.dwell_alert_s / 60)} min` : ""}
                </p>
                {zone.editable !== false ? (
                  <div class="row-actions">
                    <button type="button" class="small" onClick={() => edit(zone)} disabled={editing !== null}>
                      Edit
                    </button>
                    <button type="button" class="small danger" onClick={() => remove(zone)}>
                      Delete
                    </button>
                  </div>
                ) : (
                  <p class="muted">The group's admins look after this zone.</p>
                )}
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
      <div class="zones-logs">
        <EventLog />
        <WebhookLog />
      </div>
    </section>
  );
}

function ZoneForm({ editing, groups, busy, onChange, onSave, onCancel }: { editing: Editing; groups: Group[]; busy: boolean; onChange: (e: Editing) => void; onSave: () => void; onCancel: () => void }) {
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
      {editing.id === null && groups.length > 0 && (
        <label>
          Belongs to{" "}
          <select value={editing.group} onChange={(e) => onChange({ ...editing, group: e.currentTarget.value })} name="zone-group">
            <option value="">me</option>
            {groups.map((g) => (
              <option value={String(g.id)}>the group {g.name} (every member's phones)</option>
            ))}
          </select>
        </label>
      )}
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

/** Your webhooks: a form to subscribe a URL (its signing secret shown once), each one's filter, a switch to turn it off and on, and its delivery log. */
function WebhookLog() {
  const hooks = useAsync(() => get<{ webhooks: Webhook[] }>("/api/v1/webhooks").then((r) => r.webhooks), []);
  const [open, setOpen] = useState<number | null>(null);
  const [adding, setAdding] = useState(false);
  const [made, setMade] = useState<{ url: string; secret: string } | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const remove = async (hook: Webhook) => {
    if (!confirm(`Delete the webhook to ${hook.url}? Its pending deliveries and its delivery log go with it.`)) return;
    setError(undefined);
    try {
      await api("DELETE", `/api/v1/webhooks/${hook.id}`);
      if (open === hook.id) setOpen(null);
      hooks.reload();
    } catch (e) {
      setError(e);
    }
  };
  const toggle = async (hook: Webhook) => {
    if (hook.enabled && !confirm(`Switch off the webhook to ${hook.url}? Nothing is sent while it is off, and deliveries not yet made are dropped.`)) return;
    setError(undefined);
    try {
      await api("PATCH", `/api/v1/webhooks/${hook.id}`, { enabled: !hook.enabled });
      hooks.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="card webhooks" data-testid="webhook-log">
      <div class="place-head">
        <h2>Webhooks</h2>
        {!adding && (
          <button type="button" class="small primary" onClick={() => (setAdding(true), setMade(null))}>
            New webhook
          </button>
        )}
      </div>
      {adding && (
        <WebhookEditor
          onCancel={() => setAdding(false)}
          onMade={(url, secret) => {
            setAdding(false);
            setMade({ url, secret });
            hooks.reload();
          }}
        />
      )}
      {made && (
        <Notice kind="ok">
          <span data-testid="webhook-secret-notice">
            Subscribed {made.url}. Its signing secret, shown only this once: <code class="token" data-testid="webhook-secret">{made.secret}</code> <CopyButton text={made.secret} />
            <br />
            Each request carries <code>X-Polo-Signature: sha256=</code> and the HMAC-SHA256 of its body under this secret.
          </span>
        </Notice>
      )}
      {error !== undefined && <ErrorBox error={error} />}
      {hooks.loading && !hooks.data && <Loading label="Loading webhooks…" />}
      {hooks.error !== undefined && <ErrorBox error={hooks.error} retry={hooks.reload} />}
      {hooks.data && hooks.data.length === 0 && !adding && <p class="muted">No webhooks yet. Add one to have your events POSTed to a URL: ntfy, Gotify, Discord, Slack or any JSON receiver.</p>}
      {hooks.data && hooks.data.length > 0 && (
        <table class="data stack webhook-table">
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Payload</th>
              <th scope="col">Events</th>
              <th scope="col">Created</th>
              <th scope="col">On</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {hooks.data.map((hook) => [
              <tr data-webhook={hook.url}>
                <td class="lead webhook-url">{hook.url}</td>
                <td data-label="Payload">
                  <span class="badge">{hook.preset}</span>
                </td>
                <td data-label="Events">{describeKinds(hook.kinds)}</td>
                <td data-label="Created">{dateTime(new Date(hook.created_ms).toISOString())}</td>
                <td data-label="On">
                  <label class="switch">
                    <input type="checkbox" checked={hook.enabled} onChange={() => toggle(hook)} />
                    <span>{hook.enabled ? "On" : "Off"}</span>
                    <span class="visually-hidden">: send events to {hook.url}</span>
                  </label>
                </td>
                <td class="actions">
                  <button type="button" class="small" aria-expanded={open === hook.id} onClick={() => setOpen(open === hook.id ? null : hook.id)}>
                    Deliveries
                  </button>{" "}
                  <button type="button" class="small danger" onClick={() => remove(hook)}>
                    Delete
                  </button>
                </td>
              </tr>,
              open === hook.id && (
                <tr class="webhook-deliveries">
                  <td colSpan={6}>
                    <Deliveries webhook={hook.id} />
                  </td>
                </tr>
              ),
            ])}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The form of a new subscription: URL, payload preset and which events (none ticked: all). */
function WebhookEditor({ onCancel, onMade }: { onCancel: () => void; onMade: (url: string, secret: string) => void }) {
  const [form, setForm] = useState<WebhookFormFields>({ url: "", preset: "json", kinds: [] });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const body = webhookBody(form);
  const example = PRESETS.find((p) => p.preset === form.preset)?.example ?? "";
  const toggle = (kind: string, on: boolean) => setForm({ ...form, kinds: on ? [...form.kinds, kind] : form.kinds.filter((k) => k !== kind) });
  const save = async (event: Event) => {
    event.preventDefault();
    if (typeof body === "string") return setError(new Error(body));
    setBusy(true);
    setError(undefined);
    try {
      const made = await api<{ url: string; secret: string }>("POST", "/api/v1/webhooks", body);
      onMade(made.url, made.secret);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="webhook-form" data-testid="webhook-form" onSubmit={save}>
      <label>
        URL
        <input type="url" value={form.url} placeholder={example} maxLength={MAX_URL_CHARS} required onInput={(e) => setForm({ ...form, url: e.currentTarget.value })} />
      </label>
      <label>
        Payload
        <select value={form.preset} onChange={(e) => setForm({ ...form, preset: e.currentTarget.value })}>
          {PRESETS.map((p) => (
            <option value={p.preset}>{p.label}</option>
          ))}
        </select>
      </label>
      <fieldset class="webhook-kinds">
        <legend>Events (none ticked: all of them)</legend>
        {EVENT_KINDS.map((k) => (
          <label class="check">
            <input type="checkbox" checked={form.kinds.includes(k.kind)} onChange={(e) => toggle(k.kind, e.currentTarget.checked)} /> {k.label}
          </label>
        ))}
      </fieldset>
      {error !== undefined && <ErrorBox error={error} />}
      <div class="row-actions">
        <button type="submit" class="small primary" disabled={busy}>
          Subscribe
        </button>
        <button type="button" class="small" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
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

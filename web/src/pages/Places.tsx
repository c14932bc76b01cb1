// Places: the visits the server clustered (DBSCAN, 100 m), with their
// visits and hours. Rename one, or merge it into another; the server keeps
// both edits across every recomputation. A place inside a zone is called
// after the zone unless renamed, so sharing a place with a group is making
// it a zone of the group: every member's visits there take its name.

import L from "leaflet";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, get, type Group, type Place, type PlaceZone } from "../api";
import { DEFAULT_RULES } from "../zones";
import { dateTime, formatCount } from "../format";
import { fitTo, type PoloMap } from "../map/basemap";
import { boundsOf } from "../track";
import { MapBox } from "../components/MapBox";
import { ErrorBox, Loading, PageTitle, Pager, pageOf, useAsync } from "../components/ui";

function label(place: Place): string {
  return place.title || `Place ${place.id}`;
}

export function Places() {
  const places = useAsync(() => get<Place[]>("/api/v1/places"), []);
  const [filter, setFilter] = useState("");
  const [sort, setSort] = useState<"hours" | "visits" | "recent" | "name">("hours");
  const [page, setPage] = useState(0);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);
  const markers = useRef<Map<number, L.CircleMarker>>(new Map());

  const shown = useMemo(() => {
    const needle = filter.trim().toLowerCase();
    const list = (places.data ?? []).filter((p) => !needle || [p.name, p.zone?.name, p.address, p.town, p.country, p.region].some((v) => v?.toLowerCase().includes(needle)));
    const by: Record<typeof sort, (a: Place, b: Place) => number> = {
      hours: (a, b) => b.hours - a.hours,
      visits: (a, b) => b.visits - a.visits,
      recent: (a, b) => (b.last_visit ?? b.first_visit).localeCompare(a.last_visit ?? a.first_visit),
      name: (a, b) => label(a).localeCompare(label(b)),
    };
    return list.sort(by[sort]);
  }, [places.data, filter, sort]);
  useEffect(() => setPage(0), [filter, sort]);
  const visible = pageOf(shown, page);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !places.data) return;
    const group = L.layerGroup().addTo(map.map);
    markers.current = new Map();
    const maxHours = Math.max(1, ...places.data.map((p) => p.hours));
    for (const place of places.data) {
      const marker = L.circleMarker([place.lat, place.lon], {
        renderer: map.renderer,
        radius: 4 + 10 * Math.sqrt(place.hours / maxHours),
        color: "#fff",
        weight: 1.5,
        fillColor: place.home ? "#16a34a" : place.work ? "#2563eb" : "#d97706",
        fillOpacity: 0.85,
      })
        .bindTooltip(`${label(place)} · ${place.visits} visits`)
        .addTo(group);
      markers.current.set(place.id, marker);
    }
    fitTo(map.map, boundsOf([{ latlngs: places.data.map((p) => [p.lat, p.lon] as [number, number]) }]), 14);
    return () => {
      group.remove();
    };
  }, [places.data, mapReady]);

  return (
    <section>
      <PageTitle>Places</PageTitle>
      <div class="toolbar">
        <label>
          Search <input type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="name, town, country" />
        </label>
        <label>
          Sort by{" "}
          <select value={sort} onChange={(e) => setSort(e.currentTarget.value as typeof sort)}>
            <option value="hours">Time spent</option>
            <option value="visits">Visits</option>
            <option value="recent">Last visit</option>
            <option value="name">Name</option>
          </select>
        </label>
      </div>
      <div class="split">
        <div>
          {places.loading && <Loading label="Loading places…" />}
          {places.error !== undefined && <ErrorBox error={places.error} retry={places.reload} />}
          {places.data && places.data.length === 0 && <p class="muted">No places yet: they appear once you have stayed somewhere long enough to count as a visit.</p>}
          {places.data && places.data.length > 0 && (
            <p class="muted" data-testid="places-count">
              {shown.length === places.data.length ? `${formatCount(shown.length)} places` : `${formatCount(shown.length)} of ${formatCount(places.data.length)} places match`}
            </p>
          )}
          <ul class="place-list">
            {visible.rows.map((place) => (
              <PlaceRow
                key={place.id}
                place={place}
                all={places.data ?? []}
                onFocus={() => {
                  mapRef.current?.map.setView([place.lat, place.lon], 16);
                  markers.current.get(place.id)?.openTooltip();
                }}
                onChanged={places.reload}
              />
            ))}
          </ul>
          <Pager page={visible.page} pages={visible.pages} total={shown.length} onPage={setPage} label="Pages of places" />
        </div>
        <MapBox
          label="Map of your places"
          class="places-map"
          onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }}
        />
      </div>
    </section>
  );
}

/** Where a place's zone comes from, said in a few words. */
function zoneNote(zone: PlaceZone, named: boolean): string {
  const whose = zone.group_name ? `${zone.group_name}'s zone` : "your zone";
  return named ? `Inside ${whose} “${zone.name}”` : `Named after ${whose} “${zone.name}”`;
}

/** Radii a shared place may be given, metres. */
const SHARE_RADII = [50, 100, 150, 250, 500];

function PlaceRow({ place, all, onFocus, onChanged }: { place: Place; all: Place[]; onFocus: () => void; onChanged: () => void }) {
  const [mode, setMode] = useState<"view" | "rename" | "merge" | "share">("view");
  const [name, setName] = useState(place.name ?? "");
  const [into, setInto] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = async (work: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await work();
      setMode("view");
      onChanged();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  // Only a row being merged lists the other places: sorting thousands of
  // places for every row made the page freeze.
  const others = useMemo(() => (mode === "merge" ? all.filter((p) => p.id !== place.id).sort((a, b) => label(a).localeCompare(label(b))) : []), [mode, all, place.id]);
  // Only a row being shared asks for the groups (those you administer can own zones).
  const [groups, setGroups] = useState<Group[] | undefined>(undefined);
  const [share, setShare] = useState({ group: "", name: label(place), radius: "100" });
  useEffect(() => {
    if (mode !== "share" || groups) return;
    get<{ groups: Group[] }>("/api/v1/groups")
      .then(({ groups: all }) => {
        const mine = all.filter((g) => g.admin);
        setGroups(mine);
        if (mine.length > 0) setShare((s) => ({ ...s, group: s.group || String(mine[0].id) }));
      })
      .catch(setError);
  }, [mode, groups]);
  const shareWithGroup = () =>
    run(() =>
      api("POST", "/api/v1/zones", {
        name: share.name.trim(),
        group: Number(share.group),
        shape: { type: "circle", center: [place.lat, place.lon], radius_m: Number(share.radius) },
        rules: DEFAULT_RULES,
      }),
    );
  return (
    <li class="place card" data-place={place.id}>
      <div class="place-head">
        <button type="button" class="link place-name" onClick={onFocus}>
          {label(place)}
        </button>
        {place.home && <span class="badge">home</span>}
        {place.work && <span class="badge">work</span>}
      </div>
      <p class="muted">
        {formatCount(place.visits)} visits · {Math.round(place.hours).toLocaleString("en")} h · {[place.town, place.region, place.country].filter(Boolean).join(", ")}
        <br />
        First {dateTime(place.first_visit, place.first_visit_utc_offset_minutes)}
        {place.last_visit && ` · last ${dateTime(place.last_visit, place.last_visit_utc_offset_minutes)}`}
        {place.merged.length > 0 && ` · merged from ${place.merged.length}`}
        {place.zone && (
          <>
            <br />
            <span data-testid="place-zone">{zoneNote(place.zone, Boolean(place.name))}</span>
          </>
        )}
      </p>
      {mode === "view" && (
        <div class="row-actions">
          <button type="button" class="small" onClick={() => setMode("rename")}>
            Rename
          </button>
          <button type="button" class="small" onClick={() => setMode("merge")} disabled={all.length < 2}>
            Merge…
          </button>
          <button type="button" class="small" onClick={() => setMode("share")}>
            Share with a group…
          </button>
        </div>
      )}
      {mode === "share" && (
        <form class="inline-edit" onSubmit={(e) => (e.preventDefault(), share.group && run(shareWithGroup))}>
          {groups === undefined && error === undefined && <Loading label="Loading your groups…" />}
          {groups && groups.length === 0 && <p class="muted">You administer no group. Make one on the Groups page, or ask an admin of yours to share this place.</p>}
          {groups && groups.length > 0 && (
            <>
              <label>
                Group{" "}
                <select value={share.group} onChange={(e) => setShare({ ...share, group: e.currentTarget.value })}>
                  {groups.map((g) => (
                    <option value={String(g.id)}>{g.name}</option>
                  ))}
                </select>
              </label>
              <label>
                Name <input value={share.name} onInput={(e) => setShare({ ...share, name: e.currentTarget.value })} maxLength={200} required />
              </label>
              <label>
                Radius{" "}
                <select value={share.radius} onChange={(e) => setShare({ ...share, radius: e.currentTarget.value })}>
                  {SHARE_RADII.map((r) => (
                    <option value={String(r)}>{r} m</option>
                  ))}
                </select>
              </label>
              <button type="submit" class="small primary" disabled={busy || !share.name.trim()}>
                Share
              </button>
            </>
          )}
          <button type="button" class="small" onClick={() => setMode("view")}>
            Cancel
          </button>
          <p class="muted place-share-note">The group gets a zone here: every member's visits inside it are called by its name (unless they named the place themselves), and it fires zone events for their devices.</p>
        </form>
      )}
      {mode === "rename" && (
        <form class="inline-edit" onSubmit={(e) => (e.preventDefault(), run(() => api("PATCH", `/api/v1/places/${place.id}`, { name: name.trim() || null })))}>
          <label>
            Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={200} autoFocus />
          </label>
          <button type="submit" class="small primary" disabled={busy}>
            Save
          </button>
          <button type="button" class="small" onClick={() => setMode("view")}>
            Cancel
          </button>
        </form>
      )}
      {mode === "merge" && (
        <form class="inline-edit" onSubmit={(e) => (e.preventDefault(), into && run(() => api("POST", `/api/v1/places/${place.id}/merge`, { into: Number(into) })))}>
          <label>
            Merge into{" "}
            <select value={into} onChange={(e) => setInto(e.currentTarget.value)} required>
              <option value="">choose a place</option>
              {others.map((p) => (
                <option value={String(p.id)}>
                  {label(p)} ({p.visits} visits)
                </option>
              ))}
            </select>
          </label>
          <button type="submit" class="small primary" disabled={busy || !into}>
            Merge
          </button>
          <button type="button" class="small" onClick={() => setMode("view")}>
            Cancel
          </button>
        </form>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </li>
  );
}

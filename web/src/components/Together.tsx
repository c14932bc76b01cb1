// "Who was I with" on the Sharing page: every friend who shares their
// location with you and with whom you share yours, the time spent together
// this year, when you last met, and each encounter on a small map. The
// server computes encounters from both people's points when asked and
// stores nothing (docs/sharing.md).

import L from "leaflet";
import { useState } from "preact/hooks";
import { get, qs, type FriendTogether, type Together, type TogetherEncounter, type TogetherWith } from "../api";
import { dateAt, formatDistance, formatDuration, localDate, longDate } from "../format";
import { fitTo } from "../map/basemap";
import { boundsOf } from "../track";
import { encounterTime, lastMetLine, totalsLine, wherePhrase } from "../together";
import { MapBox } from "./MapBox";
import { ErrorBox, Loading, useAsync } from "./ui";

export function TogetherSection() {
  const today = localDate(new Date());
  const from = `${today.slice(0, 4)}-01-01`;
  const together = useAsync(() => get<Together>(`/api/v1/together${qs({ from, to: today })}`), [from, today]);
  const params = together.data;
  return (
    <section class="together" aria-labelledby="together-title">
      <h2 id="together-title">Together</h2>
      <p class="muted">
        When you were with friends who share their location with you and with whom you share yours
        {params && ` (within ${Math.round(params.max_distance_m)} m and ${formatDuration(params.max_gap_s)} of each other)`}. Worked out from both of your points when you look; nothing is kept.
      </p>
      {together.loading && !together.data && <Loading label="Finding encounters…" />}
      {together.error !== undefined && <ErrorBox error={together.error} retry={together.reload} />}
      {params && params.friends.length === 0 && <p class="muted">No one shares with you both ways yet: share your location with a friend and ask them to share back.</p>}
      {params && params.friends.length > 0 && (
        <ul class="together-list">
          {params.friends.map((friend) => (
            <TogetherFriend key={friend.user} friend={friend} from={from} to={today} />
          ))}
        </ul>
      )}
    </section>
  );
}

function TogetherFriend({ friend, from, to }: { friend: FriendTogether; from: string; to: string }) {
  const [open, setOpen] = useState(false);
  const [latest, setLatest] = useState<TogetherEncounter | null | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const findLatest = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const answer = await get<TogetherWith>(`/api/v1/together/${encodeURIComponent(friend.user)}${qs({ from, to })}`);
      setLatest(answer.latest);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <li class="card together-friend" data-friend={friend.user}>
      <div class="together-head">
        <strong>{friend.user}</strong>
        <span class="muted" data-testid="together-totals">
          {totalsLine(friend)} this year
          {friend.last_met && ` · ${lastMetLine(friend.last_met, friend.last_met_utc_offset_minutes)}`}
          {latest && ` · ${lastMetLine(latest.last, latest.end_utc_offset_minutes)}`}
          {latest === null && " · never met"}
        </span>
        {friend.count > 0 ? (
          <button type="button" class="small" aria-expanded={open} onClick={() => setOpen(!open)}>
            {open ? "Hide encounters" : "Show encounters"}
          </button>
        ) : (
          latest === undefined && (
            <button type="button" class="small" disabled={busy} onClick={findLatest}>
              When did we last meet?
            </button>
          )
        )}
      </div>
      {error !== undefined && <ErrorBox error={error} />}
      {open && <Encounters friend={friend} />}
    </li>
  );
}

function Encounters({ friend }: { friend: FriendTogether }) {
  const newestFirst = [...friend.encounters].reverse();
  return (
    <div class="together-detail">
      <MapBox
        label={`Where you met ${friend.user}`}
        class="together-map"
        onReady={(map) => {
          for (const e of friend.encounters) {
            L.circleMarker([e.lat, e.lon], { renderer: map.renderer, radius: 7, color: "#fff", weight: 2, fillColor: "#1d4ed8", fillOpacity: 0.9 })
              .bindTooltip(`${longDate(dateAt(e.first, e.utc_offset_minutes ?? 0))}, ${encounterTime(e, dateAt(e.first, e.utc_offset_minutes ?? 0))}`)
              .addTo(map.map);
          }
          fitTo(map.map, boundsOf([{ latlngs: friend.encounters.map((e) => [e.lat, e.lon] as [number, number]) }]));
        }}
      />
      <ol class="together-encounters">
        {newestFirst.map((e) => {
          const day = dateAt(e.first, e.utc_offset_minutes ?? 0);
          const where = wherePhrase(e.title);
          return (
            <li key={e.first}>
              <a href={`/day/${day}`}>{longDate(day)}</a>, {encounterTime(e, day)}
              {where && `, ${where}`}
              <span class="muted">
                {" "}
                · {formatDuration(e.minutes * 60)} · closest {formatDistance(e.min_distance_m)}
              </span>
            </li>
          );
        })}
      </ol>
    </div>
  );
}

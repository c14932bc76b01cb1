// Sharing: expiring public links (a trip, a date range, or live location)
// that open without an account, and revoking them; friends and family,
// mutual location-sharing grants between users of this instance, which the
// live map and the OwnTracks friends reply use; and "Together", the
// encounters with friends who share both ways.

import { useState } from "preact/hooks";
import { api, get, type Device, type Friend, type Me, type Share } from "../api";
import { addDays, dateTime, localDate } from "../format";
import { CopyButton, ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";
import { TogetherSection } from "../components/Together";

const EXPIRIES: [string, number | null][] = [
  ["1 hour", 3600],
  ["1 day", 86400],
  ["7 days", 7 * 86400],
  ["30 days", 30 * 86400],
  ["Never", null],
];

export function Sharing({ me }: { me: Me }) {
  const shares = useAsync(() => get<{ shares: Share[] } | Share[]>("/api/v1/shares").then((r) => (Array.isArray(r) ? r : r.shares)), []);
  const devices = useAsync(() => get<{ devices: Device[] }>("/api/v1/devices"), []);
  const friends = useAsync(() => get<{ friends: Friend[] }>("/api/v1/friends"), []);
  const today = localDate(new Date());
  const [kind, setKind] = useState<"range" | "live">("range");
  const [from, setFrom] = useState(addDays(today, -7));
  const [to, setTo] = useState(today);
  const [device, setDevice] = useState("");
  const [label, setLabel] = useState("");
  const [expiry, setExpiry] = useState("2");
  const [hidePlaces, setHidePlaces] = useState(true);
  const [created, setCreated] = useState<Share | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const [friend, setFriend] = useState("");
  const [friendError, setFriendError] = useState<unknown>(undefined);

  const create = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const expires = EXPIRIES[Number(expiry)][1];
      const body: Record<string, unknown> = { kind, label: label.trim() || undefined, device: device || undefined, hide_places: hidePlaces };
      if (expires !== null) body.expires_in_s = expires;
      if (kind === "range") {
        body.from = new Date(`${from}T00:00:00`).toISOString();
        body.to = new Date(`${addDays(to, 1)}T00:00:00`).toISOString();
      }
      setCreated(await api<Share>("POST", "/api/v1/shares", body));
      setLabel("");
      shares.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const revoke = async (share: Share) => {
    if (!confirm(`Revoke the link "${share.label || share.kind}"? It stops working at once.`)) return;
    try {
      await api("DELETE", `/api/v1/shares/${share.id}`);
      if (created?.id === share.id) setCreated(null);
      shares.reload();
    } catch (e) {
      setError(e);
    }
  };
  const addFriend = async (event: Event) => {
    event.preventDefault();
    setFriendError(undefined);
    try {
      await api("POST", "/api/v1/friends", { user: friend.trim() });
      setFriend("");
      friends.reload();
    } catch (e) {
      setFriendError(e);
    }
  };
  const removeFriend = async (user: string) => {
    try {
      await api("DELETE", `/api/v1/friends/${encodeURIComponent(user)}`);
      friends.reload();
    } catch (e) {
      setFriendError(e);
    }
  };
  const absolute = (url: string) => new URL(url, location.origin).toString();

  return (
    <section>
      <PageTitle>Sharing</PageTitle>
      <div class="split even">
        <form class="card share-form" onSubmit={create} aria-labelledby="new-share">
          <h2 id="new-share">New public link</h2>
          <p class="muted">Anyone with the link sees only what it shares, without an account. Trips are shared from their own page.</p>
          <fieldset>
            <legend>What</legend>
            <label class="inline">
              <input type="radio" name="kind" value="range" checked={kind === "range"} onChange={() => setKind("range")} /> Dates
            </label>
            <label class="inline">
              <input type="radio" name="kind" value="live" checked={kind === "live"} onChange={() => setKind("live")} /> Live location
            </label>
          </fieldset>
          {kind === "range" && (
            <div class="row">
              <label>
                From <input type="date" value={from} onInput={(e) => setFrom(e.currentTarget.value)} required />
              </label>
              <label>
                To <input type="date" value={to} onInput={(e) => setTo(e.currentTarget.value)} required />
              </label>
            </div>
          )}
          <label>
            Device{" "}
            <select value={device} onChange={(e) => setDevice(e.currentTarget.value)}>
              <option value="">{kind === "live" ? "all my devices" : "all devices"}</option>
              {devices.data?.devices.map((d) => (
                <option value={d.name}>{d.name}</option>
              ))}
            </select>
          </label>
          <label>
            Label <input value={label} onInput={(e) => setLabel(e.currentTarget.value)} placeholder="Holiday in Portugal" maxLength={100} />
          </label>
          <label>
            Expires after{" "}
            <select value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
              {EXPIRIES.map(([text, seconds], i) => (
                <option value={String(i)} disabled={kind === "live" && seconds === null}>
                  {text}
                </option>
              ))}
            </select>
          </label>
          {kind === "range" && (
            <label class="inline">
              <input type="checkbox" checked={hidePlaces} onChange={(e) => setHidePlaces(e.currentTarget.checked)} data-testid="share-hide-places" /> Hide place names (show towns only)
            </label>
          )}
          <button type="submit" class="primary" disabled={busy}>
            Create link
          </button>
          {error !== undefined && <ErrorBox error={error} />}
          {created && (
            <p class="notice notice-ok" data-testid="share-created">
              Link: <a href={created.url ?? "#"} target="_blank" rel="noopener" data-testid="share-link">{absolute(created.url ?? "")}</a> <CopyButton text={absolute(created.url ?? "")} />
            </p>
          )}
        </form>
        <div>
          <h2>Your links</h2>
          {shares.loading && !shares.data && <Loading label="Loading links…" />}
          {shares.error !== undefined && <ErrorBox error={shares.error} retry={shares.reload} />}
          {shares.data && shares.data.length === 0 && <p class="muted">No links yet.</p>}
          <ul class="share-list">
            {shares.data?.map((share) => {
              const expired = !share.revoked && share.expires ? Date.parse(share.expires) < Date.now() : false;
              const active = share.active ?? !(expired || share.revoked);
              return (
                <li class={active ? "card" : "card inactive"} data-share={share.id}>
                  <strong>{share.label || `${share.kind} share`}</strong> <span class="badge">{share.kind}</span> {expired && <span class="badge warn">expired</span>} {share.revoked && <span class="badge warn">revoked</span>}
                  <br />
                  <span class="muted">
                    {share.from && `${dateTime(share.from)} – ${dateTime(share.to)} · `}
                    {share.device && `${share.device} · `}
                    {share.kind !== "live" && (share.hide_places ? "place names hidden · " : "place names shown · ")}
                    created {dateTime(share.created)} · {share.expires ? `expires ${dateTime(share.expires)}` : "never expires"}
                  </span>
                  {active && (
                    <div class="row-actions">
                      {share.url && (
                        <>
                          <a href={share.url} target="_blank" rel="noopener" class="button small">
                            Open
                          </a>
                          <CopyButton text={absolute(share.url)} label="Copy link" />
                        </>
                      )}
                      <button type="button" class="small danger" onClick={() => revoke(share)}>
                        Revoke
                      </button>
                    </div>
                  )}
                </li>
              );
            })}
          </ul>
        </div>
      </div>
      <h2>Friends and family</h2>
      <p class="muted">
        Sharing with another user of this instance, {me.user.name}, shows your live position on their map and in their OwnTracks app; you see theirs once they share back.
      </p>
      <form class="toolbar" onSubmit={addFriend}>
        <label>
          User name <input value={friend} onInput={(e) => setFriend(e.currentTarget.value)} required name="friend" />
        </label>
        <button type="submit" class="small primary">
          Share my location
        </button>
      </form>
      {friendError !== undefined && <ErrorBox error={friendError} />}
      {friends.error !== undefined && <ErrorBox error={friends.error} retry={friends.reload} />}
      {friends.data && friends.data.friends.length === 0 && <p class="muted">You share with nobody, and nobody shares with you.</p>}
      {friends.data && friends.data.friends.length > 0 && (
        <table class="data stack">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">You share</th>
              <th scope="col">They share</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {friends.data.friends.map((f) => (
              <tr>
                <td class="lead">
                  {f.user} {f.mutual && <span class="badge">mutual</span>}
                </td>
                <td data-label="You share">{f.granted_by_me ? "yes" : "no"}</td>
                <td data-label="They share">{f.granted_to_me ? "yes" : "no"}</td>
                <td class="actions">
                  {f.granted_by_me ? (
                    <button type="button" class="small danger" onClick={() => removeFriend(f.user)}>
                      Stop sharing
                    </button>
                  ) : (
                    <button type="button" class="small" onClick={() => api("POST", "/api/v1/friends", { user: f.user }).then(friends.reload, setFriendError)}>
                      Share back
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <TogetherSection />
    </section>
  );
}

// Groups: a family or a team that shares places and zones ("Home" fires for
// everyone's phone and names everyone's visits there). Make a group, invite
// people with a link that expires, see who is in it, make members admins,
// remove them, leave. Joining shares no location: that stays each person's
// own choice, offered member by member here (the Sharing page's grants).
// The join page (/join/<token>) is here too: it says what the link is for
// and why it no longer works, when it does not.

import { useState } from "preact/hooks";
import { api, get, type Friend, type Group, type GroupDetail, type GroupInvitation, type InvitationPreview, type Me } from "../api";
import { dateTime } from "../format";
import { CopyButton, ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import { navigate } from "../router";

const INVITE_EXPIRIES: [string, number][] = [
  ["1 hour", 3600],
  ["1 day", 86400],
  ["7 days", 7 * 86400],
  ["30 days", 30 * 86400],
];

const absolute = (url: string) => new URL(url, location.origin).toString();
const when = (ms: number) => dateTime(new Date(ms).toISOString());

export function Groups({ me }: { me: Me }) {
  const groups = useAsync(() => get<{ groups: Group[] }>("/api/v1/groups"), []);
  const [name, setName] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [open, setOpen] = useState<number | null>(null);

  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      const made = await api<GroupDetail>("POST", "/api/v1/groups", { name: name.trim() });
      setName("");
      setOpen(made.id);
      groups.reload();
    } catch (e) {
      setError(e);
    }
  };

  return (
    <section>
      <PageTitle>Groups</PageTitle>
      <p class="muted">
        A group (a family, a team) has places and zones that belong to all of its members: a group's "Home" fires for everyone's phone and names everyone's visits there. Being in a group shares no location by itself: who sees whom stays each member's choice, member by member in the group or on the <a href="/sharing">Sharing</a> page.
      </p>
      <form class="toolbar" onSubmit={create} aria-label="New group">
        <label>
          New group <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="Family" maxLength={100} required name="group-name" />
        </label>
        <button type="submit" class="small primary">
          Create group
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {groups.loading && !groups.data && <Loading label="Loading groups…" />}
      {groups.error !== undefined && <ErrorBox error={groups.error} retry={groups.reload} />}
      {groups.data && groups.data.groups.length === 0 && <p class="muted">You are in no group yet. Create one, or open an invitation link someone sent you.</p>}
      <ul class="share-list group-list">
        {groups.data?.groups.map((group) => (
          <li class="card" data-group={group.id}>
            <div class="group-head">
              <strong>{group.name}</strong> {group.admin && <span class="badge">admin</span>}{" "}
              <span class="muted">
                {group.members} {group.members === 1 ? "member" : "members"}
                {group.created_by && ` · made by ${group.created_by}`}
              </span>
              <button type="button" class="small" aria-expanded={open === group.id} onClick={() => setOpen(open === group.id ? null : group.id)}>
                {open === group.id ? "Close" : "Open"}
              </button>
            </div>
            {open === group.id && (
              <GroupPanel
                id={group.id}
                me={me}
                onGone={() => {
                  setOpen(null);
                  groups.reload();
                }}
                onChanged={groups.reload}
              />
            )}
          </li>
        ))}
      </ul>
    </section>
  );
}

/** Which way location is shared between you and a member. */
function locationNote(friend: Friend | undefined): string {
  if (friend?.mutual) return "you see each other";
  if (friend?.granted_by_me) return "sees yours";
  if (friend?.granted_to_me) return "shares theirs with you";
  return "not shared";
}

function GroupPanel({ id, me, onGone, onChanged }: { id: number; me: Me; onGone: () => void; onChanged: () => void }) {
  const detail = useAsync(() => get<GroupDetail>(`/api/v1/groups/${id}`), [id]);
  // Who sees whom stays each member's own choice: the location grants of the Sharing page,
  // offered here member by member.
  const friends = useAsync(() => get<{ friends: Friend[] }>("/api/v1/friends"), []);
  const [error, setError] = useState<unknown>(undefined);
  const [rename, setRename] = useState<string | null>(null);
  const run = async (action: () => Promise<unknown>, after: "reload" | "gone" = "reload") => {
    setError(undefined);
    try {
      await action();
      if (after === "gone") onGone();
      else {
        detail.reload();
        friends.reload();
        onChanged();
      }
    } catch (e) {
      setError(e);
    }
  };
  if (detail.error !== undefined) return <ErrorBox error={detail.error} retry={detail.reload} />;
  const group = detail.data;
  if (!group) return <Loading label="Loading the group…" />;
  const member = (user: string) => `/api/v1/groups/${id}/members/${encodeURIComponent(user)}`;
  const grants = new Map((friends.data?.friends ?? []).map((f) => [f.user, f]));
  const others = group.member_list.filter((m) => m.user !== me.user.name);
  const notYet = others.filter((m) => !grants.get(m.user)?.granted_by_me);
  const shareWith = (users: string[]) => run(async () => {
    for (const user of users) await api("POST", "/api/v1/friends", { user });
  });
  return (
    <div class="group-panel">
      {error !== undefined && <ErrorBox error={error} />}
      <h3>Members</h3>
      <table class="data stack" data-testid="group-members">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Role</th>
            <th scope="col">Joined</th>
            <th scope="col">Location</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {group.member_list.map((m) => (
            <tr data-member={m.user}>
              <td class="lead">
                {m.user} {m.user === me.user.name && <span class="muted">(you)</span>}
              </td>
              <td data-label="Role">{m.admin ? "admin" : "member"}</td>
              <td data-label="Joined">{when(m.joined_ms)}</td>
              <td data-label="Location" data-testid="member-location">
                {m.user === me.user.name ? (
                  <span class="muted">—</span>
                ) : (
                  <>
                    <span class="muted">{locationNote(grants.get(m.user))}</span>{" "}
                    {friends.data &&
                      (grants.get(m.user)?.granted_by_me ? (
                        <button type="button" class="small" onClick={() => run(() => api("DELETE", `/api/v1/friends/${encodeURIComponent(m.user)}`))}>
                          Stop sharing mine
                        </button>
                      ) : (
                        <button type="button" class="small" onClick={() => shareWith([m.user])}>
                          Share mine
                        </button>
                      ))}
                  </>
                )}
              </td>
              <td class="actions">
                {group.admin && !m.admin && (
                  <button type="button" class="small" onClick={() => run(() => api("PUT", `${member(m.user)}/admin`))}>
                    Make admin
                  </button>
                )}
                {group.admin && m.admin && (
                  <button type="button" class="small" onClick={() => run(() => api("DELETE", `${member(m.user)}/admin`))}>
                    {m.user === me.user.name ? "Step down" : "Remove admin"}
                  </button>
                )}
                {group.admin && m.user !== me.user.name && (
                  <button
                    type="button"
                    class="small danger"
                    onClick={() => confirm(`Remove ${m.user} from "${group.name}"? Their phones stop firing the group's zones.`) && run(() => api("DELETE", member(m.user)))}
                  >
                    Remove
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {friends.data && notYet.length > 1 && (
        <p class="row-actions">
          <button type="button" class="small" onClick={() => shareWith(notYet.map((m) => m.user))}>
            Share my location with everyone here ({notYet.length})
          </button>
        </p>
      )}
      <p class="muted">
        {group.zones.length === 0 ? "No places or zones belong to this group yet" : `${group.zones.length} ${group.zones.length === 1 ? "place or zone belongs" : "places and zones belong"} to this group`}
        {group.admin ? (
          <>
            : draw one on the <a href="/zones">Zones</a> page and choose this group, or share one of your <a href="/places">Places</a>. Every member's visits inside it take its name.
          </>
        ) : (
          ". Every member's visits inside them take their names."
        )}
      </p>
      {group.admin && <Invitations id={id} groupName={group.name} />}
      <div class="row-actions">
        {group.admin && rename === null && (
          <button type="button" class="small" onClick={() => setRename(group.name)}>
            Rename
          </button>
        )}
        {rename !== null && (
          <form
            class="toolbar"
            onSubmit={(e) => {
              e.preventDefault();
              run(() => api("PUT", `/api/v1/groups/${id}`, { name: rename.trim() })).then(() => setRename(null));
            }}
          >
            <label>
              Name <input value={rename} onInput={(e) => setRename(e.currentTarget.value)} maxLength={100} required />
            </label>
            <button type="submit" class="small primary">
              Save
            </button>
            <button type="button" class="small" onClick={() => setRename(null)}>
              Cancel
            </button>
          </form>
        )}
        <button
          type="button"
          class="small"
          onClick={() => confirm(`Leave "${group.name}"? Its zones stop firing for your phones.`) && run(() => api("POST", `/api/v1/groups/${id}/leave`), "gone")}
        >
          Leave
        </button>
        {group.admin && (
          <button
            type="button"
            class="small danger"
            onClick={() => confirm(`Delete "${group.name}" with its zones and invitations, for every member?`) && run(() => api("DELETE", `/api/v1/groups/${id}`), "gone")}
          >
            Delete group
          </button>
        )}
      </div>
    </div>
  );
}

function Invitations({ id, groupName }: { id: number; groupName: string }) {
  const list = useAsync(() => get<{ invitations: GroupInvitation[] }>(`/api/v1/groups/${id}/invitations`), [id]);
  const [uses, setUses] = useState(1);
  const [expiry, setExpiry] = useState("2");
  const [made, setMade] = useState<GroupInvitation | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const invite = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      setMade(await api<GroupInvitation>("POST", `/api/v1/groups/${id}/invitations`, { max_uses: uses, expires_in_s: INVITE_EXPIRIES[Number(expiry)][1] }));
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  const revoke = async (invitation: GroupInvitation) => {
    try {
      await api("DELETE", `/api/v1/groups/${id}/invitations/${invitation.id}`);
      if (made?.id === invitation.id) setMade(null);
      list.reload();
    } catch (e) {
      setError(e);
    }
  };
  const active = list.data?.invitations.filter((i) => i.active) ?? [];
  return (
    <div>
      <h3>Invite</h3>
      <form class="toolbar" onSubmit={invite} aria-label={`Invite to ${groupName}`}>
        <label>
          People{" "}
          <input type="number" min={1} max={100} value={uses} onInput={(e) => setUses(Number(e.currentTarget.value) || 1)} name="invite-uses" />
        </label>
        <label>
          Expires after{" "}
          <select value={expiry} onChange={(e) => setExpiry(e.currentTarget.value)}>
            {INVITE_EXPIRIES.map(([text], i) => (
              <option value={String(i)}>{text}</option>
            ))}
          </select>
        </label>
        <button type="submit" class="small primary">
          Make invitation link
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {made?.url && (
        <p class="notice notice-ok" data-testid="invitation-created">
          Send this link (shown only now): <code data-testid="invitation-link">{absolute(made.url)}</code> <CopyButton text={absolute(made.url)} label="Copy link" />
        </p>
      )}
      {active.length > 0 && (
        <ul class="plain-list">
          {active.map((i) => (
            <li data-invitation={i.id}>
              {i.uses} of {i.max_uses} used · expires {when(i.expires_ms)}
              {i.created_by && ` · by ${i.created_by}`}{" "}
              <button type="button" class="small danger" onClick={() => revoke(i)}>
                Revoke
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** `/join/<token>`: what the invitation is for, and joining with it. */
export function JoinPage({ token }: { token: string }) {
  const preview = useAsync(() => get<InvitationPreview>(`/api/v1/groups/join/${encodeURIComponent(token)}`), [token]);
  const [error, setError] = useState<unknown>(undefined);
  const join = async () => {
    setError(undefined);
    try {
      await api("POST", `/api/v1/groups/join/${encodeURIComponent(token)}`);
      navigate("/groups");
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <PageTitle>Invitation</PageTitle>
      {preview.loading && !preview.data && <Loading label="Reading the invitation…" />}
      {preview.error !== undefined && <ErrorBox error={preview.error} />}
      {preview.data && (
        <div class="card join-card" data-testid="join-card">
          <h2>{preview.data.group}</h2>
          <p>
            {preview.data.invited_by ? `${preview.data.invited_by} invites you` : "You are invited"} to join the group <strong>{preview.data.group}</strong>. Its zones will fire for your phones too. Joining shares no location: you choose on the Sharing page whom you share with.
          </p>
          {preview.data.member && <Notice kind="ok">You are a member of this group already.</Notice>}
          {!preview.data.valid && !preview.data.member && <Notice kind="warn">{preview.data.reason}</Notice>}
          <div class="row-actions">
            {preview.data.valid && !preview.data.member && (
              <button type="button" class="primary" onClick={join}>
                Join {preview.data.group}
              </button>
            )}
            <a class="button small" href="/groups">
              Go to your groups
            </a>
          </div>
          {error !== undefined && <ErrorBox error={error} />}
        </div>
      )}
    </section>
  );
}

// Account: password change, retention, deleting the history or the whole
// account for everyone; for administrators the users of the instance (add,
// delete) and the settings that are safe to change while it runs
// (GET/PUT /api/v1/admin/settings).

import { useState } from "preact/hooks";
import { api, deleteMyAccount, deleteUser, get, leaveForLogin, type DeletedAccount, type Me, type User } from "../api";
import { formatCount } from "../format";
import { dateTime } from "../format";
import { ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import { DeleteButton, UndoToast, type DeleteOutcome } from "../components/Deleting";
import { ExposureAdmin } from "./Exposure";
import { IdentityProvider, Passkeys, TwoFactor } from "./SignIn";

export function Account({ me }: { me: Me }) {
  return (
    <section>
      <PageTitle>Account</PageTitle>
      <div class="split even">
        <PasswordForm />
        <div class="card">
          <h2>You</h2>
          <p>
            <strong>{me.user.name}</strong> {me.user.admin && <span class="badge">admin</span>}
            <br />
            <span class="muted">Account created {dateTime(me.user.created)}</span>
          </p>
          <p>
            <a href="/account/sessions">Sessions and tokens</a>
            {me.user.admin && (
              <>
                {" "}
                · <a href="/account/audit">Audit log</a>
              </>
            )}
            <br />
            <a href="/api/docs/">API documentation</a> · <a href="/api/v1/export?format=gpx">Export everything as GPX</a>
          </p>
        </div>
      </div>
      <div class="split even">
        <TwoFactor />
        <Passkeys />
      </div>
      <IdentityProvider />
      <div class="split even">
        <RetentionForm />
        <DeleteEverything />
      </div>
      {me.user.admin && (
        <>
          <Users me={me} />
          <Settings />
        </>
      )}
      <DeleteAccount me={me} />
    </section>
  );
}

interface RetentionPolicy {
  thin_after_days: number | null;
  keep_one_every_s: number;
}

/** The retention policy: thin old raw points (the timeline keeps its visits and trips). */
function RetentionForm() {
  const policy = useAsync(() => get<RetentionPolicy>("/api/v1/retention"), []);
  const [days, setDays] = useState<string | null>(null);
  const [seconds, setSeconds] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState(false);
  const current = policy.data;
  const daysValue = days ?? (current?.thin_after_days == null ? "" : String(current.thin_after_days));
  const secondsValue = seconds ?? String(current?.keep_one_every_s ?? 60);
  const submit = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setSaved(false);
    try {
      const answer = await api<RetentionPolicy>("PUT", "/api/v1/retention", {
        thin_after_days: daysValue.trim() === "" ? null : Number(daysValue),
        keep_one_every_s: Number(secondsValue),
      });
      policy.set(answer);
      setDays(null);
      setSeconds(null);
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="retention-title">
      <h2 id="retention-title">Retention</h2>
      <p class="muted">
        Thin raw points older than some days to one every so many seconds (for example one a minute after two years). Visits, trips and places stay; the
        hourly retention job does the thinning. Leave the days empty to keep every point.
      </p>
      {policy.error !== undefined && <ErrorBox error={policy.error} retry={policy.reload} />}
      <label>
        Thin points older than (days)
        <input type="number" min={30} value={daysValue} onInput={(e) => setDays(e.currentTarget.value)} placeholder="keep every point" />
      </label>
      <label>
        Keep one point every (seconds)
        <input type="number" min={1} max={3600} value={secondsValue} onInput={(e) => setSeconds(e.currentTarget.value)} required />
      </label>
      <button type="submit" class="primary">
        Save
      </button>
      {saved && <Notice kind="ok">Saved.</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

/** Deleting the whole history: every point of every device (the account and its devices stay). */
function DeleteEverything() {
  const [deleted, setDeleted] = useState<DeleteOutcome | null>(null);
  return (
    <div class="card" aria-labelledby="delete-all-title">
      <h2 id="delete-all-title">Delete your history</h2>
      <p class="muted">
        Deletes every point of every device. The deletion replicates, and importing the same files again leaves the points out (unless the import asks to restore
        deleted points). Your account, devices, tokens and places' names stay.
      </p>
      <DeleteButton
        label="Delete all my points"
        testId="delete-everything"
        confirmWord="DELETE"
        question={<>Delete your whole location history?</>}
        selection={{ everything: true }}
        onDeleted={setDeleted}
      />
      {deleted && <UndoToast outcome={deleted} onUndone={() => undefined} onClose={() => setDeleted(null)} />}
    </div>
  );
}

/**
 * The danger zone: deleting the account itself, with everything it holds.
 * Asks for the password (as the server does) and says plainly that there is
 * no undo; afterwards the session is gone, so the app shows the login page.
 */
function DeleteAccount({ me }: { me: Me }) {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await deleteMyAccount(password);
      leaveForLogin();
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <div class="card danger-zone" aria-labelledby="delete-account-title" data-testid="delete-account">
      <h2 id="delete-account-title">Delete account</h2>
      <p>
        Deletes the account <strong>{me.user.name}</strong> and everything it holds: every point of every device, the devices and their tokens, share links,
        friends, places, the timeline, imports and settings. <strong>This cannot be undone</strong>, and the deletion reaches the instances this one
        replicates to. Export your history first if you may want it again.
      </p>
      {!open ? (
        <button type="button" class="small danger" onClick={() => setOpen(true)} data-testid="delete-account-open">
          Delete my account…
        </button>
      ) : (
        <form class="confirm-delete" onSubmit={submit} aria-label="Confirm deleting your account">
          <label>
            Your password
            <input
              type="password"
              autoComplete="current-password"
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
              required
              data-testid="delete-account-password"
            />
          </label>
          <button type="submit" class="small danger primary" disabled={busy || password === ""} data-testid="delete-account-confirm">
            {busy ? "Deleting…" : "Delete my account for good"}
          </button>{" "}
          <button
            type="button"
            class="small"
            disabled={busy}
            onClick={() => {
              setOpen(false);
              setPassword("");
              setError(undefined);
            }}
          >
            Cancel
          </button>
          {error !== undefined && <ErrorBox error={error} />}
        </form>
      )}
    </div>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [done, setDone] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setDone(false);
    setError(undefined);
    if (next !== again) {
      setError(new Error("The two new passwords differ."));
      return;
    }
    try {
      await api("POST", "/api/v1/me/password", { current_password: current, new_password: next });
      setDone(true);
      setCurrent("");
      setNext("");
      setAgain("");
    } catch (e) {
      setError(e);
    }
  };
  return (
    <form class="card" onSubmit={submit} aria-labelledby="password-title">
      <h2 id="password-title">Change password</h2>
      <label>
        Current password <input type="password" autoComplete="current-password" value={current} onInput={(e) => setCurrent(e.currentTarget.value)} required />
      </label>
      <label>
        New password <input type="password" autoComplete="new-password" minLength={8} value={next} onInput={(e) => setNext(e.currentTarget.value)} required />
      </label>
      <label>
        New password again <input type="password" autoComplete="new-password" minLength={8} value={again} onInput={(e) => setAgain(e.currentTarget.value)} required />
      </label>
      <button type="submit" class="primary">
        Change password
      </button>
      {done && <Notice kind="ok">Password changed. Your other sessions were logged out.</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

/** A user's row: deleting asks first, in the row (an administrator cannot delete the only administrator). */
function UserRow({ user, me, onDeleted }: { user: User; me: Me; onDeleted: (d: DeletedAccount) => void }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const remove = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const deleted = await deleteUser(user.name);
      if (user.id === me.user.id) {
        leaveForLogin();
        return;
      }
      onDeleted(deleted);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <tr>
      <td>{user.name}</td>
      <td>
        {user.admin ? "admin" : "user"}
        {user.role && <span class="badge">{user.role}</span>}
      </td>
      <td>{dateTime(user.created)}</td>
      <td>
        {!asking ? (
          <button type="button" class="small danger" onClick={() => setAsking(true)} data-testid={`delete-user-${user.name}`}>
            Delete
          </button>
        ) : (
          <span class="confirm-inline" role="group" aria-label={`Delete ${user.name}`}>
            Delete {user.name} and all their data?{" "}
            <button type="button" class="small danger primary" disabled={busy} onClick={remove} data-testid={`delete-user-${user.name}-confirm`}>
              {busy ? "Deleting…" : "Delete"}
            </button>{" "}
            <button type="button" class="small" disabled={busy} onClick={() => setAsking(false)}>
              Cancel
            </button>
          </span>
        )}
        {error !== undefined && <ErrorBox error={error} />}
      </td>
    </tr>
  );
}

function Users({ me }: { me: Me }) {
  const users = useAsync(() => get<{ users: User[] }>("/api/v1/users"), []);
  const [deleted, setDeleted] = useState<DeletedAccount | null>(null);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const create = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api("POST", "/api/v1/users", { name: name.trim(), password, admin });
      setName("");
      setPassword("");
      setAdmin(false);
      users.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <div class="card">
      <h2>Users</h2>
      {users.loading && !users.data && <Loading />}
      {users.error !== undefined && <ErrorBox error={users.error} retry={users.reload} />}
      {users.data && (
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Role</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {users.data.users.map((u) => (
              <UserRow
                key={u.id}
                user={u}
                me={me}
                onDeleted={(d) => {
                  setDeleted(d);
                  users.reload();
                }}
              />
            ))}
          </tbody>
        </table>
      )}
      {deleted && (
        <Notice kind="ok">
          Deleted {deleted.name} with {formatCount(deleted.points)} points and {formatCount(deleted.devices)} devices.
        </Notice>
      )}
      <form class="toolbar" onSubmit={create}>
        <label>
          Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} required autoComplete="off" />
        </label>
        <label>
          Password <input type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} minLength={8} required autoComplete="new-password" />
        </label>
        <label class="inline">
          <input type="checkbox" checked={admin} onChange={(e) => setAdmin(e.currentTarget.checked)} /> Administrator
        </label>
        <button type="submit" class="small primary">
          Add user
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {users.data && <ExposureAdmin users={users.data.users} onRoles={users.reload} />}
    </div>
  );
}

const SETTINGS: [key: "instance_name" | "tile_url" | "tile_attribution", label: string, hint: string][] = [
  ["instance_name", "Instance name", "Shown in the title bar and on shared pages."],
  ["tile_url", "Basemap tile URL", "A raster tile template with {z}, {x} and {y}, e.g. https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
  ["tile_attribution", "Basemap attribution", "What the tile server's licence asks you to show."],
];

/** The thresholds of "who was I with" (docs/exposure.md): numbers with the server's bounds. */
const NUMBER_SETTINGS: [key: "together_max_distance_m" | "together_max_gap_s", label: string, hint: string, min: number, max: number, step: number][] = [
  ["together_max_distance_m", "Together: distance (metres)", "How close two friends' positions must be to count as together, 1 to 1000 m.", 1, 1000, 0.1],
  ["together_max_gap_s", "Together: time window (seconds)", "How close in time those positions must be, 1 to 3600 s (whole seconds).", 1, 3600, 1],
];

interface SiteSettings {
  instance_name: string;
  tile_url: string;
  tile_attribution: string;
  together_max_distance_m: number;
  together_max_gap_s: number;
  require_admin_2fa?: boolean;
  overridden?: string[];
  defaults?: { instance_name: string; tile_url: string; tile_attribution: string; together_max_distance_m: number; together_max_gap_s: number };
}

/** The body of a settings change: the thresholds as numbers, refusing what is not one in bounds. */
export function settingsBody(draft: Record<string, string | null>): { body: Record<string, string | number | null> } | { problem: string } {
  const body: Record<string, string | number | null> = { ...draft };
  for (const [key, label, , min, max, step] of NUMBER_SETTINGS) {
    const text = draft[key];
    if (text === undefined || text === null) continue;
    const value = Number(text);
    if (text.trim() === "" || !Number.isFinite(value) || value < min || value > max || (step === 1 && !Number.isInteger(value))) {
      return { problem: `${label}: ${step === 1 ? "a whole number" : "a number"} from ${min} to ${max}, not "${text}".` };
    }
    body[key] = value;
  }
  return { body };
}

function Settings() {
  const settings = useAsync(() => get<SiteSettings>("/api/v1/admin/settings"), []);
  const [draft, setDraft] = useState<Record<string, string | null>>({});
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  const send = async (body: Record<string, string | number | boolean | null>) => {
    setError(undefined);
    setSaved(false);
    try {
      settings.set(await api<SiteSettings>("PUT", "/api/v1/admin/settings", body));
      setDraft({});
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };
  const current = settings.data;
  return (
    <form
      class="card"
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        if (!Object.keys(draft).length) return;
        const checked = settingsBody(draft);
        setProblem("problem" in checked ? checked.problem : null);
        if ("body" in checked) send(checked.body);
      }}
      aria-labelledby="settings-title"
    >
      <h2 id="settings-title">Instance settings</h2>
      <p class="muted">These take effect at once, without a restart, and win over polo.toml until reset.</p>
      {settings.loading && !current && <Loading />}
      {settings.error !== undefined && <ErrorBox error={settings.error} retry={settings.reload} />}
      {current &&
        SETTINGS.map(([key, label, hint]) => (
          <div class="setting-row">
            <label>
              {label}
              <input value={draft[key] ?? current[key]} onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.value })} aria-describedby={`hint-${key}`} />
            </label>
            <p class="muted small-print" id={`hint-${key}`}>
              {hint}
              {current.overridden?.includes(key) && current.defaults && (
                <>
                  {" "}
                  Changed here; polo.toml says <code>{current.defaults[key]}</code>.{" "}
                  <button type="button" class="link" onClick={() => send({ [key]: null })}>
                    Reset
                  </button>
                </>
              )}
            </p>
          </div>
        ))}
      {current &&
        NUMBER_SETTINGS.map(([key, label, hint, min, max, step]) => (
          <div class="setting-row">
            <label>
              {label}
              <input
                type="number"
                inputMode="decimal"
                min={min}
                max={max}
                step={step}
                value={draft[key] ?? String(current[key])}
                onInput={(e) => setDraft({ ...draft, [key]: e.currentTarget.value })}
                aria-describedby={`hint-${key}`}
                aria-invalid={problem?.startsWith(label) ?? false}
                data-testid={`setting-${key}`}
              />
            </label>
            <p class="muted small-print" id={`hint-${key}`}>
              {hint}
              {current.overridden?.includes(key) && current.defaults && (
                <>
                  {" "}
                  Changed here; polo's default is <code>{current.defaults[key]}</code>.{" "}
                  <button type="button" class="link" onClick={() => send({ [key]: null })}>
                    Reset
                  </button>
                </>
              )}
            </p>
          </div>
        ))}
      {current && (
        <div class="setting-row">
          <label class="inline">
            <input type="checkbox" checked={current.require_admin_2fa === true} onChange={(e) => send({ require_admin_2fa: e.currentTarget.checked })} data-testid="setting-require_admin_2fa" />
            Administrators must use two-factor authentication
          </label>
          <p class="muted small-print">Admin pages and routes refuse administrators without it until they turn it on. Saved at once.</p>
        </div>
      )}
      {problem && (
        <p class="field-problem" role="alert">
          {problem}
        </p>
      )}
      <button type="submit" class="primary" disabled={Object.keys(draft).length === 0}>
        Save settings
      </button>
      {saved && <Notice kind="ok">Saved. Reload the page to see a new basemap.</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
    </form>
  );
}

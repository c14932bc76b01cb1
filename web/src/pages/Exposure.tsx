// The exposure check (docs/exposure.md): a user's own status with its signed
// code as a QR code (/exposure), the health authority's cases, proposals and
// audit log (/authority), and the verifier (/verify), which needs no account
// and checks codes offline once it has the instance's public key.

import { useEffect, useRef, useState } from "preact/hooks";
import QRCode from "qrcode";
import { api, ApiError, get, qs, type Me } from "../api";
import { dateTime } from "../format";
import { ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import { KEY_STORAGE, verifyCode, type Verdict } from "../exposure";

interface Status {
  status: "clear" | "exposed";
  since: string;
  valid_until: string;
  code: string;
}

function Disabled() {
  return <Notice>Exposure checks are not enabled on this instance. An administrator turns them on under Account.</Notice>;
}

const isDisabled = (e: unknown) => e instanceof ApiError && e.code === "exposure_disabled";

/** The caller's own status and code; refreshed when the live stream says it changed. */
export function MyStatus() {
  const [tick, setTick] = useState(0);
  const status = useAsync(() => get<Status>("/api/v1/exposure/status"), [tick]);
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const events = new EventSource("/api/v1/live");
    events.addEventListener("exposure", () => setTick((n) => n + 1));
    return () => events.close();
  }, []);
  useEffect(() => {
    if (status.data && canvas.current) QRCode.toCanvas(canvas.current, status.data.code, { errorCorrectionLevel: "M", margin: 2, width: 260 }).catch(() => undefined);
  }, [status.data?.code]);
  return (
    <section>
      <PageTitle>Exposure status</PageTitle>
      {status.error !== undefined ? (
        isDisabled(status.error) ? <Disabled /> : <ErrorBox error={status.error} retry={() => setTick((n) => n + 1)} />
      ) : !status.data ? (
        <Loading />
      ) : (
        <div class="card" data-testid="exposure-status">
          <h2 class={status.data.status === "exposed" ? "warn" : "ok"}>{status.data.status === "exposed" ? "Exposed" : "Clear"}</h2>
          <p>
            Since {dateTime(status.data.since)}, valid until {dateTime(status.data.valid_until)}.
          </p>
          <canvas ref={canvas} aria-label="Your signed status code as a QR code" />
          <p class="muted">
            Anyone can check this code with the instance's public key on the <a href="/verify">verifier page</a>. It states your status and
            your user number, nothing about whom or where.
          </p>
          <details>
            <summary>Code as text</summary>
            <code class="token">{status.data.code}</code>
          </details>
        </div>
      )}
    </section>
  );
}

/** Checks a code in the browser with the instance's public key, which it keeps for offline use. */
export function Verify() {
  const [key, setKey] = useState<string | null>(() => localStorage.getItem(KEY_STORAGE));
  const [keyError, setKeyError] = useState<unknown>(undefined);
  const [code, setCode] = useState("");
  const [verdict, setVerdict] = useState<Verdict | null>(null);
  useEffect(() => {
    get<{ public_key: string }>("/api/v1/exposure/public-key").then(
      (k) => {
        localStorage.setItem(KEY_STORAGE, k.public_key);
        setKey(k.public_key);
      },
      (e) => setKeyError(e),
    );
  }, []);
  const check = async (event: Event) => {
    event.preventDefault();
    if (key) setVerdict(await verifyCode(code, key));
  };
  return (
    <div class="shell public">
      <header class="topbar">
        <span class="brand">polo</span>
        <span class="muted">Status check</span>
      </header>
      <main id="main">
        <section>
          <PageTitle>Verify a status code</PageTitle>
          {!key && keyError !== undefined && (isDisabled(keyError) ? <Disabled /> : <ErrorBox error={keyError} />)}
          {key && keyError !== undefined && <Notice>Offline: checking with the key kept from an earlier visit.</Notice>}
          <form class="card" onSubmit={check}>
            <label>
              Code (the text of the QR code)
              <textarea value={code} rows={3} onInput={(e) => setCode(e.currentTarget.value)} data-testid="verify-code" />
            </label>
            <button type="submit" class="primary" disabled={!key || !code.trim()}>
              Check
            </button>
          </form>
          {verdict && (
            <div class="card" data-testid="verify-result">
              {verdict.ok ? (
                <p>
                  <strong>{verdict.expired ? "Expired" : "Genuine"}</strong>: user #{verdict.claim.user} is <strong>{verdict.claim.status}</strong>,
                  valid until {new Date(verdict.claim.validUntil).toISOString()} (issued {new Date(verdict.claim.issued).toISOString()}).
                </p>
              ) : (
                <p>
                  <strong>Not valid</strong>: {verdict.reason}.
                </p>
              )}
            </div>
          )}
          {key && (
            <p class="muted">
              Instance key (Ed25519): <code>{key}</code>
            </p>
          )}
        </section>
      </main>
    </div>
  );
}

interface Case {
  id: string;
  user: string;
  infectious_from: string;
  infectious_to: string;
  marked_by: string;
  marked_at: string;
  note: string;
  withdrawn_at: string | null;
}

interface Contact {
  user: string;
  window: string;
  first: string;
  last: string;
  minutes: number;
  pairs: number;
  min_distance_m: number;
}

interface Proposal {
  case: string;
  user: string;
  state: string;
  status: string;
  evidence: { minutes: number; encounters: number; pairs: number; first: string; last: string; min_distance_m: number };
  created: string;
  decided_by: string | null;
  decided_at: string | null;
  reason: string | null;
}

interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string | null;
  detail: unknown;
}

/** The health authority's page. */
export function Authority({ me }: { me: Me }) {
  const [tick, setTick] = useState(0);
  const refresh = () => setTick((n) => n + 1);
  if (me.user.role !== "health-authority") return <Notice>This page is for the health authority.</Notice>;
  return (
    <section>
      <PageTitle>Health authority</PageTitle>
      <Cases tick={tick} onChange={refresh} />
      <Proposals tick={tick} onChange={refresh} />
      <Audit tick={tick} />
    </section>
  );
}

function Cases({ tick, onChange }: { tick: number; onChange: () => void }) {
  const cases = useAsync(() => get<{ cases: Case[] }>("/api/v1/exposure/cases"), [tick]);
  const [user, setUser] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [open, setOpen] = useState<string | null>(null);
  const mark = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    try {
      await api("POST", "/api/v1/exposure/cases", { user: user.trim(), infectious_from: `${from}:00Z`, infectious_to: `${to}:00Z`, note });
      setUser("");
      setNote("");
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  const withdraw = async (id: string) => {
    const reason = prompt("Why is the case withdrawn? (kept in the audit log)");
    if (!reason) return;
    try {
      await api("POST", `/api/v1/exposure/cases/${encodeURIComponent(id)}/withdraw`, { reason });
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  if (cases.error !== undefined) return isDisabled(cases.error) ? <Disabled /> : <ErrorBox error={cases.error} />;
  return (
    <div class="card">
      <h2>Cases</h2>
      <form onSubmit={mark} class="row">
        <label>
          User <input value={user} required onInput={(e) => setUser(e.currentTarget.value)} data-testid="case-user" />
        </label>
        <label>
          Infectious from (UTC) <input type="datetime-local" value={from} required onInput={(e) => setFrom(e.currentTarget.value)} />
        </label>
        <label>
          until (UTC) <input type="datetime-local" value={to} required onInput={(e) => setTo(e.currentTarget.value)} />
        </label>
        <label>
          Note <input value={note} onInput={(e) => setNote(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary">
          Mark as case
        </button>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {!cases.data ? (
        <Loading />
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th>User</th>
              <th>Infectious</th>
              <th>Marked</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {cases.data.cases.map((c) => (
              <>
                <tr>
                  <td>{c.user}</td>
                  <td>
                    {dateTime(c.infectious_from)} – {dateTime(c.infectious_to)}
                  </td>
                  <td>
                    {c.marked_by}, {dateTime(c.marked_at)}
                    {c.withdrawn_at && <span class="badge">withdrawn {dateTime(c.withdrawn_at)}</span>}
                  </td>
                  <td>
                    <button type="button" class="small" onClick={() => setOpen(open === c.id ? null : c.id)}>
                      Contacts
                    </button>{" "}
                    {!c.withdrawn_at && (
                      <button type="button" class="small danger" onClick={() => withdraw(c.id)}>
                        Withdraw
                      </button>
                    )}
                  </td>
                </tr>
                {open === c.id && (
                  <tr>
                    <td colSpan={4}>
                      <Contacts id={c.id} />
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Contacts({ id }: { id: string }) {
  const contacts = useAsync(() => get<{ contacts: Contact[] }>(`/api/v1/exposure/cases/${encodeURIComponent(id)}/contacts`), [id]);
  if (contacts.error !== undefined) return <ErrorBox error={contacts.error} />;
  if (!contacts.data) return <Loading />;
  if (contacts.data.contacts.length === 0) return <p class="muted">No contacts (yet: windows are computed once complete).</p>;
  return (
    <table class="data">
      <thead>
        <tr>
          <th>Contact</th>
          <th>Window</th>
          <th>First – last</th>
          <th>Minutes</th>
          <th>Closest</th>
        </tr>
      </thead>
      <tbody>
        {contacts.data.contacts.map((c) => (
          <tr>
            <td>{c.user}</td>
            <td>{dateTime(c.window)}</td>
            <td>
              {dateTime(c.first)} – {dateTime(c.last)}
            </td>
            <td>{c.minutes}</td>
            <td>{c.min_distance_m.toFixed(1)} m</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Proposals({ tick, onChange }: { tick: number; onChange: () => void }) {
  const proposals = useAsync(() => get<{ proposals: Proposal[] }>(`/api/v1/exposure/proposals${qs({ state: "pending" })}`), [tick]);
  const [error, setError] = useState<unknown>(undefined);
  const decide = async (p: Proposal, approve: boolean) => {
    const reason = prompt(approve ? "Why approve? (kept in the audit log)" : "Why reject? (kept in the audit log)");
    if (!reason) return;
    try {
      await api("POST", `/api/v1/exposure/proposals/${encodeURIComponent(p.case)}/${encodeURIComponent(p.user)}/decision`, { approve, reason });
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  if (proposals.error !== undefined) return isDisabled(proposals.error) ? null : <ErrorBox error={proposals.error} />;
  return (
    <div class="card">
      <h2>Pending proposals</h2>
      {error !== undefined && <ErrorBox error={error} />}
      {!proposals.data ? (
        <Loading />
      ) : proposals.data.proposals.length === 0 ? (
        <p class="muted">Nothing waits for a decision.</p>
      ) : (
        <table class="data">
          <thead>
            <tr>
              <th>Contact</th>
              <th>Proposed</th>
              <th>Evidence</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {proposals.data.proposals.map((p) => (
              <tr>
                <td>{p.user}</td>
                <td>{p.status}</td>
                <td>
                  {p.evidence.minutes} min over {p.evidence.encounters} encounter(s), closest {p.evidence.min_distance_m.toFixed(1)} m,{" "}
                  {dateTime(p.evidence.first)} – {dateTime(p.evidence.last)}
                </td>
                <td>
                  <button type="button" class="small primary" onClick={() => decide(p, true)}>
                    Approve
                  </button>{" "}
                  <button type="button" class="small" onClick={() => decide(p, false)}>
                    Reject
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function Audit({ tick }: { tick: number }) {
  const audit = useAsync(() => get<{ entries: AuditEntry[] }>("/api/v1/exposure/audit"), [tick]);
  if (audit.error !== undefined) return isDisabled(audit.error) ? null : <ErrorBox error={audit.error} />;
  if (!audit.data) return <Loading />;
  return (
    <div class="card">
      <h2>Audit log</h2>
      <table class="data">
        <thead>
          <tr>
            <th>When</th>
            <th>Who</th>
            <th>What</th>
            <th>Whom</th>
            <th>Why, evidence</th>
          </tr>
        </thead>
        <tbody>
          {audit.data.entries.map((e) => (
            <tr>
              <td>{dateTime(e.at)}</td>
              <td>{e.actor}</td>
              <td>{e.action}</td>
              <td>{e.subject ?? ""}</td>
              <td>
                <details>
                  <summary>{reasonOf(e.detail) ?? "Details"}</summary>
                  <code class="token">{JSON.stringify(e.detail, null, 1)}</code>
                </details>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The reason a person gave for an audited decision, when there is one: the summary of its row. */
function reasonOf(detail: unknown): string | undefined {
  const reason = typeof detail === "object" && detail !== null ? (detail as { reason?: unknown }).reason : undefined;
  return typeof reason === "string" && reason.trim() ? reason : undefined;
}

type SettingsMap = Record<string, number | boolean>;

/** The exposure settings and who has the health-authority role (administrators, on the Account page). */
export function ExposureAdmin({ users, onRoles }: { users: { name: string; role?: string | null }[]; onRoles: () => void }) {
  const settings = useAsync(() => get<{ settings: SettingsMap; defaults: SettingsMap }>("/api/v1/admin/exposure"), []);
  const [draft, setDraft] = useState<SettingsMap>({});
  const [error, setError] = useState<unknown>(undefined);
  const [saved, setSaved] = useState(false);
  const save = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    setSaved(false);
    try {
      settings.set(await api<{ settings: SettingsMap; defaults: SettingsMap }>("PUT", "/api/v1/admin/exposure", draft));
      setDraft({});
      setSaved(true);
    } catch (e) {
      setError(e);
    }
  };
  const setRole = async (name: string, role: string | null) => {
    try {
      await api("PUT", `/api/v1/users/${encodeURIComponent(name)}/role`, { role });
      onRoles();
    } catch (e) {
      setError(e);
    }
  };
  if (settings.error !== undefined) return <ErrorBox error={settings.error} />;
  if (!settings.data) return <Loading />;
  const current = { ...settings.data.settings, ...draft };
  return (
    <div class="card">
      <h2>Exposure checks</h2>
      <p class="muted">Off until enabled. Only users with the health-authority role see other people's encounters; see docs/exposure.md.</p>
      <form onSubmit={save}>
        {Object.entries(current).map(([name, value]) => (
          <label>
            {name}{" "}
            {typeof value === "boolean" ? (
              <input type="checkbox" checked={value} onChange={(e) => setDraft({ ...draft, [name]: e.currentTarget.checked })} data-testid={`exposure-${name}`} />
            ) : (
              <input type="number" step="any" value={value} onInput={(e) => setDraft({ ...draft, [name]: Number(e.currentTarget.value) })} />
            )}
          </label>
        ))}
        <button type="submit" class="primary" disabled={Object.keys(draft).length === 0}>
          Save
        </button>
        {saved && <Notice kind="ok">Saved.</Notice>}
      </form>
      <h3>Health authority</h3>
      <ul>
        {users.map((u) => (
          <li>
            {u.name}{" "}
            {u.role === "health-authority" ? (
              <button type="button" class="small" onClick={() => setRole(u.name, null)}>
                Take the health-authority role
              </button>
            ) : (
              <button type="button" class="small" onClick={() => setRole(u.name, "health-authority")}>
                Make health authority
              </button>
            )}
          </li>
        ))}
      </ul>
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

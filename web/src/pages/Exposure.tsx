// The exposure check (docs/exposure.md): a user's own status with its signed
// code as a QR code (/exposure), the health authority's cases, proposals and
// audit log (/authority), and the verifier (/verify), which needs no account
// and checks codes offline once it has the instance's public key.

import { useEffect, useRef, useState } from "preact/hooks";
import QRCode from "qrcode";
import { api, ApiError, get, qs, type Me } from "../api";
import { dateTime } from "../format";
import { ErrorBox, Loading, Notice, PageTitle, useAsync } from "../components/ui";
import { KEY_STORAGE, periodProblem, reasonProblem, verifyCode, type Verdict } from "../exposure";
import { cameraError, cameraUnavailable, scanCamera, scanImage, type Scan } from "../qrscan";

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
  const [scanning, setScanning] = useState(false);
  const [scanNote, setScanNote] = useState<string | null>(null);
  const video = useRef<HTMLVideoElement>(null);
  const scan = useRef<Scan | null>(null);
  useEffect(() => {
    get<{ public_key: string }>("/api/v1/exposure/public-key").then(
      (k) => {
        localStorage.setItem(KEY_STORAGE, k.public_key);
        setKey(k.public_key);
      },
      (e) => setKeyError(e),
    );
    return () => scan.current?.stop();
  }, []);
  const checkText = async (text: string) => {
    setCode(text);
    if (key && text.trim()) setVerdict(await verifyCode(text, key));
  };
  const check = async (event: Event) => {
    event.preventDefault();
    await checkText(code);
  };
  const startCamera = async () => {
    const why = cameraUnavailable();
    if (why) {
      setScanNote(why);
      return;
    }
    setScanNote(null);
    setVerdict(null);
    setScanning(true);
    try {
      // The video element is rendered once `scanning` is set.
      await new Promise((resolve) => requestAnimationFrame(resolve));
      if (!video.current) throw new Error("no video element");
      scan.current = await scanCamera(video.current, (text) => {
        scan.current = null;
        setScanning(false);
        void checkText(text);
      });
    } catch (e) {
      setScanning(false);
      setScanNote(cameraError(e));
    }
  };
  const stopCamera = () => {
    scan.current?.stop();
    scan.current = null;
    setScanning(false);
  };
  const fromPhoto = async (event: Event) => {
    const input = event.currentTarget as HTMLInputElement;
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    setScanNote(null);
    try {
      const text = await scanImage(file);
      if (text) await checkText(text);
      else setScanNote("No QR code was found in that picture. Try a sharper, closer one, or paste the code.");
    } catch {
      setScanNote("That file could not be read as a picture.");
    }
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
          <div class="card scan" aria-labelledby="scan-title">
            <h2 id="scan-title">Scan the QR code</h2>
            {scanning ? (
              <>
                <video ref={video} class="scan-video" aria-label="Camera view: hold the QR code in the frame" data-testid="scan-video" />
                <p class="muted" role="status">
                  Looking for a QR code…
                </p>
                <button type="button" onClick={stopCamera}>
                  Stop the camera
                </button>
              </>
            ) : (
              <div class="row-actions">
                <button type="button" class="primary" onClick={startCamera} disabled={!key} data-testid="scan-camera">
                  Scan with the camera
                </button>
                <label class="file-button">
                  Read a photo of the code
                  <input type="file" accept="image/*" onChange={fromPhoto} disabled={!key} data-testid="scan-photo" />
                </label>
              </div>
            )}
            {scanNote && <Notice kind="warn">{scanNote}</Notice>}
          </div>
          <form class="card" onSubmit={check}>
            <label>
              Or paste the code (the text of the QR code)
              <textarea value={code} rows={3} onInput={(e) => setCode(e.currentTarget.value)} data-testid="verify-code" />
            </label>
            <button type="submit" class="primary" disabled={!key || !code.trim()}>
              Check
            </button>
          </form>
          {verdict && (
            <div class={`card verdict ${verdict.ok && !verdict.expired ? (verdict.claim.status === "exposed" ? "warn" : "ok") : "bad"}`} data-testid="verify-result" role="status">
              {verdict.ok ? (
                <p>
                  <strong>{verdict.expired ? "Expired" : "Genuine"}</strong>: user #{verdict.claim.user} is <strong>{verdict.claim.status}</strong>,
                  valid until {dateTime(new Date(verdict.claim.validUntil).toISOString())} (issued {dateTime(new Date(verdict.claim.issued).toISOString())}).
                </p>
              ) : (
                <p>
                  <strong>Not valid</strong>: {verdict.reason}.
                </p>
              )}
            </div>
          )}
          {key && (
            <p class="muted key-line">
              Instance key (Ed25519): <code>{key}</code>
            </p>
          )}
        </section>
      </main>
    </div>
  );
}

/**
 * An in-page form asking why, for a decision the audit log keeps: a labelled text area, checked
 * before it is sent (and by the server), confirm and cancel. Escape cancels; the text area takes
 * the focus when the form opens.
 */
function ReasonForm({
  title,
  action,
  danger = false,
  onSubmit,
  onCancel,
  testId,
}: {
  title: string;
  action: string;
  danger?: boolean;
  onSubmit: (reason: string) => Promise<void>;
  onCancel: () => void;
  testId: string;
}) {
  const [text, setText] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const area = useRef<HTMLTextAreaElement>(null);
  const id = `${testId}-reason`;
  useEffect(() => area.current?.focus(), []);
  const submit = async (event: Event) => {
    event.preventDefault();
    const why = reasonProblem(text);
    setProblem(why);
    if (why) {
      area.current?.focus();
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await onSubmit(text.trim());
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  return (
    <form class="reason-form" onSubmit={submit} onKeyDown={(e) => e.key === "Escape" && onCancel()} aria-label={title} data-testid={testId} noValidate>
      <label for={id}>{title}</label>
      <textarea
        id={id}
        ref={area}
        rows={2}
        value={text}
        maxLength={1000}
        aria-invalid={problem !== null}
        aria-describedby={problem ? `${id}-problem` : `${id}-hint`}
        onInput={(e) => {
          setText(e.currentTarget.value);
          if (problem) setProblem(reasonProblem(e.currentTarget.value));
        }}
      />
      {problem ? (
        <p id={`${id}-problem`} class="field-problem" role="alert">
          {problem}
        </p>
      ) : (
        <p id={`${id}-hint`} class="muted hint">
          Kept in the audit log with the decision and its evidence.
        </p>
      )}
      <div class="row-actions">
        <button type="submit" class={danger ? "small danger primary" : "small primary"} disabled={busy} data-testid={`${testId}-confirm`}>
          {busy ? "Saving…" : action}
        </button>
        <button type="button" class="small" disabled={busy} onClick={onCancel}>
          Cancel
        </button>
      </div>
      {error !== undefined && <ErrorBox error={error} />}
    </form>
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
  const [problem, setProblem] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [withdrawing, setWithdrawing] = useState<string | null>(null);
  const mark = async (event: Event) => {
    event.preventDefault();
    setError(undefined);
    const why = periodProblem(user, from, to, Date.now());
    setProblem(why);
    if (why) return;
    try {
      await api("POST", "/api/v1/exposure/cases", { user: user.trim(), infectious_from: `${from}:00Z`, infectious_to: `${to}:00Z`, note });
      setUser("");
      setNote("");
      onChange();
    } catch (e) {
      setError(e);
    }
  };
  const withdraw = async (id: string, reason: string) => {
    await api("POST", `/api/v1/exposure/cases/${encodeURIComponent(id)}/withdraw`, { reason });
    setWithdrawing(null);
    onChange();
  };
  if (cases.error !== undefined) return isDisabled(cases.error) ? <Disabled /> : <ErrorBox error={cases.error} />;
  return (
    <div class="card">
      <h2>Cases</h2>
      <form onSubmit={mark} class="row case-form" noValidate aria-describedby={problem ? "case-problem" : undefined}>
        <label>
          User <input value={user} required autoComplete="off" onInput={(e) => setUser(e.currentTarget.value)} data-testid="case-user" />
        </label>
        <label>
          Infectious from (UTC) <input type="datetime-local" value={from} required onInput={(e) => setFrom(e.currentTarget.value)} data-testid="case-from" />
        </label>
        <label>
          until (UTC) <input type="datetime-local" value={to} required onInput={(e) => setTo(e.currentTarget.value)} data-testid="case-to" />
        </label>
        <label>
          Note <input value={note} maxLength={1000} onInput={(e) => setNote(e.currentTarget.value)} data-testid="case-note" />
        </label>
        <button type="submit" class="primary" data-testid="case-mark">
          Mark as case
        </button>
      </form>
      {problem && (
        <p id="case-problem" class="field-problem" role="alert">
          {problem}
        </p>
      )}
      {error !== undefined && <ErrorBox error={error} />}
      {!cases.data ? (
        <Loading />
      ) : cases.data.cases.length === 0 ? (
        <p class="muted">No cases yet.</p>
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
                    {!c.withdrawn_at && withdrawing !== c.id && (
                      <button type="button" class="small danger" onClick={() => setWithdrawing(c.id)} data-testid="case-withdraw">
                        Withdraw
                      </button>
                    )}
                  </td>
                </tr>
                {withdrawing === c.id && (
                  <tr>
                    <td colSpan={4}>
                      <ReasonForm
                        title={`Why is the case of ${c.user} withdrawn?`}
                        action="Withdraw the case"
                        danger
                        onSubmit={(reason) => withdraw(c.id, reason)}
                        onCancel={() => setWithdrawing(null)}
                        testId="withdraw-form"
                      />
                    </td>
                  </tr>
                )}
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
  const [deciding, setDeciding] = useState<{ key: string; approve: boolean } | null>(null);
  const decide = async (p: Proposal, approve: boolean, reason: string) => {
    await api("POST", `/api/v1/exposure/proposals/${encodeURIComponent(p.case)}/${encodeURIComponent(p.user)}/decision`, { approve, reason });
    setDeciding(null);
    onChange();
  };
  if (proposals.error !== undefined) return isDisabled(proposals.error) ? null : <ErrorBox error={proposals.error} />;
  return (
    <div class="card">
      <h2>Pending proposals</h2>
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
            {proposals.data.proposals.map((p) => {
              const key = `${p.case}/${p.user}`;
              const asking = deciding?.key === key ? deciding : null;
              return (
                <>
                  <tr data-testid="proposal">
                    <td>{p.user}</td>
                    <td>{p.status}</td>
                    <td>
                      {p.evidence.minutes} min over {p.evidence.encounters} encounter(s), closest {p.evidence.min_distance_m.toFixed(1)} m,{" "}
                      {dateTime(p.evidence.first)} – {dateTime(p.evidence.last)}
                    </td>
                    <td class="nowrap">
                      <button type="button" class="small primary" aria-pressed={asking?.approve === true} onClick={() => setDeciding({ key, approve: true })} data-testid="proposal-approve">
                        Approve
                      </button>{" "}
                      <button type="button" class="small" aria-pressed={asking?.approve === false} onClick={() => setDeciding({ key, approve: false })} data-testid="proposal-reject">
                        Reject
                      </button>
                    </td>
                  </tr>
                  {asking && (
                    <tr>
                      <td colSpan={4}>
                        <ReasonForm
                          key={`${key}-${asking.approve}`}
                          title={asking.approve ? `Why is ${p.user} to be marked ${p.status}?` : `Why is the proposal for ${p.user} rejected?`}
                          action={asking.approve ? "Approve" : "Reject"}
                          danger={!asking.approve}
                          onSubmit={(reason) => decide(p, asking.approve, reason)}
                          onCancel={() => setDeciding(null)}
                          testId="decision-form"
                        />
                      </td>
                    </tr>
                  )}
                </>
              );
            })}
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

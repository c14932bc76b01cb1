// Two pages reached from Account: the caller's sessions and device tokens
// (GET /api/v1/me/sessions; revoke with DELETE /api/v1/me/sessions/{id} or
// DELETE /api/v1/tokens/{id}), and, for administrators, the audit log
// (GET /api/v1/admin/audit) with its filters and older pages.

import { useState } from "preact/hooks";
import { api, get, leaveForLogin, qs } from "../api";
import { dateTime } from "../format";
import { ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";

interface SessionRow {
  id: string;
  created: string;
  expires: string;
  last_used: string;
  address: string | null;
  method: string;
  current: boolean;
}

interface TokenRow {
  id: number;
  label: string;
  device: string;
  created: string;
  last_used: string | null;
  address: string | null;
}

/** Where you are signed in, with a revoke button for each. */
export function Sessions() {
  const data = useAsync(() => get<{ sessions: SessionRow[]; tokens: TokenRow[] }>("/api/v1/me/sessions"), []);
  const [error, setError] = useState<unknown>(undefined);
  const revoke = async (path: string, current = false) => {
    setError(undefined);
    try {
      await api("DELETE", path);
      if (current) {
        leaveForLogin();
        return;
      }
      data.reload();
    } catch (e) {
      setError(e);
    }
  };
  return (
    <section>
      <PageTitle actions={<a href="/account">Back to the account</a>}>Sessions and tokens</PageTitle>
      {error !== undefined && <ErrorBox error={error} />}
      {data.loading && !data.data && <Loading />}
      {data.error !== undefined && <ErrorBox error={data.error} retry={data.reload} />}
      {data.data && (
        <>
          <div class="card">
            <h2>Signed-in browsers</h2>
            <table class="data" data-testid="sessions">
              <thead>
                <tr>
                  <th scope="col">Last used</th>
                  <th scope="col">Address</th>
                  <th scope="col">Signed in</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.data.sessions.map((s) => (
                  <tr data-session={s.id}>
                    <td>
                      {dateTime(s.last_used)} {s.current && <span class="badge">this browser</span>}
                    </td>
                    <td>{s.address ?? "–"}</td>
                    <td>
                      {dateTime(s.created)} <span class="muted">({s.method === "oidc" ? "identity provider" : s.method === "passkey" ? "passkey" : "password"})</span>
                    </td>
                    <td>
                      <button type="button" class="small" onClick={() => revoke(`/api/v1/me/sessions/${s.id}`, s.current)}>
                        {s.current ? "Sign out" : "Revoke"}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <div class="card">
            <h2>Device tokens</h2>
            {data.data.tokens.length === 0 ? (
              <p class="muted">No device tokens. The Devices page makes them.</p>
            ) : (
              <table class="data" data-testid="tokens">
                <thead>
                  <tr>
                    <th scope="col">Device</th>
                    <th scope="col">Label</th>
                    <th scope="col">Last used</th>
                    <th scope="col">Address</th>
                    <th scope="col">
                      <span class="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {data.data.tokens.map((t) => (
                    <tr data-token={t.id}>
                      <td>{t.device}</td>
                      <td>{t.label || <span class="muted">–</span>}</td>
                      <td>{t.last_used ? dateTime(t.last_used) : "never"}</td>
                      <td>{t.address ?? "–"}</td>
                      <td>
                        <button type="button" class="small" onClick={() => revoke(`/api/v1/tokens/${t.id}`)}>
                          Revoke
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </div>
        </>
      )}
    </section>
  );
}

interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  subject: string | null;
  detail: Record<string, unknown> | string;
}

interface Filters {
  action: string;
  actor: string;
  user: string;
  since: string;
}

const EMPTY: Filters = { action: "", actor: "", user: "", since: "" };

/** The audit log (administrators): filters, newest first, older pages on demand. */
export function AuditLog() {
  const [filters, setFilters] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [before, setBefore] = useState<number | null>(null);
  const page = useAsync(
    () =>
      get<{ entries: AuditEntry[]; next_before: number | null }>(
        `/api/v1/admin/audit${qs({
          action: applied.action || undefined,
          actor: applied.actor || undefined,
          user: applied.user || undefined,
          since: applied.since ? new Date(applied.since).toISOString() : undefined,
          before: before ?? undefined,
          limit: 50,
        })}`,
      ),
    [applied, before],
  );
  const apply = (event: Event) => {
    event.preventDefault();
    setBefore(null);
    setApplied(filters);
  };
  const field = (key: "action" | "actor" | "user", label: string, placeholder = "") => (
    <label>
      {label}
      <input name={key} placeholder={placeholder} value={filters[key]} onInput={(e) => setFilters({ ...filters, [key]: e.currentTarget.value })} />
    </label>
  );
  return (
    <section>
      <PageTitle actions={<a href="/account">Back to the account</a>}>Audit log</PageTitle>
      <form class="card toolbar" onSubmit={apply} aria-label="Filters">
        {field("action", "Action starts with", "auth.")}
        {field("actor", "Actor")}
        {field("user", "About user")}
        <label>
          Since
          <input type="datetime-local" name="since" value={filters.since} onInput={(e) => setFilters({ ...filters, since: e.currentTarget.value })} />
        </label>
        <button type="submit" class="primary">
          Filter
        </button>
      </form>
      {page.loading && !page.data && <Loading />}
      {page.error !== undefined && <ErrorBox error={page.error} retry={page.reload} />}
      {page.data && (
        <div class="card">
          {page.data.entries.length === 0 ? (
            <p class="muted">No entries match.</p>
          ) : (
            <table class="data audit" data-testid="audit">
              <thead>
                <tr>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">About</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {page.data.entries.map((e) => (
                  <tr data-action={e.action}>
                    <td>{dateTime(e.at)}</td>
                    <td>{e.actor || <span class="muted">–</span>}</td>
                    <td>
                      <code>{e.action}</code>
                    </td>
                    <td>{e.subject ?? "–"}</td>
                    <td class="small-print">
                      {typeof e.detail === "string"
                        ? e.detail
                        : Object.entries(e.detail)
                            .map(([k, v]) => `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}`)
                            .join(" · ")}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <p>
            {before !== null && (
              <button type="button" class="small" onClick={() => setBefore(null)}>
                Newest
              </button>
            )}{" "}
            {page.data.next_before !== null && (
              <button type="button" class="small" onClick={() => setBefore(page.data?.next_before ?? null)}>
                Older
              </button>
            )}
          </p>
        </div>
      )}
    </section>
  );
}

// The account page's sign-in cards: two-factor authentication
// (/api/v1/me/2fa: enrol with a QR code, confirm with a code, recovery
// codes shown once, turn off with a code), passkeys (/api/v1/me/passkeys:
// register one in this browser, list, remove) and the link to the identity
// provider (GET|POST|DELETE /api/v1/me/oidc). Linking is a navigation: POST
// answers the provider's URL, the browser goes there and the callback
// returns to /account?oidc=linked (or ?oidc_error=…).

import QRCode from "qrcode";
import { useEffect, useState } from "preact/hooks";
import { api, get } from "../api";
import { CopyButton, ErrorBox, Loading, Notice, useAsync } from "../components/ui";
import { dateTime } from "../format";
import { passkeysSupported, registerPasskey, type PasskeyView } from "../passkeys";

interface TwoFactorView {
  enabled: boolean;
  pending: boolean;
  recovery_codes_left: number;
  passkeys: number;
  required_for_admins: boolean;
}

/** The QR code of an otpauth:// URL, as an image. */
function Qr({ text }: { text: string }) {
  const [src, setSrc] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    QRCode.toDataURL(text, { margin: 1, width: 220 }).then((url) => live && setSrc(url));
    return () => {
      live = false;
    };
  }, [text]);
  return src ? <img src={src} width={220} height={220} alt="QR code for the authenticator app" class="qr" /> : <Loading />;
}

/** Two-factor authentication: enrol, confirm, see the recovery codes once, turn off. */
export function TwoFactor() {
  const status = useAsync(() => get<TwoFactorView>("/api/v1/me/2fa"), []);
  const [enrolment, setEnrolment] = useState<{ secret: string; otpauth_url: string } | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [code, setCode] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    try {
      await work();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  if (status.loading && !status.data) return <Loading />;
  if (status.error !== undefined) return <ErrorBox error={status.error} retry={status.reload} />;
  const view = status.data;
  if (!view) return null;
  const start = () => run(async () => setEnrolment(await api("POST", "/api/v1/me/2fa")));
  const confirm = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      const reply = await api<{ recovery_codes: string[] }>("POST", "/api/v1/me/2fa/confirm", { code });
      setCodes(reply.recovery_codes);
      setEnrolment(null);
      setCode("");
      status.reload();
    });
  };
  const turnOff = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      await api("POST", "/api/v1/me/2fa/disable", { code });
      setCode("");
      setCodes(null);
      status.reload();
    });
  };
  return (
    <div class="card" aria-labelledby="twofactor-title" id="twofactor-card">
      <h2 id="twofactor-title">Two-factor authentication</h2>
      {view.required_for_admins && !view.enabled && view.passkeys === 0 && <Notice kind="warn">This instance requires administrators to use it.</Notice>}
      {codes && (
        <div class="recovery-codes">
          <Notice kind="ok">On. Keep these recovery codes somewhere safe: each signs in once without the phone. They are not shown again.</Notice>
          <pre data-testid="recovery-codes">{codes.join("\n")}</pre>
          <CopyButton text={codes.join("\n")} label="Copy the codes" />
        </div>
      )}
      {view.enabled ? (
        <form onSubmit={turnOff}>
          <p>
            <span class="badge">on</span> Logins ask for a code from your authenticator app. {view.recovery_codes_left} recovery codes left.
          </p>
          <label>
            Code or recovery code to turn it off
            <input name="code" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} required />
          </label>
          <button type="submit" disabled={busy}>
            Turn off
          </button>
        </form>
      ) : enrolment ? (
        <form onSubmit={confirm}>
          <p>Scan this with an authenticator app, then enter the code it shows.</p>
          <Qr text={enrolment.otpauth_url} />
          <p class="muted small-print">
            Or type the key: <code data-testid="totp-secret">{enrolment.secret}</code>
          </p>
          <label>
            Code
            <input name="code" inputMode="numeric" autoComplete="one-time-code" value={code} onInput={(e) => setCode(e.currentTarget.value)} required />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            Turn on
          </button>
        </form>
      ) : (
        <>
          <p class="muted">Logins also ask for a code from an app on your phone.</p>
          <button type="button" class="primary" onClick={start} disabled={busy} id="twofactor-start">
            Set up
          </button>
        </>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

const ALGORITHMS: Record<number, string> = { [-7]: "ES256", [-8]: "Ed25519", [-257]: "RS256" };

/** Passkeys: register one in this browser (or on a phone or security key it offers), list, remove. */
export function Passkeys() {
  const list = useAsync(() => get<{ passkeys: PasskeyView[] }>("/api/v1/me/passkeys"), []);
  const [name, setName] = useState("");
  const [added, setAdded] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(undefined);
    setAdded(null);
    try {
      await work();
    } catch (e) {
      setError(e instanceof DOMException && e.name === "NotAllowedError" ? new Error("No passkey was made (cancelled or timed out).") : e);
    } finally {
      setBusy(false);
    }
  };
  const add = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      const made = await registerPasskey(name.trim());
      setAdded(made.name);
      setName("");
      list.reload();
    });
  };
  const remove = (passkey: PasskeyView) => {
    if (!confirm(`Remove the passkey “${passkey.name}”? It no longer signs in here.`)) return;
    return run(async () => {
      await api("DELETE", `/api/v1/me/passkeys/${encodeURIComponent(passkey.id)}`);
      list.reload();
    });
  };
  const passkeys = list.data?.passkeys ?? [];
  return (
    <div class="card" aria-labelledby="passkeys-title" id="passkeys-card">
      <h2 id="passkeys-title">Passkeys</h2>
      <p class="muted">
        A passkey signs in without the password (with your device's PIN, fingerprint or face), and once you have one, logging in with the password asks for it or
        for your authenticator app's code.
      </p>
      {list.loading && !list.data && <Loading />}
      {list.error !== undefined && <ErrorBox error={list.error} retry={list.reload} />}
      {added && <Notice kind="ok">Passkey “{added}” added.</Notice>}
      {passkeys.length > 0 && (
        <ul class="passkeys" data-testid="passkeys">
          {passkeys.map((p) => (
            <li data-passkey={p.id}>
              <div>
                <strong>{p.name}</strong> {p.synced && <span class="badge">synced</span>}
                <br />
                <span class="muted small-print">
                  {p.algorithm !== null ? ALGORITHMS[p.algorithm] ?? `algorithm ${p.algorithm}` : "unknown key"} · added {dateTime(p.created)} · {p.last_used ? `last used ${dateTime(p.last_used)}` : "never used"}
                </span>
              </div>
              <button type="button" class="small" disabled={busy} onClick={() => remove(p)}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
      {passkeysSupported() ? (
        <form onSubmit={add} class="passkey-add">
          <label>
            Name
            <input name="passkey-name" maxLength={64} required placeholder="e.g. Laptop" value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={busy} id="passkey-add">
            {busy ? "Waiting for the passkey…" : "Add a passkey"}
          </button>
        </form>
      ) : (
        <p class="muted">This browser cannot make passkeys.</p>
      )}
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

interface LinkView {
  configured: boolean;
  label: string | null;
  linked: { issuer: string; subject: string; email: string | null } | null;
}

/** The identity provider card; nothing when OIDC is not configured. */
export function IdentityProvider() {
  const link = useAsync(() => get<LinkView>("/api/v1/me/oidc"), []);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const params = new URLSearchParams(location.search);
  const returned = params.get("oidc_error");
  if (link.loading) return <Loading />;
  if (link.error !== undefined) return <ErrorBox error={link.error} retry={link.reload} />;
  const view = link.data;
  if (!view || !view.configured) return null;
  const start = async () => {
    setBusy(true);
    setError(undefined);
    try {
      const { url } = await api<{ url: string }>("POST", "/api/v1/me/oidc");
      location.assign(url);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  const remove = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await api("DELETE", "/api/v1/me/oidc");
      link.set({ ...view, linked: null });
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card" aria-labelledby="oidc-title" id="oidc-card">
      <h2 id="oidc-title">Identity provider</h2>
      {view.linked ? (
        <>
          <p>
            Linked to <strong>{view.linked.email ?? view.linked.subject}</strong>
            <br />
            <span class="muted">{view.linked.issuer}</span>
          </p>
          <button type="button" onClick={remove} disabled={busy}>
            Unlink
          </button>
        </>
      ) : (
        <>
          <p class="muted">Link your account to sign in with the identity provider instead of the password.</p>
          <button type="button" class="primary" onClick={start} disabled={busy} id="oidc-link">
            Link: {view.label}
          </button>
        </>
      )}
      {params.get("oidc") === "linked" && view.linked && <Notice kind="ok">Linked.</Notice>}
      {returned && <Notice kind="warn">{returned}</Notice>}
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}

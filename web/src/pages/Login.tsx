// Logging in with the password: POST /api/v1/session sets the HttpOnly
// session cookie and returns the CSRF token for unsafe requests. With OIDC
// configured, a button navigates to GET /api/v1/auth/oidc/login; the
// provider's callback comes back here with ?error=… when it is refused.
// "Sign in with a passkey" needs no user name (POST /api/v1/session/passkey);
// an account with a second factor is asked for the app's code or a passkey
// after the password (POST /api/v1/session with `passkey`).

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, SESSION_HINT, type InstanceConfig, type Me, type User } from "../api";
import { passkeyAssertion, passkeysSupported } from "../passkeys";

type LoginReply = { user: User; csrf_token: string };

/** What went wrong with a passkey, for people: the browser's cancel is no error worth a paragraph. */
function passkeyError(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof DOMException && e.name === "NotAllowedError") return "No passkey was used (cancelled or timed out).";
  return String(e);
}

export function Login({ config, onLogin }: { config: InstanceConfig | null; onLogin: (me: Me) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [code, setCode] = useState("");
  const [needCode, setNeedCode] = useState(false);
  const [error, setError] = useState<string | null>(() => new URLSearchParams(location.search).get("error"));
  const [busy, setBusy] = useState(false);
  const passwords = config?.password_login !== false;
  useEffect(() => {
    document.title = "Log in · polo";
  }, []);
  const done = (reply: LoginReply) => onLogin({ user: reply.user, device: null, via: "session", csrf_token: reply.csrf_token });
  const withPasskey = async (secondFactor: boolean) => {
    setBusy(true);
    setError(null);
    try {
      const passkey = await passkeyAssertion(secondFactor);
      const reply = secondFactor
        ? await api<LoginReply>("POST", "/api/v1/session", { username, password, passkey })
        : await api<LoginReply>("POST", "/api/v1/session/passkey", { credential: passkey });
      done(reply);
    } catch (e) {
      setError(passkeyError(e));
    } finally {
      setBusy(false);
    }
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    if (needCode && !code.trim()) {
      setError("Enter the code from your app, or use a passkey.");
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const body = needCode ? { username, password, code } : { username, password };
      done(await api<LoginReply>("POST", "/api/v1/session", body));
    } catch (e) {
      if (e instanceof ApiError && e.code === "two_factor_required") {
        setNeedCode(true);
        return;
      }
      const wrong = needCode ? "Wrong code." : "Wrong user name or password.";
      setError(e instanceof ApiError ? (e.status === 401 ? wrong : e.message) : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{config?.instance_name || "polo"}</h1>
        <p class="muted">Your location history, on your own server.</p>
        {passwords && (
          <>
            <label>
              User name
              <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
            </label>
            <label>
              Password
              <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
            {needCode && (
              <label>
                Code from your authenticator app (or a recovery code)
                <input name="code" inputMode="numeric" autoComplete="one-time-code" autoFocus value={code} onInput={(e) => setCode(e.currentTarget.value)} />
              </label>
            )}
          </>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        {passwords && (
          <button type="submit" class="primary" disabled={busy}>
            {busy ? "Logging in…" : "Log in"}
          </button>
        )}
        {passwords && passkeysSupported() &&
          (needCode ? (
            <button type="button" id="passkey-second-factor" disabled={busy} onClick={() => withPasskey(true)}>
              Use a passkey instead
            </button>
          ) : (
            <button type="button" id="passkey-login" disabled={busy} onClick={() => withPasskey(false)}>
              Sign in with a passkey
            </button>
          ))}
        {config?.oidc_login && (
          <a
            class={passwords ? "button" : "button primary"}
            href="/api/v1/auth/oidc/login"
            id="oidc-login"
            // The provider sends the browser back to / with a session cookie the app cannot see
            // (HttpOnly): the hint makes the app ask /api/v1/me. A refusal comes back to /login,
            // where that answers 401 and the hint goes again.
            onClick={() => localStorage.setItem(SESSION_HINT, "1")}
          >
            {config.oidc_login}
          </a>
        )}
        {config?.version && <p class="muted small-print">polo {config.version}</p>}
      </form>
    </main>
  );
}

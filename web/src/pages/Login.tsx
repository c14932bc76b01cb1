// Logging in with the password: POST /api/v1/session sets the HttpOnly
// session cookie and returns the CSRF token for unsafe requests. With OIDC
// configured, a button navigates to GET /api/v1/auth/oidc/login; the
// provider's callback comes back here with ?error=… when it is refused.

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, SESSION_HINT, type InstanceConfig, type Me, type User } from "../api";

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
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = needCode ? { username, password, code } : { username, password };
      const reply = await api<{ user: User; csrf_token: string }>("POST", "/api/v1/session", body);
      onLogin({ user: reply.user, device: null, via: "session", csrf_token: reply.csrf_token });
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
                <input name="code" inputMode="numeric" autoComplete="one-time-code" required autoFocus value={code} onInput={(e) => setCode(e.currentTarget.value)} />
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

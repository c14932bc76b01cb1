// Logging in with the password: POST /api/v1/session sets the HttpOnly
// session cookie and returns the CSRF token for unsafe requests.

import { useEffect, useState } from "preact/hooks";
import { api, ApiError, type InstanceConfig, type Me, type User } from "../api";

export function Login({ config, onLogin }: { config: InstanceConfig | null; onLogin: (me: Me) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = "Log in · polo";
  }, []);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const reply = await api<{ user: User; csrf_token: string }>("POST", "/api/v1/session", { username, password });
      onLogin({ user: reply.user, device: null, via: "session", csrf_token: reply.csrf_token });
    } catch (e) {
      setError(e instanceof ApiError ? (e.status === 401 ? "Wrong user name or password." : e.message) : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login" id="main">
      <form class="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{config?.instance_name || "polo"}</h1>
        <p class="muted">Your location history, on your own server.</p>
        <label>
          User name
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        </label>
        <label>
          Password
          <input name="password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Logging in…" : "Log in"}
        </button>
        {config?.version && <p class="muted small-print">polo {config.version}</p>}
      </form>
    </main>
  );
}

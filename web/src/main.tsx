// The app's entry: loads the instance config, finds out whether a session
// exists, and renders the page of the current route inside the layout.
// The public share page (/s/<token>) needs no account and skips all that.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, get, setCsrfToken, type InstanceConfig, type Me } from "./api";
import { setMapConfig } from "./map/basemap";
import { interceptLinks, navigate, useLocation } from "./router";
import { Loading } from "./components/ui";
import { Login } from "./pages/Login";
import { Timeline } from "./pages/Timeline";
import { Explorer } from "./pages/Explorer";
import { TripDetail, Trips } from "./pages/Trips";
import { Places } from "./pages/Places";
import { StatsPage } from "./pages/Stats";
import { Imports } from "./pages/Imports";
import { Devices } from "./pages/Devices";
import { Sharing } from "./pages/Sharing";
import { SharePage } from "./pages/Share";
import { Account } from "./pages/Account";
import "./styles.css";

const SESSION_HINT = "polo.session";

type Theme = "auto" | "light" | "dark";

function applyTheme(theme: Theme): void {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
}

const NAV: [string, string][] = [
  ["/", "Timeline"],
  ["/map", "Map"],
  ["/trips", "Trips"],
  ["/places", "Places"],
  ["/stats", "Stats"],
  ["/imports", "Imports"],
  ["/devices", "Devices"],
  ["/sharing", "Sharing"],
  ["/account", "Account"],
];

function isActive(path: string, href: string): boolean {
  if (href === "/") return path === "/" || path.startsWith("/day/");
  return path === href || path.startsWith(`${href}/`);
}

function Layout({ me, config, onLogout, children }: { me: Me; config: InstanceConfig | null; onLogout: () => void; children: preact.ComponentChildren }) {
  const { path } = useLocation();
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem("polo.theme") as Theme) || "auto");
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => {
    applyTheme(theme);
    localStorage.setItem("polo.theme", theme);
  }, [theme]);
  useEffect(() => setMenuOpen(false), [path]);
  const nextTheme: Record<Theme, Theme> = { auto: "dark", dark: "light", light: "auto" };
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <a class="brand" href="/">
          {config?.instance_name || "polo"}
        </a>
        <button type="button" class="menu-toggle" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <nav id="nav" class={menuOpen ? "open" : ""} aria-label="Main">
          {NAV.map(([href, label]) => (
            <a href={href} aria-current={isActive(path, href) ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <div class="session">
          <button type="button" class="small" onClick={() => setTheme(nextTheme[theme])} aria-label={`Colour theme: ${theme}. Change`} title="Colour theme">
            {theme === "dark" ? "☾ Dark" : theme === "light" ? "☀ Light" : "◐ Auto"}
          </button>
          <span class="who" title={me.user.admin ? "administrator" : "user"}>
            {me.user.name}
          </span>
          <button type="button" class="small" onClick={onLogout}>
            Log out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

function Page({ me }: { me: Me }) {
  const { path } = useLocation();
  if (path === "/" || path.startsWith("/day/")) return <Timeline device={undefined} />;
  if (path === "/map") return <Explorer me={me} />;
  if (path === "/trips") return <Trips />;
  if (path.startsWith("/trips/")) {
    const [, , device, start] = path.split("/");
    return <TripDetail device={decodeURIComponent(device ?? "")} start={decodeURIComponent(start ?? "")} />;
  }
  if (path === "/places") return <Places />;
  if (path === "/stats") return <StatsPage />;
  if (path === "/imports") return <Imports />;
  if (path === "/devices") return <Devices me={me} />;
  if (path === "/sharing") return <Sharing me={me} />;
  if (path === "/account") return <Account me={me} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        There is no page at <code>{path}</code>. <a href="/">Go to the timeline.</a>
      </p>
    </section>
  );
}

function App() {
  const { path } = useLocation();
  const [config, setConfig] = useState<InstanceConfig | null>(null);
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  useEffect(() => {
    get<InstanceConfig>("/api/v1/config")
      .then((c) => {
        setConfig(c);
        setMapConfig(c);
      })
      .catch(() => setMapConfig(null));
  }, []);

  useEffect(() => {
    if (path.startsWith("/s/")) return;
    // Without a hint of a session there is nothing to ask: a 401 would only
    // put an error in the console. The cookie itself is HttpOnly.
    if (!localStorage.getItem(SESSION_HINT)) {
      setMe(null);
      return;
    }
    get<Me>("/api/v1/me").then(
      (m) => {
        setCsrfToken(m.csrf_token);
        setMe(m);
      },
      (e) => {
        if (e instanceof ApiError && e.status === 401) localStorage.removeItem(SESSION_HINT);
        setMe(null);
      },
    );
  }, [path.startsWith("/s/")]);

  if (path.startsWith("/s/")) return <SharePage token={decodeURIComponent(path.slice(3))} config={config} />;
  if (me === undefined) return <Loading label="Starting polo…" />;
  if (me === null) {
    return (
      <Login
        config={config}
        onLogin={(m) => {
          localStorage.setItem(SESSION_HINT, "1");
          setCsrfToken(m.csrf_token);
          setMe(m);
          if (path === "/login") navigate("/", true);
        }}
      />
    );
  }
  const logout = () => {
    api("DELETE", "/api/v1/session")
      .catch(() => undefined)
      .finally(() => {
        localStorage.removeItem(SESSION_HINT);
        setCsrfToken(null);
        setMe(null);
        navigate("/", true);
      });
  };
  return (
    <Layout me={me} config={config} onLogout={logout}>
      <Page me={me} />
    </Layout>
  );
}

applyTheme((localStorage.getItem("polo.theme") as Theme) || "auto");
interceptLinks();
const root = document.getElementById("app")!;
root.textContent = ""; // the "Loading polo…" shown before the script ran
render(<App />, root);

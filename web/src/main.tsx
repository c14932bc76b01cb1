// The app's entry: loads the instance config, finds out whether a session
// exists, and renders the page of the current route inside the layout.
// The public share page (/s/<token>) needs no account and skips all that.

import { render, type ComponentType, type VNode } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, ApiError, get, SESSION_HINT, setCsrfToken, type InstanceConfig, type Me } from "./api";
import { setInstanceConfig } from "./config";
import { interceptLinks, navigate, useLocation } from "./router";
import { ErrorBox, Loading } from "./components/ui";
import { Login } from "./pages/Login";
import "./styles.css";

// Pages are loaded on first use, each with only the libraries it needs
// (Leaflet for maps, uPlot for charts, qrcode for device setup), so the
// first page shows sooner and the browser parses less.
const modules = new Map<string, Promise<Record<string, unknown>>>();
const PAGES = {
  timeline: () => import("./pages/Timeline"),
  explorer: () => import("./pages/Explorer"),
  trips: () => import("./pages/Trips"),
  places: () => import("./pages/Places"),
  zones: () => import("./pages/Zones"),
  stats: () => import("./pages/Stats"),
  imports: () => import("./pages/Imports"),
  devices: () => import("./pages/Devices"),
  sharing: () => import("./pages/Sharing"),
  groups: () => import("./pages/Groups"),
  share: () => import("./pages/Share"),
  account: () => import("./pages/Account"),
  security: () => import("./pages/Security"),
  exposure: () => import("./pages/Exposure"),
  photos: () => import("./pages/PhotoReview"),
} as const;

type AnyComponent = ComponentType<any>;

// Modules that finished loading, so that returning to a page renders it at
// once instead of flashing "Loading" for a module that is already here.
const loaded = new Map<string, Record<string, unknown>>();

type LazyState = { key: string; component?: AnyComponent; error?: unknown };

// Renders `render(Component)` once the page's module is loaded. The state
// remembers which page and export it holds: on navigation, the previous
// page's component must never be rendered with the next page's props (that
// threw "Cannot read properties of undefined" and blanked every later page).
function Lazy({ page, name, render }: { page: keyof typeof PAGES; name: string; render: (Component: AnyComponent) => VNode }) {
  const key = `${page}#${name}`;
  const ready = (): LazyState => ({ key, component: loaded.get(page)?.[name] as AnyComponent | undefined });
  const [state, setState] = useState<LazyState>(ready);
  useEffect(() => {
    let live = true;
    const module = loaded.get(page);
    if (module) {
      setState({ key, component: module[name] as AnyComponent });
      return;
    }
    setState({ key });
    let loading = modules.get(page);
    if (!loading) {
      loading = PAGES[page]() as Promise<Record<string, unknown>>;
      modules.set(page, loading);
    }
    loading.then(
      (module) => {
        loaded.set(page, module);
        if (live) setState({ key, component: module[name] as AnyComponent });
      },
      (error) => {
        modules.delete(page);
        if (live) setState({ key, error });
      },
    );
    return () => {
      live = false;
    };
  }, [key]);
  const current = state.key === key ? state : ready();
  if (current.error !== undefined) return <ErrorBox error={current.error} retry={() => location.reload()} />;
  return current.component ? render(current.component) : <Loading />;
}


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
  ["/photos/review", "Photos"],
  ["/zones", "Zones"],
  ["/stats", "Stats"],
  ["/imports", "Imports"],
  ["/devices", "Devices"],
  ["/sharing", "Sharing"],
  ["/groups", "Groups"],
  ["/exposure", "Exposure"],
  ["/account", "Account"],
];

/** The top bar's links: the exposure pages only while the feature is on, Authority only for that role. */
function navFor(me: Me, config: InstanceConfig | null): [string, string][] {
  const exposure = config?.exposure ?? false;
  return [
    ...NAV.filter(([href]) => exposure || href !== "/exposure"),
    ...(exposure && me.user.role === "health-authority" ? [["/authority", "Authority"] as [string, string]] : []),
  ];
}

function isActive(path: string, href: string): boolean {
  if (href === "/") return path === "/" || path.startsWith("/day/");
  if (href === "/photos/review") return path === "/photos" || path.startsWith("/photos/");
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
          {navFor(me, config).map(([href, label]) => (
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
  const { path, search } = useLocation();
  const device = search.get("device") ?? undefined;
  if (path === "/" || path.startsWith("/day/")) return <Lazy page="timeline" name="Timeline" render={(C) => <C device={device} />} />;
  if (path === "/map") return <Lazy page="explorer" name="Explorer" render={(C) => <C me={me} />} />;
  if (path === "/trips") return <Lazy page="trips" name="Trips" render={(C) => <C />} />;
  if (path.startsWith("/trips/")) {
    const [, , device, start] = path.split("/");
    return <Lazy page="trips" name="TripDetail" render={(C) => <C device={decodeURIComponent(device ?? "")} start={decodeURIComponent(start ?? "")} />} />;
  }
  if (path === "/photos/review" || path === "/photos") return <Lazy page="photos" name="PhotoReview" render={(C) => <C />} />;
  if (path === "/places") return <Lazy page="places" name="Places" render={(C) => <C />} />;
  if (path === "/zones") return <Lazy page="zones" name="Zones" render={(C) => <C />} />;
  if (path === "/stats") return <Lazy page="stats" name="StatsPage" render={(C) => <C />} />;
  if (path === "/imports") return <Lazy page="imports" name="Imports" render={(C) => <C />} />;
  if (path === "/devices") return <Lazy page="devices" name="Devices" render={(C) => <C me={me} />} />;
  if (path === "/sharing") return <Lazy page="sharing" name="Sharing" render={(C) => <C me={me} />} />;
  if (path === "/groups") return <Lazy page="groups" name="Groups" render={(C) => <C me={me} />} />;
  // An invitation link: after logging in (the login page keeps the path), what it is for.
  if (path.startsWith("/join/")) return <Lazy page="groups" name="JoinPage" render={(C) => <C token={decodeURIComponent(path.slice(6))} />} />;
  if (path === "/account") return <Lazy page="account" name="Account" render={(C) => <C me={me} />} />;
  if (path === "/account/sessions") return <Lazy page="security" name="Sessions" render={(C) => <C />} />;
  if (path === "/account/audit" && me.user.admin) return <Lazy page="security" name="AuditLog" render={(C) => <C />} />;
  if (path === "/exposure") return <Lazy page="exposure" name="MyStatus" render={(C) => <C />} />;
  if (path === "/authority") return <Lazy page="exposure" name="Authority" render={(C) => <C me={me} />} />;
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
  // undefined until /api/v1/config answered (or failed): maps need its tile URL.
  const [config, setConfig] = useState<InstanceConfig | null | undefined>(undefined);
  const [me, setMe] = useState<Me | null | undefined>(undefined);

  useEffect(() => {
    get<InstanceConfig>("/api/v1/config")
      .then((c) => {
        setConfig(c);
        setInstanceConfig(c);
      })
      .catch(() => {
        setInstanceConfig(null);
        setConfig(null);
      });
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

  if (config === undefined) return <Loading label="Starting polo…" />;
  if (path.startsWith("/s/")) return <Lazy page="share" name="SharePage" render={(C) => <C token={decodeURIComponent(path.slice(3))} config={config} />} />;
  // The verifier needs no account: a door checks codes with the instance's public key.
  if (path === "/verify") return <Lazy page="exposure" name="Verify" render={(C) => <C />} />;
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

// Statistics per month or year from /api/v1/stats: distance and time by
// mode as charts, the countries visited on a choropleth of days spent (world
// outlines from the bundled world-atlas package), days per country, towns.

import L from "leaflet";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { feature } from "topojson-client";
import type { GeometryCollection, Topology } from "topojson-specification";
import { get, MODES, qs, type Stats } from "../api";
import { formatCount, MODE_COLOURS, MODE_LABELS } from "../format";
import { unwrapFeatures } from "../map/antimeridian";
import { type PoloMap } from "../map/basemap";
import { navigate, useLocation } from "../router";
import { Chart } from "../components/Chart";
import { MapBox } from "../components/MapBox";
import { ErrorBox, Loading, PageTitle, useAsync } from "../components/ui";

const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

export function countryName(code: string): string {
  try {
    return regionNames?.of(code.toUpperCase()) ?? code;
  } catch {
    return code;
  }
}

let countriesPromise: Promise<{ shapes: GeoJSON.FeatureCollection; numericToAlpha2: Map<string, string> }> | null = null;

function loadCountries() {
  countriesPromise ??= Promise.all([import("world-atlas/countries-110m.json"), import("i18n-iso-countries/codes.json")]).then(([atlas, codes]) => {
    const topology = (atlas.default ?? atlas) as unknown as Topology;
    const shapes = unwrapFeatures(feature(topology, topology.objects.countries as GeometryCollection) as unknown as GeoJSON.FeatureCollection);
    const numericToAlpha2 = new Map<string, string>();
    for (const row of (codes.default ?? codes) as unknown as string[][]) numericToAlpha2.set(row[2], row[0]);
    return { shapes, numericToAlpha2 };
  });
  return countriesPromise;
}

/** Colour of a country with `days` of `max` days (log scale); transparent for none. */
export function dayColour(days: number, max: number): string {
  if (days <= 0) return "transparent";
  const f = Math.log1p(days) / Math.log1p(Math.max(1, max));
  const lightness = 82 - 50 * f;
  return `hsl(210, 75%, ${lightness.toFixed(0)}%)`;
}

/**
 * The newest year with any distance travelled (this year when none has): an
 * imported history opens on its last year, not on an empty current one.
 */
export async function newestYearWithData(thisYear: number): Promise<number> {
  // The API covers local days from 1970, at most 100 years at a time.
  const first = Math.max(1970, thisYear - 99);
  const all = await get<Stats>(`/api/v1/stats${qs({ from: `${first}-01-01`, to: `${thisYear}-12-31`, period: "year" })}`);
  const years = all.periods.filter((p) => p.distance_km > 0).map((p) => Number(p.from.slice(0, 4)));
  return years.length > 0 ? Math.max(...years) : thisYear;
}

export function StatsPage() {
  const { search } = useLocation();
  const asked = Number(search.get("year")) || undefined;
  const period = search.get("period") === "year" ? "year" : "month";
  const year = useAsync(() => (asked ? Promise.resolve(asked) : newestYearWithData(new Date().getFullYear())), [asked]);
  if (year.error !== undefined) return <ErrorBox error={year.error} retry={year.reload} />;
  if (year.data === undefined) return <Loading label="Loading statistics…" />;
  return <StatsOfYear year={year.data} period={period} />;
}

function StatsOfYear({ year, period }: { year: number; period: "year" | "month" }) {
  const from = period === "year" ? `${year - 9}-01-01` : `${year}-01-01`;
  const to = `${year}-12-31`;
  const stats = useAsync(() => get<Stats>(`/api/v1/stats${qs({ from, to, period })}`), [from, to, period]);
  const mapRef = useRef<PoloMap | null>(null);
  const [mapReady, setMapReady] = useState(false);

  const summary = useMemo(() => {
    if (!stats.data) return null;
    const days = new Map<string, number>();
    const towns = new Set<string>();
    let km = 0;
    let tracked = 0;
    for (const p of stats.data.periods) {
      km += p.distance_km;
      tracked += p.days_tracked;
      for (const [code, n] of Object.entries(p.days_per_country)) days.set(code, (days.get(code) ?? 0) + n);
      p.towns.forEach((t) => towns.add(t));
    }
    // Every month of the year (or each of the ten years) has its place on
    // the axis, with or without data, so bars line up with their labels.
    const keys = period === "year" ? Array.from({ length: 10 }, (_, i) => String(year - 9 + i)) : Array.from({ length: 12 }, (_, i) => `${year}-${String(i + 1).padStart(2, "0")}`);
    const byKey = new Map(stats.data.periods.map((p) => [period === "year" ? p.from.slice(0, 4) : p.from.slice(0, 7), p]));
    const slots = keys.map((key) => byKey.get(key));
    const labels = keys.map((key) => (period === "year" ? key : new Date(`${key}-01T00:00:00Z`).toLocaleDateString("en-GB", { month: "short", timeZone: "UTC" })));
    const x = keys.map((_, i) => i);
    const modes = MODES.filter((m) => stats.data!.periods.some((p) => (p.by_mode[m]?.hours ?? 0) > 0));
    return {
      km,
      tracked,
      towns: [...towns].sort(),
      countries: [...days.entries()].sort((a, b) => b[1] - a[1]),
      labels,
      x,
      distance: [{ label: "Distance", unit: "km", colour: "#2563eb", values: slots.map((p) => Math.round((p?.distance_km ?? 0) * 10) / 10) }],
      hours: modes.map((m) => ({ label: MODE_LABELS[m], unit: "h", colour: MODE_COLOURS[m], values: slots.map((p) => Math.round((p?.by_mode[m]?.hours ?? 0) * 10) / 10) })),
    };
  }, [stats.data, period, year]);

  useEffect(() => {
    const map = mapRef.current;
    if (!map || !summary) return;
    let layer: L.GeoJSON | null = null;
    let cancelled = false;
    const days = new Map(summary.countries);
    const max = Math.max(1, ...days.values());
    loadCountries().then(({ shapes, numericToAlpha2 }) => {
      if (cancelled) return;
      layer = L.geoJSON(shapes, {
        renderer: map.renderer,
        style: (f) => {
          const code = numericToAlpha2.get(String(f?.id ?? "")) ?? "";
          const n = days.get(code) ?? 0;
          return { color: "#64748b", weight: 0.5, fillColor: dayColour(n, max), fillOpacity: n > 0 ? 0.85 : 0 };
        },
        onEachFeature: (f, l) => {
          const code = numericToAlpha2.get(String(f.id ?? "")) ?? "";
          const n = days.get(code) ?? 0;
          if (n > 0) l.bindTooltip(`${countryName(code)}: ${n} ${n === 1 ? "day" : "days"}`);
        },
      } as L.GeoJSONOptions).addTo(map.map);
    });
    return () => {
      cancelled = true;
      layer?.remove();
    };
  }, [summary, mapReady]);

  const go = (params: Record<string, string | number>) => navigate(`/stats${qs(params)}`, true);
  return (
    <section>
      <PageTitle>Statistics</PageTitle>
      <div class="toolbar">
        <div role="group" aria-label="Period">
          <button type="button" class={period === "month" ? "small active" : "small"} aria-pressed={period === "month"} onClick={() => go({ period: "month", year })}>
            Per month
          </button>
          <button type="button" class={period === "year" ? "small active" : "small"} aria-pressed={period === "year"} onClick={() => go({ period: "year", year })}>
            Per year
          </button>
        </div>
        <button type="button" class="small" onClick={() => go({ period, year: year - 1 })} aria-label="Previous year">
          ←
        </button>
        <span>{period === "year" ? `${year - 9}–${year}` : year}</span>
        <button type="button" class="small" onClick={() => go({ period, year: year + 1 })} aria-label="Next year">
          →
        </button>
      </div>
      {stats.loading && <Loading label="Loading statistics…" />}
      {stats.error !== undefined && <ErrorBox error={stats.error} retry={stats.reload} />}
      {summary && (
        <>
          <dl class="stats-grid">
            <div>
              <dt>Distance</dt>
              <dd>{formatCount(Math.round(summary.km))} km</dd>
            </div>
            <div>
              <dt>Days tracked</dt>
              <dd>{formatCount(summary.tracked)}</dd>
            </div>
            <div>
              <dt>Countries</dt>
              <dd>{summary.countries.length}</dd>
            </div>
            <div>
              <dt>Towns</dt>
              <dd>{summary.towns.length}</dd>
            </div>
          </dl>
          <div class="charts">
            <div class="card">
              <h2>Distance per {period}</h2>
              <Chart title={`Distance per ${period}`} x={summary.x} xLabels={summary.labels} xLabelName={period === "year" ? "Year" : "Month"} time={false} bars series={summary.distance} />
            </div>
            <div class="card">
              <h2>Time by mode per {period}</h2>
              {summary.hours.length > 0 ? <Chart title={`Hours by mode per ${period}`} x={summary.x} xLabels={summary.labels} xLabelName={period === "year" ? "Year" : "Month"} time={false} series={summary.hours} /> : <p class="muted">No trips in this range.</p>}
            </div>
          </div>
        </>
      )}
      <h2>Countries</h2>
      <div class="split">
        <MapBox
          label="Countries visited, shaded by days spent"
          class="stats-map"
          onReady={(m) => {
            mapRef.current = m;
            setMapReady(true);
          }}
        />
        <div>
          {summary && (
            <>
              <table class="data">
                <caption>Days per country</caption>
                <thead>
                  <tr>
                    <th scope="col">Country</th>
                    <th scope="col" class="num">
                      Days
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {summary.countries.map(([code, n]) => (
                    <tr>
                      <td>{countryName(code)}</td>
                      <td class="num">{n}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
              <h3>Towns</h3>
              <p class="towns">{summary.towns.length ? summary.towns.join(" · ") : <span class="muted">None yet.</span>}</p>
            </>
          )}
        </div>
      </div>
    </section>
  );
}

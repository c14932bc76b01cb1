// A uPlot chart (canvas, ~45 KB) sized to its container: lines for speed
// and elevation over time, bars for per-period statistics.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

/** A tick value in the reader's locale (thousands separators, no "0,000" clipping). */
export function formatTick(value: number): string {
  return value.toLocaleString(undefined, { maximumFractionDigits: Math.abs(value) < 10 ? 1 : 0 });
}

/** 24-hour clock ticks ("07:30"), or dates ("14 May") when the chart spans days. */
export function timeTicks(ticks: number[]): string[] {
  const span = ticks.length > 1 ? ticks[ticks.length - 1] - ticks[0] : 0;
  return ticks.map((t) =>
    new Date(t * 1000).toLocaleString("en-GB", span > 2 * 86_400 ? { day: "numeric", month: "short" } : { hour: "2-digit", minute: "2-digit", hourCycle: "h23" }),
  );
}

/** Pixels an axis needs for its widest label, so long numbers are never clipped. */
function axisSize(u: uPlot, values: string[] | null): number {
  const widest = Math.max(0, ...(values ?? []).map((v) => u.ctx.measureText(v).width / devicePixelRatio));
  return Math.ceil(widest) + 18;
}

export interface Series {
  label: string;
  values: (number | null)[];
  colour: string;
  unit?: string;
}

export function Chart({
  x,
  series,
  bars = false,
  time = true,
  xLabels,
  xLabelName,
  title,
  height = 220,
}: {
  x: number[];
  series: Series[];
  bars?: boolean;
  time?: boolean;
  xLabels?: string[];
  /** What the categories are ("Month", "Year"), shown in the legend. */
  xLabelName?: string;
  title: string;
  height?: number;
}) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const host = element.current;
    if (!host) return;
    const dark = document.documentElement.dataset.theme === "dark" || (document.documentElement.dataset.theme !== "light" && matchMedia("(prefers-color-scheme: dark)").matches);
    const axisColour = dark ? "#cbd5e1" : "#334155";
    const gridColour = dark ? "rgba(255,255,255,0.08)" : "rgba(0,0,0,0.07)";
    const barPaths = bars ? uPlot.paths.bars!({ size: [0.7, 60], gap: 1 }) : undefined;
    const options: uPlot.Options = {
      width: Math.max(200, host.clientWidth),
      height,
      // Categories get half a slot of margin on each side, so the first and last bars show whole.
      scales: { x: xLabels ? { time: false, range: [-0.5, Math.max(0.5, x.length - 0.5)] } : { time } },
      legend: { show: true },
      axes: [
        {
          stroke: axisColour,
          grid: { stroke: gridColour },
          // Categories (months, years) sit at whole indices: ticks only there, one label each.
          ...(xLabels ? { incrs: [1, 2, 3, 4, 6, 12, 24, 60], values: (_u: uPlot, ticks: number[]) => ticks.map((t) => (Number.isInteger(t) ? (xLabels[t] ?? "") : "")) } : {}),
          ...(time && !xLabels ? { values: (_u: uPlot, ticks: number[]) => timeTicks(ticks) } : {}),
        },
        { stroke: axisColour, grid: { stroke: gridColour }, values: (_u: uPlot, ticks: number[]) => ticks.map(formatTick), size: axisSize },
      ],
      series: [
        {
          label: time ? "Time" : (xLabelName ?? "Period"),
          value: (_u: uPlot, v: number | null) =>
            v === null ? "–" : time ? new Date(v * 1000).toLocaleString("en-GB", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" }) : (xLabels?.[Math.round(v)] ?? String(v)),
        },
        ...series.map((s) => ({
          label: s.unit ? `${s.label} (${s.unit})` : s.label,
          value: (_u: uPlot, v: number | null) => (v === null ? "–" : formatTick(v)),
          stroke: s.colour,
          fill: bars ? s.colour : undefined,
          width: bars ? 0 : 1.5,
          paths: barPaths,
          points: { show: !bars && x.length < 40, size: 6 },
        })),
      ],
    };
    const chart = new uPlot(options, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, host);
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(200, host.clientWidth), height }));
    resize.observe(host);
    return () => {
      resize.disconnect();
      chart.destroy();
    };
  }, [x, series, bars, time, xLabels, xLabelName, height]);
  return <figure class="chart" ref={element} aria-label={title} role="img" />;
}

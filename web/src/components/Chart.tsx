// A uPlot chart (canvas, ~45 KB) sized to its container: lines for speed
// and elevation over time, bars for per-period statistics.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

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
  title,
  height = 220,
}: {
  x: number[];
  series: Series[];
  bars?: boolean;
  time?: boolean;
  xLabels?: string[];
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
      scales: { x: { time } },
      legend: { show: true },
      axes: [
        {
          stroke: axisColour,
          grid: { stroke: gridColour },
          ...(xLabels ? { values: (_u: uPlot, ticks: number[]) => ticks.map((t) => xLabels[Math.round(t)] ?? "") } : {}),
        },
        { stroke: axisColour, grid: { stroke: gridColour } },
      ],
      series: [
        { label: time ? "time" : "" },
        ...series.map((s) => ({
          label: s.unit ? `${s.label} (${s.unit})` : s.label,
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
  }, [x, series, bars, time, xLabels, height]);
  return <figure class="chart" ref={element} aria-label={title} role="img" />;
}

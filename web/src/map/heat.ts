// The heatmap's colour ramp (blue, green, yellow, red), kept apart from
// Leaflet so it can be unit-tested without a DOM.

const HEAT_STOPS: [number, [number, number, number]][] = [
  [0, [37, 99, 235]],
  [0.35, [16, 185, 129]],
  [0.65, [250, 204, 21]],
  [1, [220, 38, 38]],
];

export function heatColour(fraction: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  for (let i = 1; i < HEAT_STOPS.length; i += 1) {
    const [end, to] = HEAT_STOPS[i];
    const [start, from] = HEAT_STOPS[i - 1];
    if (f <= end) {
      const k = (f - start) / (end - start || 1);
      const rgb = from.map((c, j) => Math.round(c + (to[j] - c) * k));
      return `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${0.35 + 0.5 * f})`;
    }
  }
  return "rgba(220,38,38,0.85)";
}

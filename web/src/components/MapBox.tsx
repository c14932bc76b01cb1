// A map container that owns one Leaflet map for its lifetime (kept apart
// from ui.tsx so pages without a map do not load Leaflet).

import { useEffect, useRef } from "preact/hooks";
import { createMap, destroyMap, type PoloMap } from "../map/basemap";

/** A div holding a Leaflet map; `onReady` runs once with the map. */
export function MapBox({ onReady, label, class: className = "" }: { onReady: (map: PoloMap) => void | (() => void); label: string; class?: string }) {
  const element = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!element.current) return;
    const map = createMap(element.current);
    const cleanup = onReady(map);
    const resize = new ResizeObserver(() => map.map.invalidateSize());
    resize.observe(element.current);
    return () => {
      resize.disconnect();
      if (typeof cleanup === "function") cleanup();
      destroyMap(map.map);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);
  return <div ref={element} class={`map ${className}`} role="region" aria-label={label} data-testid="map" />;
}

// One place that makes Leaflet maps: Canvas renderer (draws in headless
// Chromium and stays fast with tens of thousands of points), the tile layer
// the instance configures (OpenStreetMap by default, attribution shown), and
// the offline fallback: when tiles cannot be fetched, a low-resolution world
// from the bundled `world-atlas` package (Natural Earth) is drawn instead so
// the map stays usable without network.

import L from "leaflet";
import "leaflet/dist/leaflet.css";
import { feature } from "topojson-client";
import type { Topology, GeometryCollection } from "topojson-specification";
import { instanceConfig } from "../config";
import { unwrapFeatures } from "./antimeridian";

export const DEFAULT_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png";
export const DEFAULT_ATTRIBUTION = '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors';


let worldPromise: Promise<GeoJSON.FeatureCollection> | null = null;

/** The bundled low-resolution land outlines (loaded on first use, ~50 KB). */
export function worldLand(): Promise<GeoJSON.FeatureCollection> {
  worldPromise ??= import("world-atlas/land-110m.json").then((module) => {
    const topology = (module.default ?? module) as unknown as Topology;
    const land = feature(topology, topology.objects.land as GeometryCollection);
    return unwrapFeatures(land as unknown as GeoJSON.FeatureCollection);
  });
  return worldPromise;
}

/** The pane of the offline world (class `leaflet-offline-basemap-pane`), below the tile pane's 200. */
export const OFFLINE_PANE = "offline-basemap";

export interface PoloMap {
  map: L.Map;
  renderer: L.Canvas;
  /** Whether the offline basemap is showing. */
  offline: () => boolean;
}

/** A map in `element` with the configured basemap and its offline fallback. */
export function createMap(element: HTMLElement, options: { zoomControl?: boolean } = {}): PoloMap {
  // A small padding keeps the canvas (cleared and refilled on every zoom and
  // pan end) close to the viewport: in software rendering its area is what
  // a redraw costs.
  const renderer = L.canvas({ padding: 0.1 });
  const map = L.map(element, {
    preferCanvas: true,
    renderer,
    zoomControl: options.zoomControl ?? true,
    worldCopyJump: false,
    minZoom: 1,
    maxZoom: 19,
    attributionControl: true,
  });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  map.setView([30, 10], 2);
  const tileUrl = instanceConfig()?.tile_url?.trim() || DEFAULT_TILES;
  const attribution = instanceConfig()?.tile_attribution?.trim() || DEFAULT_ATTRIBUTION;

  // The offline world is a basemap: it lives in its own pane under the
  // tile pane, so the heatmap and fog grid layers (tile pane) and the tracks
  // (overlay pane) are drawn above it, as they are above online tiles.
  const basemapPane = map.createPane(OFFLINE_PANE);
  basemapPane.style.zIndex = "150";
  let fallback: L.GeoJSON | null = null;
  const showFallback = () => {
    if (fallback) return;
    element.classList.add("map-offline");
    fallback = L.geoJSON(undefined, {
      pane: OFFLINE_PANE,
      renderer: L.canvas({ padding: 0.1, pane: OFFLINE_PANE }),
      interactive: false,
      style: { className: "fallback-land", stroke: false, fillColor: "#cfd8cf", fillOpacity: 1 },
      smoothFactor: 2,
      attribution: "Offline basemap: Natural Earth (public domain) via world-atlas",
    } as L.GeoJSONOptions);
    fallback.addTo(map);
    fallback.bringToBack();
    worldLand()
      .then((land) => {
        fallback?.addData(land);
        fallback?.bringToBack();
        element.dataset.basemap = "offline";
      })
      .catch(() => undefined);
  };

  if (tileUrl === "none" || tileUrl === "off") {
    showFallback();
  } else {
    const tiles = L.tileLayer(tileUrl, { attribution, maxZoom: 19, crossOrigin: false, className: "basemap-tiles" });
    let loaded = 0;
    let failed = 0;
    tiles.on("tileload", () => {
      loaded += 1;
    });
    tiles.on("tileerror", () => {
      failed += 1;
      // A few errors without any success means the tile server is out of
      // reach: draw the bundled world instead, and stop asking for tiles
      // (every zoom and pan would create and fail dozens of images).
      if (loaded === 0 && failed >= 2 && !fallback) {
        showFallback();
        map.once("moveend", () => {
          if (loaded === 0) tiles.remove();
        });
      }
    });
    tiles.addTo(map);
  }
  return { map, renderer, offline: () => fallback !== null };
}

/**
 * Shows a set of bounds, with padding. Without animation: this is where a
 * page's data first lands, and an animated zoom still running when the user
 * moves on would fire on a removed map.
 */
export function fitTo(map: L.Map, bounds: [[number, number], [number, number]] | null, maxZoom = 16): void {
  if (!bounds) return;
  const [[s, w], [n, e]] = bounds;
  if (s === n && w === e) {
    map.setView([s, w], Math.min(maxZoom, 15), { animate: false });
    return;
  }
  map.fitBounds(bounds, { padding: [24, 24], maxZoom, animate: false });
}

/** Leaflet's zoom animation state (not in its typings). */
interface ZoomAnimation {
  _animatingZoom?: boolean;
  _onZoomTransitionEnd?: () => void;
}

/**
 * Removes a map for good. A zoom animation the user started may still be
 * running: Leaflet ends it from a timer that would then touch the removed
 * map (`Cannot read properties of undefined (reading '_leaflet_pos')`), so
 * it is ended first.
 */
export function destroyMap(map: L.Map): void {
  const animation = map as unknown as ZoomAnimation;
  if (animation._animatingZoom && typeof animation._onZoomTransitionEnd === "function") animation._onZoomTransitionEnd.call(map);
  map.remove();
}

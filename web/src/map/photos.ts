// Where photos were taken, on a Leaflet map: small camera markers, with a
// dashed ring for a position proposed from the location history. Shared by
// the day timeline and the trip detail.

import L from "leaflet";
import type { PhotoView } from "../api";
import type { PoloMap } from "./basemap";

/**
 * Draws the photos of `photos` that have a position on `map` and returns their layer (`null`
 * when none has). The container's `data-photo-markers` says how many were drawn: they are on the
 * canvas, so tests and tools cannot count them in the page.
 */
export function addPhotoMarkers(map: PoloMap, photos: PhotoView[]): L.LayerGroup | null {
  const placed = photos.filter((photo) => photo.lat !== undefined && photo.lon !== undefined);
  map.map.getContainer().dataset.photoMarkers = String(placed.length);
  if (placed.length === 0) return null;
  const group = L.layerGroup().addTo(map.map);
  for (const photo of placed) {
    if (photo.lat === undefined || photo.lon === undefined) continue;
    const proposed = photo.position_from === "history";
    L.circleMarker([photo.lat, photo.lon], {
      renderer: map.renderer,
      radius: 5,
      color: "#b45309",
      weight: 2,
      dashArray: proposed ? "2 3" : undefined,
      fillColor: "#fbbf24",
      fillOpacity: proposed ? 0.3 : 0.9,
      className: "photo-marker",
    })
      .bindTooltip(`${photo.name}${proposed ? " (placed from your history)" : ""}`)
      .addTo(group);
  }
  return group;
}

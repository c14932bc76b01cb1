// Heatmap and fog-of-war as Leaflet grid layers. Each 256-pixel tile asks
// the server for its cells (/api/v1/map/heatmap|fog/{z}/{x}/{y}) and paints
// them on a canvas: the heatmap colours cells by log(count), the fog covers
// the tile and clears every cell ever passed through.

import L from "leaflet";
import { APP_HEADERS, qs, type MapTile } from "../api";
import { heatColour } from "./heat";

export type CellLayerKind = "heatmap" | "fog";

export interface CellRange {
  from?: string;
  to?: string;
  device?: string;
}

export function createCellLayer(kind: CellLayerKind, range: CellRange): L.GridLayer {
  const Layer = L.GridLayer.extend({
    // Leaflet calls createTile(coords, done) for asynchronous tiles.
    createTile(coords: L.Coords, done: L.DoneCallback): HTMLElement {
      const size = this.getTileSize() as L.Point;
      const canvas = document.createElement("canvas");
      canvas.width = size.x;
      canvas.height = size.y;
      const url = `/api/v1/map/${kind}/${coords.z}/${coords.x}/${coords.y}${qs({ ...range })}`;
      fetch(url, { credentials: "same-origin", headers: APP_HEADERS })
        .then((response) => (response.ok ? (response.json() as Promise<MapTile>) : Promise.reject(new Error(String(response.status)))))
        .then((tile) => {
          paintTile(canvas, kind, tile);
          done(undefined, canvas);
        })
        .catch((error: Error) => done(error, canvas));
      return canvas;
    },
  });
  return new (Layer as unknown as new (options: L.GridLayerOptions) => L.GridLayer)({ tileSize: 256, maxZoom: 19, maxNativeZoom: 18, className: `cells-${kind}`, opacity: kind === "fog" ? 0.75 : 0.9 });
}

export function paintTile(canvas: HTMLCanvasElement, kind: CellLayerKind, tile: MapTile): void {
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  const cell = canvas.width / tile.grid;
  if (kind === "fog") {
    ctx.fillStyle = "rgb(30,35,45)";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.globalCompositeOperation = "destination-out";
    ctx.fillStyle = "#000";
    for (const [column, row] of tile.cells) ctx.fillRect(column * cell - 0.5, row * cell - 0.5, cell + 1, cell + 1);
    ctx.globalCompositeOperation = "source-over";
    return;
  }
  const scale = Math.log1p(Math.max(1, tile.max));
  for (const [column, row, count] of tile.cells) {
    ctx.fillStyle = heatColour(Math.log1p(count) / scale);
    ctx.fillRect(column * cell, row * cell, Math.max(1, cell), Math.max(1, cell));
  }
}

// Deleting a selection on the map: drag a rectangle over the points to
// remove (between the range's times), confirm, and undo from the toast.
// The server keeps the rectangle in the tombstone, so a re-import leaves the
// selected points out too.

import L from "leaflet";
import { useEffect, useRef, useState } from "preact/hooks";
import type { PoloMap } from "../map/basemap";
import { bboxOf } from "../map/selection";
import { DeleteButton, UndoToast, type DeleteOutcome } from "./Deleting";

export function AreaDelete({ map, from, to, onDeleted }: { map: PoloMap | null; from: string; to: string; onDeleted: () => void }) {
  const [selecting, setSelecting] = useState(false);
  const [bounds, setBounds] = useState<L.LatLngBounds | null>(null);
  const [deleted, setDeleted] = useState<DeleteOutcome | null>(null);
  const rectangle = useRef<L.Rectangle | null>(null);

  // Drawing: press, drag, release. The map does not pan meanwhile.
  useEffect(() => {
    if (!map || !selecting) return;
    const m = map.map;
    let start: L.LatLng | null = null;
    m.dragging.disable();
    m.getContainer().classList.add("selecting-area");
    const down = (e: L.LeafletMouseEvent) => {
      start = e.latlng;
      rectangle.current?.remove();
      rectangle.current = L.rectangle(L.latLngBounds(start, start), { color: "#b91c1c", weight: 2, dashArray: "4 4", interactive: false }).addTo(m);
    };
    const move = (e: L.LeafletMouseEvent) => {
      if (start) rectangle.current?.setBounds(L.latLngBounds(start, e.latlng));
    };
    const up = (e: L.LeafletMouseEvent) => {
      if (!start) return;
      const drawn = L.latLngBounds(start, e.latlng);
      start = null;
      setSelecting(false);
      setBounds(drawn.getNorth() > drawn.getSouth() && drawn.getEast() > drawn.getWest() ? drawn : null);
    };
    m.on("mousedown", down);
    m.on("mousemove", move);
    m.on("mouseup", up);
    return () => {
      m.off("mousedown", down);
      m.off("mousemove", move);
      m.off("mouseup", up);
      m.dragging.enable();
      m.getContainer().classList.remove("selecting-area");
    };
  }, [map, selecting]);

  // The rectangle goes with the selection.
  useEffect(() => {
    if (!bounds && !selecting) {
      rectangle.current?.remove();
      rectangle.current = null;
    }
  }, [bounds, selecting]);

  const bbox = bounds ? bboxOf({ west: bounds.getWest(), south: bounds.getSouth(), east: bounds.getEast(), north: bounds.getNorth() }) : null;
  return (
    <div class="area-delete">
      <h2>Delete an area</h2>
      {!selecting && !bbox && (
        <button type="button" class="small" onClick={() => setSelecting(true)} data-testid="select-area">
          Select an area on the map…
        </button>
      )}
      {selecting && (
        <p class="muted" role="status">
          Drag a rectangle over the points to delete.{" "}
          <button type="button" class="small link" onClick={() => setSelecting(false)}>
            Cancel
          </button>
        </p>
      )}
      {bbox && (
        <>
          <p class="muted" data-testid="selected-area">
            {bbox[1].toFixed(4)}° to {bbox[3].toFixed(4)}° N, {bbox[0].toFixed(4)}° to {bbox[2].toFixed(4)}° E, within the range shown.
          </p>
          <DeleteButton
            label="Delete the points in this area"
            testId="delete-area"
            question={<>Delete every point inside the rectangle, from every device, between the range's start and end?</>}
            selection={{ from, to, bbox }}
            onDeleted={(outcome) => {
              setDeleted(outcome);
              setBounds(null);
              onDeleted();
            }}
          />{" "}
          <button type="button" class="small" onClick={() => setBounds(null)}>
            Clear selection
          </button>
        </>
      )}
      {deleted && <UndoToast outcome={deleted} onUndone={onDeleted} onClose={() => setDeleted(null)} />}
    </div>
  );
}

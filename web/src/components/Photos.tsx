// The photos of a stay or trip on the day timeline, or of a trip on its own
// page: a strip (or gallery) of thumbnails, each opening the large version; videos and HEIC photos (no thumbnail is
// made of them) show as a labelled tile. `photosOfEntries` sorts a day's
// photos into its entries by capture time.

import type { Entry, PhotoView } from "../api";
import { clockTime } from "../format";

/** The photos taken during each entry (by index), and those taken outside every entry. */
export function photosOfEntries(entries: Entry[], photos: PhotoView[]): { byEntry: Map<number, PhotoView[]>; outside: PhotoView[] } {
  const byEntry = new Map<number, PhotoView[]>();
  const outside: PhotoView[] = [];
  const spans = entries.map((e) => [Date.parse(e.start), Date.parse(e.end)] as const);
  for (const photo of photos) {
    const at = Date.parse(photo.taken);
    // The first entry that holds it; an instant on the border belongs to the later one.
    let index = -1;
    for (let i = spans.length - 1; i >= 0; i--) {
      if (spans[i][0] <= at && at <= spans[i][1]) {
        index = i;
        break;
      }
    }
    if (index < 0) outside.push(photo);
    else byEntry.set(index, [...(byEntry.get(index) ?? []), photo]);
  }
  return { byEntry, outside };
}

/** The UTC offset (minutes east) an RFC 3339 time is written in. */
export function offsetOf(taken: string): number | undefined {
  const match = /([+-])(\d\d):(\d\d)$/.exec(taken);
  if (!match) return taken.endsWith("Z") ? 0 : undefined;
  const minutes = Number(match[2]) * 60 + Number(match[3]);
  return match[1] === "-" ? -minutes : minutes;
}

function caption(photo: PhotoView): string {
  const time = clockTime(photo.taken, offsetOf(photo.taken));
  const where =
    photo.position_from === "history"
      ? ` · placed from your history (${photo.confidence ?? "low"} confidence${photo.applied ? ", applied" : ", to review"})`
      : photo.position_from === "file"
        ? ""
        : " · no position";
  return `${photo.name} · ${time}${photo.camera ? ` · ${photo.camera}` : ""}${where}`;
}

/** A row of thumbnails; `gallery` shows them larger, as the trip page does. */
export function PhotoStrip({ photos, label, gallery = false }: { photos: PhotoView[]; label: string; gallery?: boolean }) {
  if (photos.length === 0) return null;
  return (
    <ul class={gallery ? "photo-strip photo-gallery" : "photo-strip"} aria-label={label} data-testid={gallery ? "photo-gallery" : "photo-strip"}>
      {photos.map((photo) => (
        <li key={photo.id}>
          {photo.thumbnail ? (
            <a href={`${photo.thumbnail}?size=large`} target="_blank" rel="noopener" title={caption(photo)}>
              <img src={`${photo.thumbnail}?size=small`} alt={caption(photo)} loading="lazy" decoding="async" />
            </a>
          ) : (
            <span class={`photo-tile ${photo.media}`} title={caption(photo)} role="img" aria-label={caption(photo)}>
              <span aria-hidden="true">{photo.media === "video" ? "▶" : "▣"}</span>
              <span class="photo-tile-name">{photo.name}</span>
            </span>
          )}
        </li>
      ))}
    </ul>
  );
}

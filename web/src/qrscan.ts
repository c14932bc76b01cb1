// Reading a status code's QR code for the verifier page (/verify): from the
// camera, or from a photo of the code.
//
// The browser's own BarcodeDetector is used where it exists (Chrome on
// Android, macOS and ChromeOS); elsewhere (Firefox, Safari before 17, Chrome
// on Linux and Windows) jsQR decodes canvas frames. jsQR is loaded only when
// a scan starts without BarcodeDetector, so the app's first load does not
// carry it. Typing or pasting the code stays possible: a verifier without a
// camera, or on plain http (browsers give the camera to https and localhost
// only), still checks codes.

/** The part of the Shape Detection API used here (not yet in TypeScript's DOM types). */
interface BarcodeDetectorLike {
  detect(source: CanvasImageSource): Promise<{ rawValue: string }[]>;
}
type BarcodeDetectorClass = {
  new (options: { formats: string[] }): BarcodeDetectorLike;
  getSupportedFormats?: () => Promise<string[]>;
};

/** The browser's QR detector, when it has one that reads QR codes. */
async function nativeDetector(): Promise<BarcodeDetectorLike | null> {
  const Detector = (globalThis as { BarcodeDetector?: BarcodeDetectorClass }).BarcodeDetector;
  if (!Detector) return null;
  try {
    const formats = (await Detector.getSupportedFormats?.()) ?? ["qr_code"];
    return formats.includes("qr_code") ? new Detector({ formats: ["qr_code"] }) : null;
  } catch {
    return null;
  }
}

/** Decodes a QR code in RGBA pixels with jsQR (loaded on first use); `null` when there is none. */
export async function decodePixels(data: Uint8ClampedArray, width: number, height: number): Promise<string | null> {
  const { default: jsQR } = await import("jsqr");
  const found = jsQR(data, width, height, { inversionAttempts: "attemptBoth" });
  return found?.data ? found.data : null;
}

/** The code in what a QR code held: the text itself, or a link's `code` parameter. */
export function codeFromScan(text: string): string {
  const trimmed = text.trim();
  try {
    const url = new URL(trimmed);
    return url.searchParams.get("code")?.trim() || trimmed;
  } catch {
    return trimmed;
  }
}

/** Why the camera cannot be used, in words for the page; `null` when it may work. */
export function cameraUnavailable(): string | null {
  if (!window.isSecureContext) return "The camera works only over https (or on this computer's own address); paste the code instead.";
  if (!navigator.mediaDevices?.getUserMedia) return "This browser gives no access to a camera; paste the code instead.";
  return null;
}

/** What `getUserMedia` refused, in words for the page. */
export function cameraError(e: unknown): string {
  const name = e instanceof DOMException ? e.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "The camera was not allowed. Allow it in the browser's site settings, or paste the code.";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "No camera was found. Paste the code instead.";
  if (name === "NotReadableError") return "The camera is in use by another app.";
  return `The camera could not be started${e instanceof Error && e.message ? `: ${e.message}` : ""}.`;
}

/** A running scan: stop it to release the camera. */
export interface Scan {
  stop(): void;
}

/**
 * Shows the camera in `video` and looks for a QR code about five times a second until one is
 * found (`onCode`, once) or the scan is stopped. Rejects when the camera cannot be started.
 */
export async function scanCamera(video: HTMLVideoElement, onCode: (text: string) => void): Promise<Scan> {
  const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: "environment" } }, audio: false });
  let stopped = false;
  let timer: number | undefined;
  const stop = () => {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };
  video.srcObject = stream;
  video.setAttribute("playsinline", "");
  video.muted = true;
  await video.play().catch(() => undefined);
  const detector = await nativeDetector();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const look = async () => {
    if (stopped) return;
    let text: string | null = null;
    if (video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA && video.videoWidth > 0) {
      try {
        if (detector) {
          text = (await detector.detect(video))[0]?.rawValue ?? null;
        } else if (context) {
          canvas.width = video.videoWidth;
          canvas.height = video.videoHeight;
          context.drawImage(video, 0, 0);
          text = await decodePixels(context.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
        }
      } catch {
        text = null; // a frame that could not be read: the next one may
      }
    }
    if (stopped) return;
    if (text) {
      stop();
      onCode(codeFromScan(text));
      return;
    }
    timer = window.setTimeout(look, 200);
  };
  void look();
  return { stop };
}

/** Reads a QR code from a photo or screenshot of it; `null` when none is found. */
export async function scanImage(file: Blob): Promise<string | null> {
  const bitmap = await createImageBitmap(file);
  try {
    const detector = await nativeDetector();
    if (detector) {
      const found = (await detector.detect(bitmap))[0]?.rawValue;
      if (found) return codeFromScan(found);
    }
    // Large photos are scaled down: jsQR's time grows with the pixels, a QR code needs few.
    const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    if (!context) return null;
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const text = await decodePixels(context.getImageData(0, 0, canvas.width, canvas.height).data, canvas.width, canvas.height);
    return text ? codeFromScan(text) : null;
  } finally {
    bitmap.close();
  }
}

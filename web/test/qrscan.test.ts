// Reading status codes back from QR codes (the verifier's camera and photo
// paths share `decodePixels`), and the checks the authority's forms make
// before they send anything.
import QRCode from "qrcode";
import { describe, expect, it } from "vitest";
import { periodProblem, reasonProblem } from "../src/exposure";
import { codeFromScan, decodePixels } from "../src/qrscan";

/** `text` as the web app draws it (error correction M), as RGBA pixels: `scale` pixels a module, a quiet zone of 4. */
function qrPixels(text: string, scale = 4, dark = 0, light = 255): { data: Uint8ClampedArray; size: number } {
  const qr = QRCode.create(text, { errorCorrectionLevel: "M" });
  const modules = qr.modules.size;
  const size = (modules + 8) * scale;
  const data = new Uint8ClampedArray(size * size * 4).fill(light);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const mx = Math.floor(x / scale) - 4;
      const my = Math.floor(y / scale) - 4;
      const on = mx >= 0 && my >= 0 && mx < modules && my < modules && qr.modules.get(my, mx);
      const i = (y * size + x) * 4;
      data[i] = data[i + 1] = data[i + 2] = on ? dark : light;
      data[i + 3] = 255;
    }
  }
  return { data, size };
}

const CODE =
  "PX1.eyJ1IjoxMiwicyI6ImV4cG9zZWQiLCJ2IjoxNzY1MDAwMDAwMDAwLCJ0IjoxNzY0MDAwMDAwMDAwfQ.q1B6zq0JcJ1HbYx2hVbD9w6y0R0p5D3a1p2n4V4Jx1Y3L1f6i8mVZ2e7fQv3kL0c9s8t7u6w5x4y3z2a1b0c9";

describe("reading a status code's QR code", () => {
  it("decodes a code as the status page draws it, dark on light and inverted", async () => {
    const { data, size } = qrPixels(CODE);
    expect(await decodePixels(data, size, size)).toBe(CODE);
    const inverted = qrPixels(CODE, 4, 255, 0);
    expect(await decodePixels(inverted.data, inverted.size, inverted.size)).toBe(CODE);
  });

  it("finds nothing in a picture without a code", async () => {
    const blank = new Uint8ClampedArray(200 * 200 * 4).fill(255);
    expect(await decodePixels(blank, 200, 200)).toBeNull();
  });

  it("takes the code itself, or a link's code parameter", () => {
    expect(codeFromScan(`  ${CODE}\n`)).toBe(CODE);
    expect(codeFromScan(`https://polo.example/verify?code=${encodeURIComponent(CODE)}`)).toBe(CODE);
    expect(codeFromScan("https://polo.example/verify")).toBe("https://polo.example/verify");
  });
});

describe("the authority's forms", () => {
  it("ask for a reason of 1 to 1000 characters", () => {
    expect(reasonProblem("   ")).toContain("Give a reason");
    expect(reasonProblem("half an hour at the same table")).toBeNull();
    expect(reasonProblem("x".repeat(1000))).toBeNull();
    expect(reasonProblem("x".repeat(1001))).toContain("At most 1000 characters (1001 now)");
  });

  it("check the infectious period as the server does", () => {
    const now = Date.parse("2024-05-20T12:00:00Z");
    expect(periodProblem("", "2024-05-01T00:00", "2024-05-03T00:00", now)).toContain("Name the user");
    expect(periodProblem("carol", "", "2024-05-03T00:00", now)).toContain("start and the end");
    expect(periodProblem("carol", "2024-05-03T00:00", "2024-05-01T00:00", now)).toContain("end after it starts");
    expect(periodProblem("carol", "2024-03-01T00:00", "2024-05-03T00:00", now)).toContain("at most 60 days");
    expect(periodProblem("carol", "2024-05-21T00:00", "2024-05-23T00:00", now)).toContain("future");
    expect(periodProblem("carol", "2024-05-01T00:00", "2024-05-03T00:00", now)).toBeNull();
  });
});

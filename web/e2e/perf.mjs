// The front-end performance check, run by `polo-bench web`: opens the map
// explorer over ten years of a large user's history in headless Chromium and
// measures, per run (a fresh browser context each time, so the first run is
// a cold load):
//   - time to first map render: from navigation start to the frame after
//     the overview was drawn (the app's `polo:map-rendered` mark, set two
//     animation frames after drawing, so the frame was painted);
//   - the JS heap after rendering (CDP Performance.getMetrics, after a GC);
//   - long tasks (PerformanceObserver 'longtask', from document start), during
//     the load and during interaction: zooming in twice, panning, zooming
//     out, switching the heatmap on.
// Prints one JSON object on stdout; polo-bench compares it with the targets.
//
// Environment: POLO_URL, POLO_USER, POLO_PASSWORD, POLO_RUNS (default 3),
// POLO_CHROMIUM (default /usr/bin/chromium), POLO_SCREENSHOTS (optional).

import { chromium } from "playwright-core";
import { join } from "node:path";

const base = process.env.POLO_URL;
const user = process.env.POLO_USER;
const password = process.env.POLO_PASSWORD;
const runs = Number(process.env.POLO_RUNS || 3);
const shots = process.env.POLO_SCREENSHOTS;
if (!base || !user || !password) throw new Error("POLO_URL, POLO_USER and POLO_PASSWORD must be set");

const TILE_HOST = /^https?:\/\/([a-z0-9-]+\.)*tile\.openstreetmap\.org\//;

async function measure(browser, run) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, timezoneId: "UTC" });
  // Offline like CI: tiles fail and the bundled basemap is drawn instead.
  await context.route(TILE_HOST, (route) => route.abort("internetdisconnected"));
  const login = await context.request.post(`${base}/api/v1/session`, { data: { username: user, password } });
  if (!login.ok()) throw new Error(`login failed: ${login.status()} ${await login.text()}`);
  await context.addInitScript(() => {
    localStorage.setItem("polo.session", "1");
    window.__longTasks = [];
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) window.__longTasks.push({ start: Math.round(entry.startTime), duration: Math.round(entry.duration) });
    }).observe({ type: "longtask", buffered: true });
  });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => {
    if (m.type() === "error" && !(m.text().startsWith("Failed to load resource") && TILE_HOST.test(m.location()?.url ?? ""))) errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");

  await page.goto(`${base}/map?range=10y`);
  await page.locator(".explorer-map[data-rendered]").waitFor({ timeout: 60_000 });
  const render = await page.evaluate(() => {
    const mark = performance.getEntriesByName("polo:map-rendered")[0];
    const overview = performance.getEntriesByType("resource").find((r) => r.name.includes("/api/v1/map/overview"));
    const element = document.querySelector(".explorer-map");
    return {
      firstRenderMs: Math.round(mark.startTime),
      overviewRequestMs: overview ? Math.round(overview.responseEnd - overview.requestStart) : null,
      overviewBytes: overview ? overview.encodedBodySize : null,
      drawMs: Number(element.dataset.rendered),
      points: Number(element.dataset.points),
      segments: mark.detail?.segments ?? null,
    };
  });
  const pixels = await page.$$eval(".leaflet-overlay-pane canvas", (canvases) => {
    let count = 0;
    for (const canvas of canvases) {
      const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 3; i < data.length; i += 4) if (data[i] > 0) count += 1;
    }
    return count;
  });
  await cdp.send("HeapProfiler.collectGarbage").catch(() => undefined);
  const metrics = Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
  const loadTasks = await page.evaluate(() => window.__longTasks.slice());

  // Interaction: zoom in twice, pan, zoom out, heatmap on. Each phase's
  // start is recorded so a long task can be attributed to it.
  const phases = [{ name: "load", start: 0 }];
  const phase = async (name) => phases.push({ name, start: await page.evaluate(() => Math.round(performance.now())) });
  await page.waitForTimeout(500);
  const map = page.locator(".explorer-map");
  const box = await map.boundingBox();
  await phase("zoom in");
  await page.getByRole("button", { name: "Zoom in" }).click();
  await page.waitForTimeout(600);
  await phase("zoom in again");
  await page.getByRole("button", { name: "Zoom in" }).click();
  await page.waitForTimeout(600);
  await phase("pan");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 - 250, box.y + box.height / 2 - 120, { steps: 12 });
  await page.mouse.up();
  await page.waitForTimeout(600);
  await phase("zoom out");
  await page.getByRole("button", { name: "Zoom out" }).click();
  await page.waitForTimeout(600);
  await phase("heatmap");
  await page.getByLabel("Heatmap").check();
  await page.locator(".cells-heatmap canvas").first().waitFor();
  await page.waitForTimeout(1000);
  const allTasks = (await page.evaluate(() => window.__longTasks.slice())).map((task) => ({
    ...task,
    phase: phases.filter((p) => p.start <= task.start).pop()?.name ?? "load",
  }));
  if (shots) await page.screenshot({ path: join(shots, `perf-run-${run}.png`) });
  await context.close();
  return {
    run,
    ...render,
    pixels,
    jsHeapUsedMB: Math.round((metrics.JSHeapUsedSize / 1048576) * 10) / 10,
    jsHeapTotalMB: Math.round((metrics.JSHeapTotalSize / 1048576) * 10) / 10,
    longTasksDuringLoad: loadTasks.length,
    longTaskList: allTasks,
    longestTaskMs: Math.max(0, ...allTasks.map((t) => t.duration)),
    longTasks: allTasks.length,
    errors,
  };
}

const browser = await chromium.launch({
  executablePath: process.env.POLO_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const results = [];
  for (let run = 1; run <= runs; run += 1) results.push(await measure(browser, run));
  console.log(JSON.stringify({ runs: results }));
} finally {
  await browser.close();
}

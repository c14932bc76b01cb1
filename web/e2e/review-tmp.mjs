import { chromium } from "playwright-core";
const base = process.env.BASE;
const out = process.env.OUT;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
const ctx = await browser.newContext({ viewport: { width: 1280, height: 860 }, locale: "en-GB", timezoneId: "Europe/Berlin" });
await ctx.route(/tile\.openstreetmap\.org/, (r) => r.abort("internetdisconnected"));
const page = await ctx.newPage();
page.on("pageerror", (e) => console.log("PAGEERROR", e.message));
page.on("console", (m) => { if (m.type() === "error" && !m.text().includes("Failed to load resource")) console.log("CONSOLE", m.text()); });
await page.goto(`${base}/`);
await page.getByLabel("User name").fill("alice");
await page.getByLabel("Password").fill("a long password");
await page.getByRole("button", { name: "Log in" }).click();
await page.getByRole("navigation", { name: "Main" }).waitFor();
const pages = (process.env.PAGES || "/day/2019-07-14|/map?range=all|/map?range=all&layer=heatmap|/map?range=all&layer=fog|/trips|/places|/stats|/stats?period=year|/imports|/devices|/sharing|/account").split("|");
for (const [size, vp] of [["desktop", { width: 1280, height: 860 }], ["phone", { width: 390, height: 800 }]]) {
  await page.setViewportSize(vp);
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const path of pages) {
      const t0 = Date.now();
      await page.goto(`${base}${path}`);
      await page.waitForLoadState("networkidle").catch(() => {});
      const ms = Date.now() - t0;
      const name = path.replace(/[^a-z0-9]+/gi, "_").replace(/^_/, "") + `-${size}-${scheme}`;
      await page.screenshot({ path: `${out}/${name}.png`, fullPage: false });
      console.log(`${name}: ${ms} ms`);
    }
  }
}
await browser.close();

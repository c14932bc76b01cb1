// Throwaway visual review (not committed): the Together and exposure pages.
import { chromium } from "playwright-core";
const base = "http://127.0.0.1:18080";
const day = process.argv[2];
const out = "/tmp/shots/png";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium" });
const errors = [];
async function as(user, pages) {
  for (const [size, viewport] of [["desktop", { width: 1280, height: 860 }], ["phone", { width: 390, height: 800 }]]) {
    for (const scheme of ["light", "dark"]) {
      const context = await browser.newContext({ viewport, colorScheme: scheme });
      const page = await context.newPage();
      page.on("pageerror", (e) => errors.push(`${user} ${e}`));
      page.on("console", (m) => m.type() === "error" && !m.text().includes("tile") && errors.push(`${user} console: ${m.text()}`));
      await page.goto(`${base}/`);
      await page.getByLabel("User name").fill(user);
      await page.getByLabel("Password").fill("review-password-1");
      await page.getByRole("button", { name: "Log in" }).click();
      await page.getByRole("button", { name: "Log out" }).waitFor();
      for (const [name, path] of pages) {
        await page.goto(`${base}${path}`);
        await page.waitForTimeout(2500);
        await page.screenshot({ path: `${out}/${user}-${name}-${size}-${scheme}.png`, fullPage: true });
      }
      await context.close();
    }
  }
}
await as("alice", [["day", `/day/${day}`], ["sharing", "/sharing"], ["exposure", "/exposure"], ["verify", "/verify"]]);
await as("hana", [["authority", "/authority"]]);
await browser.close();
console.log(errors.length ? errors.join("\n") : "no page errors");

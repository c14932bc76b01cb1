// Drives polo's OIDC sign-in in headless Chromium against provider.mjs
// (crates/polo-cli/tests/web_e2e.rs starts both and sets):
//   POLO_URL, POLO_WEB (the web app's directory, for playwright-core), POLO_CHROMIUM,
//   POLO_SCREENSHOTS, POLO_LINK_USER and POLO_LINK_PASSWORD (a password account to link)
// Checks: an account made at first sign-in (with the admin role from its groups), a sign-in
// outside the allowed domains refused with the reason, and a password account linked on the
// account page that then signs in through the provider. Screenshots of the sign-in pages (the
// account page's two-factor set-up, sessions and tokens, the audit log with the sign-ins), light
// and dark, desktop and phone, go to POLO_SCREENSHOTS. Prints "oidc e2e: all passed".

import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const need = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
};
const base = need("POLO_URL");
const shots = need("POLO_SCREENSHOTS");
const { chromium } = createRequire(join(need("POLO_WEB"), "package.json"))("playwright-core");
mkdirSync(shots, { recursive: true });

const browser = await chromium.launch({ executablePath: process.env.POLO_CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
let failed = false;

function check(ok, message) {
  if (!ok) {
    failed = true;
    console.error(`FAILED: ${message}`);
  } else {
    console.log(`ok: ${message}`);
  }
}

async function fresh(scheme = "light") {
  const context = await browser.newContext({ colorScheme: scheme, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => check(false, `page error: ${e.message}`));
  return { context, page };
}

/** At the provider: the development login form, then consent. */
async function atProvider(page, login) {
  await page.waitForSelector('input[name="login"]', { timeout: 15000 });
  await page.fill('input[name="login"]', login);
  await page.fill('input[name="password"]', "any password");
  await page.click('button[type="submit"]');
  // Consent is asked once per account and client.
  const consent = page.locator('button[type="submit"]:has-text("Continue")');
  await consent.waitFor({ timeout: 15000 });
  await consent.click();
}

async function me(page) {
  return page.evaluate(async () => {
    const r = await fetch("/api/v1/me");
    return r.ok ? r.json() : { status: r.status };
  });
}

async function signIn(page, login) {
  await page.goto(`${base}/login`);
  await page.click("#oidc-login");
  await atProvider(page, login);
  await page.waitForURL((url) => url.origin === new URL(base).origin, { timeout: 15000 });
  await page.waitForLoadState("networkidle");
}

// The login page with the provider's button, light and dark, desktop and phone.
for (const scheme of ["light", "dark"]) {
  for (const [name, viewport] of [["desktop", { width: 1280, height: 800 }], ["phone", { width: 390, height: 844 }]]) {
    const context = await browser.newContext({ colorScheme: scheme, viewport });
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.waitForSelector("#oidc-login");
    await page.screenshot({ path: join(shots, `oidc-login-${name}-${scheme}.png`) });
    await context.close();
  }
}

// 1. A new account, created at the first sign-in; its groups make it an administrator.
{
  const { context, page } = await fresh();
  await signIn(page, "ann");
  const who = await me(page);
  check(who.user?.name === "ann", `an account is created at the first sign-in (got ${JSON.stringify(who)})`);
  check(who.user?.admin === true, "the admin group gives the admin role");
  check(new URL(page.url()).pathname !== "/login", `signed in, at ${page.url()}`);
  await page.waitForSelector("#nav", { timeout: 15000 });
  check(true, "the web app shows Ann signed in");
  // The new pages, as the administrator Ann sees them.
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.goto(`${base}/account`);
      await page.waitForSelector("#twofactor-start", { timeout: 15000 }).catch(async (e) => {
        throw new Error(`no two-factor set-up on ${page.url()}: ${await page.locator("main").innerText()}\n${e.message}`);
      });
      await page.click("#twofactor-start");
      await page.waitForSelector("img.qr");
      check(/^[A-Z2-7]{32}$/.test(await page.textContent('[data-testid="totp-secret"]')), "the set-up shows a base32 key");
      await page.locator("#twofactor-card").screenshot({ path: join(shots, `two-factor-${name}-${scheme}.png`) });
      await page.goto(`${base}/account/sessions`);
      await page.waitForSelector('[data-testid="sessions"]');
      const method = await page.textContent('[data-testid="sessions"] tbody');
      check(method.includes("identity provider") && method.includes("this browser"), "the session is listed as this browser's, by the provider");
      await page.screenshot({ path: join(shots, `sessions-${name}-${scheme}.png`), fullPage: true });
      await page.goto(`${base}/account/audit`);
      await page.waitForSelector('[data-testid="audit"] tr[data-action="auth.login"]');
      check((await page.locator('[data-testid="audit"] tr[data-action="auth.login_failed"]').count()) === 0, "no failure yet");
      await page.screenshot({ path: join(shots, `audit-${name}-${scheme}.png`), fullPage: true });
    }
  }
  await context.close();
}

// 2. Someone outside the allowed domains is refused with the reason.
{
  const { context, page } = await fresh("dark");
  await signIn(page, "eve");
  await page.waitForSelector(".login-card .error");
  const text = await page.textContent(".login-card .error");
  check(page.url().includes("/login"), "a refused sign-in returns to the login page");
  check(/eve@evil\.example may not have an account here: only addresses at example\.org/.test(text), `the reason is shown: ${text}`);
  const who = await me(page);
  check(who.status === 401, "no session after a refusal");
  await page.screenshot({ path: join(shots, "oidc-refused-desktop-dark.png") });
  await context.close();
}

// 3. A password account links the provider account on the account page, then signs in with it.
{
  const { context, page } = await fresh();
  await page.goto(`${base}/login`);
  await page.fill('input[name="username"]', need("POLO_LINK_USER"));
  await page.fill('input[name="password"]', need("POLO_LINK_PASSWORD"));
  await page.click('button[type="submit"]');
  await page.waitForFunction(() => location.pathname !== "/login", null, { timeout: 15000 });
  await page.goto(`${base}/account`);
  await page.click("#oidc-link");
  await atProvider(page, "bobby");
  await page.waitForURL(/\/account\?oidc=linked/, { timeout: 15000 });
  await page.waitForSelector("#oidc-card :text('Linked to')");
  check(true, "the account page shows the link");
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.locator("#oidc-card").screenshot({ path: join(shots, `oidc-linked-card-${scheme}.png`) });
  }
  await context.close();

  const second = await fresh();
  await signIn(second.page, "bobby");
  await second.page.waitForSelector("#nav", { timeout: 15000 });
  const who = await me(second.page);
  check(who.user?.name === need("POLO_LINK_USER"), `the linked provider account signs in as ${need("POLO_LINK_USER")} (got ${JSON.stringify(who)})`);
  check(who.user?.admin === false, "not an administrator: not in the admin group");
  await second.context.close();
}

await browser.close();
if (failed) {
  console.error("oidc e2e: FAILED");
  process.exit(1);
}
console.log("oidc e2e: all passed");

// Passkeys in headless Chromium with its virtual authenticator, driven over the
// DevTools protocol (WebAuthn.enable, WebAuthn.addVirtualAuthenticator).
// crates/polo-cli/tests/web_e2e.rs (passkeys_in_chromium) starts polo and sets:
//   POLO_URL (reached by the name localhost: browsers refuse IP addresses as a
//   passkey's site), POLO_WEB (for playwright-core), POLO_CHROMIUM, POLO_SCREENSHOTS,
//   POLO_USER and POLO_PASSWORD (an account without a second factor).
// Checks: a passkey registered on the account page (a discoverable credential with user
// verification); in a fresh browser holding the same credential, signing in with it alone;
// in another, whose authenticator does not verify the user, the password then the passkey as
// the second factor (the code field's alternative); the sessions page naming the passkey
// sign-in; removing the passkey, after which the password alone signs in again. Screenshots of
// the passkeys card and the login pages, light and dark, desktop and phone. Prints
// "passkeys e2e: all passed".

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
const user = need("POLO_USER");
const password = need("POLO_PASSWORD");
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

const VIEWPORTS = [
  ["desktop", { width: 1280, height: 900 }],
  ["phone", { width: 390, height: 844 }],
];

/**
 * A fresh browser with a virtual authenticator that verifies the user (PIN, biometrics) or only
 * sees them present. `credential` puts a passkey made elsewhere on it.
 */
async function fresh({ verifies = true, credential = null, scheme = "light" } = {}) {
  const context = await browser.newContext({ colorScheme: scheme, viewport: VIEWPORTS[0][1] });
  const page = await context.newPage();
  page.on("pageerror", (e) => check(false, `page error: ${e.message}`));
  page.on("dialog", (d) => d.accept());
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: verifies,
      automaticPresenceSimulation: true,
    },
  });
  if (credential) await cdp.send("WebAuthn.addCredential", { authenticatorId, credential });
  const credentials = async () => (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  return { context, page, credentials };
}

async function me(page) {
  return page.evaluate(async () => {
    const r = await fetch("/api/v1/me");
    return r.ok ? r.json() : { status: r.status };
  });
}

async function passwordLogin(page) {
  await page.goto(`${base}/login`);
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
}

async function signedIn(page) {
  try {
    await page.waitForFunction(() => location.pathname !== "/login", null, { timeout: 15000 });
  } catch (e) {
    const shown = await page.locator(".login-card .error").allTextContents();
    throw new Error(`still on the login page (${shown.join(" ") || "no error shown"}): ${e.message}`);
  }
}

// 1. Register a passkey on the account page.
let credential;
{
  const { context, page, credentials } = await fresh();
  await passwordLogin(page);
  await signedIn(page);
  await page.goto(`${base}/account`);
  await page.waitForSelector("#passkeys-card");
  check((await page.locator('[data-testid="passkeys"] li').count()) === 0, "no passkeys at first");
  await page.fill('input[name="passkey-name"]', "Laptop");
  await page.click("#passkey-add");
  await page.waitForSelector('[data-testid="passkeys"] li:has-text("Laptop")', { timeout: 15000 });
  check(true, "the account page lists the new passkey");
  const listed = await page.textContent('[data-testid="passkeys"]');
  check(listed.includes("ES256") && listed.includes("never used"), `listed with its algorithm, unused: ${listed}`);
  const stored = await credentials();
  check(stored.length === 1 && stored[0].isResidentCredential, "the authenticator holds one discoverable credential");
  credential = stored[0];
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of VIEWPORTS) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.locator("#passkeys-card").screenshot({ path: join(shots, `passkeys-card-${name}-${scheme}.png`) });
      await page.screenshot({ path: join(shots, `account-${name}-${scheme}.png`), fullPage: true });
    }
  }
  await context.close();
}

// 2. In another browser holding the same passkey: signing in with it alone, no user name.
{
  const { context, page } = await fresh({ credential });
  await page.goto(`${base}/login`);
  await page.waitForSelector("#passkey-login");
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of VIEWPORTS) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: join(shots, `login-${name}-${scheme}.png`) });
    }
  }
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.click("#passkey-login");
  await signedIn(page);
  const who = await me(page);
  check(who.user?.name === user, `the passkey alone signs in as ${user} (got ${JSON.stringify(who)})`);
  await page.goto(`${base}/account/sessions`);
  await page.waitForSelector('[data-testid="sessions"]');
  const current = await page.textContent('[data-testid="sessions"] tbody tr:has-text("this browser")');
  check(current.includes("(passkey)"), `the session is listed as signed in by passkey: ${current}`);
  await page.goto(`${base}/account`);
  await page.waitForSelector('[data-testid="passkeys"] li:has-text("last used")');
  check(true, "the passkey shows its last use");
  await context.close();
}

// 3. On an authenticator that does not verify the user: the password, then the passkey as the second factor.
{
  const { context, page } = await fresh({ verifies: false, credential: { ...credential, signCount: credential.signCount + 10 } });
  await passwordLogin(page);
  await page.waitForSelector("#passkey-second-factor");
  check(page.url().includes("/login"), "the password alone no longer signs in: a second factor is asked");
  for (const scheme of ["light", "dark"]) {
    for (const [name, viewport] of VIEWPORTS) {
      await page.setViewportSize(viewport);
      await page.emulateMedia({ colorScheme: scheme });
      await page.screenshot({ path: join(shots, `second-factor-${name}-${scheme}.png`) });
    }
  }
  await page.setViewportSize(VIEWPORTS[0][1]);
  await page.click("#passkey-second-factor");
  await signedIn(page);
  const who = await me(page);
  check(who.user?.name === user, `password and passkey sign in (got ${JSON.stringify(who)})`);

  // 4. Removing the passkey: the password alone signs in again.
  await page.goto(`${base}/account`);
  await page.waitForSelector('[data-testid="passkeys"] li');
  await page.click('[data-testid="passkeys"] li button');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="passkeys"] li').length === 0, null, { timeout: 15000 });
  check(true, "the passkey is removed");
  await context.close();
}
{
  const { context, page } = await fresh();
  await passwordLogin(page);
  await signedIn(page);
  check((await me(page)).user?.name === user, "without passkeys the password alone signs in again");
  await context.close();
}

await browser.close();
if (failed) {
  console.error("passkeys e2e: FAILED");
  process.exit(1);
}
console.log("passkeys e2e: all passed");

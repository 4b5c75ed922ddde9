// Account administration in real headless Chromium (issue 18): the admin
// creates an API key in Settings > API Keys, the test uses it over HTTP,
// the admin revokes it and the next request is 401; the admin adds event
// type `Defect` with action `Triage`, an event of it is accepted and both
// appear in the Audit Logs filters; the admin sets up two-factor sign-in
// with a code the test computes from the shown secret with its own TOTP
// (node:crypto HMAC-SHA1, RFC 6238; not Auditlog's code), after which
// sign-in asks for a code and a replayed code is refused. Starts the real
// `auditlog serve --demo`; AUDITLOG_BIN names the binary, CHROMIUM the
// browser. Screenshots go to target/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.AUDITLOG_BIN || path.join(root, "target/debug/auditlog");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = path.join(root, "target/screenshots");

const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.log(`SKIPPED: browser tests: ${CHROMIUM} is not installed (apt-get install chromium chromium-driver)`);
}

let server;
let dataDir;
let base;
let demo; // { password, ingest, read }
let context;
let page;

async function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "auditlog-browser-admin-"));
  server = spawn(BIN, ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--demo"], {
    env: { ...process.env, AUDITLOG_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: server.stdout });
  const found = {};
  await new Promise((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`auditlog exited early with ${code}`)));
    lines.on("line", (line) => {
      let m;
      if ((m = line.match(/console admin: \S+ \/ (\S+)/))) found.password = m[1];
      if ((m = line.match(/ingest key: (\S+)/))) found.ingest = m[1];
      if ((m = line.match(/read key: (\S+)/))) found.read = m[1];
      if ((m = line.match(/auditlog listening on (\S+)/))) {
        base = m[1];
        resolve();
      }
    });
  });
  demo = found;
}

/** Status and JSON body of a request with `key`. */
async function call(method, pathAndQuery, key, body) {
  const response = await fetch(base + pathAndQuery, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

// ---- an independent TOTP (RFC 6238 / RFC 4226), for the test only ----

function base32Decode(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, "").toUpperCase()) {
    const index = alphabet.indexOf(c);
    assert.ok(index >= 0, `not base32: ${c}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(secret, unixSeconds) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac("sha1", secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 1_000_000;
  return String(binary).padStart(6, "0");
}

test("the test's own TOTP matches RFC 6238's SHA-1 vectors", () => {
  const seed = Buffer.from("12345678901234567890");
  // The RFC's 8-digit values, last six digits.
  assert.equal(totp(seed, 59), "287082");
  assert.equal(totp(seed, 1111111109), "081804");
  assert.equal(totp(seed, 1234567890), "005924");
  assert.equal(totp(seed, 2000000000), "279037");
});

async function signInWithPassword() {
  await page.goto(`${base}/login`);
  await page.fill("#account", "demo");
  await page.fill("#email", "admin@demo.local");
  await page.fill("#password", demo.password);
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
}

async function signOut() {
  await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(BIN), `${BIN} is missing; build it with cargo build -p auditlog`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await startServer();
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "auditlog-chromium-admin-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(15_000);
});

after(async () => {
  if (context) await context.close();
  if (server) server.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("account administration in headless Chromium", { skip: !haveChromium && "chromium is not installed" }, async (t) => {
  await signInWithPassword();
  assert.equal(new URL(page.url()).pathname, "/settings/audit-logs");

  await t.test("an API key is created in the console, works over HTTP, and is refused once revoked", async () => {
    await Promise.all([page.waitForNavigation(), page.click("a[href='/settings/api-keys']")]);
    await page.fill("#key-name", "browser test");
    await page.check("#scope-ingest");
    await page.check("#scope-read");
    await Promise.all([page.waitForNavigation(), page.click("#create-key-button")]);
    const secret = (await page.textContent("#key-secret")).trim();
    assert.match(secret, /^alk_/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "api-key-created.png") });

    const used = await call("GET", "/api/v1/events?limit=1", secret);
    assert.equal(used.status, 200, JSON.stringify(used.body));
    const sent = await call("POST", "/api/v1/events", secret, {
      event_type: "Element", action: "Create", actor: { id: "browser" },
    });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));

    // The listing shows the prefix, never the secret again.
    await page.goto(`${base}/settings/api-keys`);
    const html = await page.content();
    assert.ok(!html.includes(secret.slice(8)), "the secret is shown once");
    const row = page.locator("tr[data-status='active']", { hasText: "browser test" });
    assert.match(await row.locator(".prefix").textContent(), new RegExp(secret.slice(0, 8)));
    await Promise.all([page.waitForNavigation(), row.locator("button.revoke-key").click()]);
    assert.match(await page.textContent("#notice"), /revoked/);
    assert.equal(await page.locator("tr[data-status='revoked']", { hasText: "browser test" }).count(), 1);
    await page.screenshot({ path: path.join(SCREENSHOTS, "api-keys.png") });

    const refused = await call("GET", "/api/v1/events?limit=1", secret);
    assert.equal(refused.status, 401, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "invalid_api_key");
  });

  await t.test("event type Defect with action Triage is added, accepted, and offered by the filters", async () => {
    const before = await call("POST", "/api/v1/events", demo.ingest, {
      event_type: "Defect", action: "Triage", actor: { id: "qa-1" },
    });
    assert.equal(before.status, 422, "unknown before it is added");

    await Promise.all([page.waitForNavigation(), page.click("a[href='/settings/event-types']")]);
    await page.fill("#type-name", "Defect");
    await page.fill("#type-actions", "Triage");
    await Promise.all([page.waitForNavigation(), page.click("#add-type-button")]);
    assert.match(await page.textContent("#notice"), /added/);
    const row = page.locator("tr[data-event-type='Defect']");
    assert.equal(await row.getAttribute("data-status"), "active");
    assert.equal(await row.locator("li[data-action='Triage']").count(), 1);
    await page.screenshot({ path: path.join(SCREENSHOTS, "event-types.png") });

    const sent = await call("POST", "/api/v1/events", demo.ingest, {
      event_type: "Defect", action: "Triage", actor: { id: "qa-1" }, target: { id: "BUG-1" },
    });
    assert.equal(sent.status, 201, JSON.stringify(sent.body));

    await page.goto(`${base}/settings/audit-logs`);
    const types = await page.$$eval("#f-event-type option", (options) => options.map((o) => o.value));
    const actions = await page.$$eval("#f-action option", (options) => options.map((o) => o.value));
    assert.ok(types.includes("Defect"), `filter list: ${types}`);
    assert.ok(actions.includes("Triage"), `action list: ${actions}`);
    await page.selectOption("#f-event-type", ["Defect"]);
    await Promise.all([page.waitForNavigation(), page.click("#apply-filters")]);
    const rows = await page.$$eval("table#events tbody tr", (trs) => trs.map((r) => r.getAttribute("data-event-id")));
    assert.deepEqual(rows, [sent.body.events[0].id], "the Defect event is found by the filter");
    await page.screenshot({ path: path.join(SCREENSHOTS, "defect-filtered.png") });
  });

  await t.test("two-factor enrolment, then sign-in needs a code, and a replayed code is refused", async () => {
    await Promise.all([page.waitForNavigation(), page.click("#profile-link")]);
    assert.equal(new URL(page.url()).pathname, "/settings/profile/two-factor");
    await Promise.all([page.waitForNavigation(), page.click("#start-totp")]);
    assert.ok(await page.locator("#totp-qr").isVisible(), "the QR code is shown");
    const qrWidth = await page.$eval("#totp-qr", (img) => img.naturalWidth);
    assert.ok(qrWidth > 0, "the QR code image loads under the page's CSP");
    const secret = base32Decode((await page.textContent("#totp-secret")).trim());
    assert.equal(secret.length, 20);
    await page.screenshot({ path: path.join(SCREENSHOTS, "two-factor-setup.png") });
    const now = Date.now() / 1000;
    await page.fill("#totp-code", totp(secret, now));
    await Promise.all([page.waitForNavigation(), page.click("#confirm-totp")]);
    const codes = await page.$$eval("#recovery-codes code", (els) => els.map((e) => e.textContent));
    assert.equal(codes.length, 10, "ten recovery codes");
    await page.screenshot({ path: path.join(SCREENSHOTS, "two-factor-recovery-codes.png") });

    // Sign-in now asks for a code after the password. The enrolment used
    // this step's code, so the next step's (within the accepted drift) is
    // the one to give.
    await signOut();
    await signInWithPassword();
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.ok(await page.locator("#code").isVisible(), "the code step");
    const cookies = await context.cookies(base);
    assert.ok(!cookies.some((c) => c.name === "auditlog_session" && c.value), "no session before the code");
    await page.screenshot({ path: path.join(SCREENSHOTS, "two-factor-sign-in.png") });
    const code = totp(secret, now + 30);
    await page.fill("#code", code);
    await Promise.all([page.waitForNavigation(), page.click("#verify-code")]);
    assert.equal(new URL(page.url()).pathname, "/settings/audit-logs", "signed in with the code");

    // The same code again is refused.
    await signOut();
    await signInWithPassword();
    await page.fill("#code", code);
    await Promise.all([page.waitForNavigation(), page.click("#verify-code")]);
    assert.match(await page.textContent("#login-error"), /used already/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "two-factor-replay-refused.png") });
    await page.goto(`${base}/settings/audit-logs`);
    assert.equal(new URL(page.url()).pathname, "/login", "still signed out");
  });
});

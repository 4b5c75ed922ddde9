// Settings > Users in headless Chromium (issue 18): the demo admin invites
// an auditor; the one-time sign-in link is opened in a second browser
// (its own profile) which sets a password; the auditor sees the audit
// logs and downloads an export but gets the 403 page on Users, API Keys (and on
// every settings page); the last admin cannot demote themselves.
// Screenshots in target/screenshots/users-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
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
const AUDITOR_PASSWORD = "auditor passphrase 2026";

let server;
let dataDir;
let base;
let adminPassword;
const contexts = [];

async function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "auditlog-users-"));
  server = spawn(BIN, ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--demo"], {
    env: { ...process.env, AUDITLOG_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: server.stdout });
  await new Promise((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`auditlog exited early with ${code}`)));
    lines.on("line", (line) => {
      let m;
      if ((m = line.match(/console admin: \S+ \/ (\S+)/))) adminPassword = m[1];
      if ((m = line.match(/auditlog listening on (\S+)/))) {
        base = m[1];
        resolve();
      }
    });
  });
}

/** A browser with a profile of its own (its own cookies). */
async function browser() {
  const { chromium } = await import("playwright-core");
  const context = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), "auditlog-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1400, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
  });
  contexts.push(context);
  return context.pages()[0] || (await context.newPage());
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(BIN), `${BIN} is missing; build it with cargo build -p auditlog`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await startServer();
});

after(async () => {
  for (const context of contexts) await context.close();
  if (server) server.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

test("an admin invites an auditor who signs in with the one-time link", { skip: !haveChromium && "chromium is not installed" }, async () => {
  const admin = await browser();
  await admin.goto(`${base}/settings/users`);
  await admin.fill("#account", "demo");
  await admin.fill("#email", "admin@demo.local");
  await admin.fill("#password", adminPassword);
  await Promise.all([admin.waitForNavigation(), admin.click("#sign-in")]);
  assert.equal(new URL(admin.url()).pathname, "/settings/users");
  assert.ok(await admin.locator("nav.sidenav >> text=Users").isVisible(), "admins see Users");

  // Invite with the keyboard: type, choose the role, press Enter.
  await admin.focus("#new-email");
  await admin.keyboard.type("auditor@demo.local");
  await admin.selectOption("#new-role", "auditor");
  await Promise.all([admin.waitForNavigation(), admin.press("#new-email", "Enter")]);
  const url = (await admin.textContent("#sign-in-url")).trim();
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/welcome\/[A-Za-z0-9_-]{43}$/);
  await admin.screenshot({ path: path.join(SCREENSHOTS, "users-invited.png"), fullPage: true });
  assert.equal(await admin.getAttribute("tr[data-email='auditor@demo.local']", "data-status"), "invited");

  // The link in a second browser: set the password, signed in.
  const auditor = await browser();
  await auditor.goto(url);
  assert.equal((await auditor.textContent("#welcome-email")).trim(), "auditor@demo.local");
  await auditor.fill("#password", AUDITOR_PASSWORD);
  await auditor.fill("#confirm-password", AUDITOR_PASSWORD);
  await auditor.screenshot({ path: path.join(SCREENSHOTS, "users-welcome.png") });
  await Promise.all([auditor.waitForNavigation(), auditor.click("#set-password")]);
  assert.equal(new URL(auditor.url()).pathname, "/settings/audit-logs");
  assert.ok(Number(await auditor.textContent("#histogram-total")) > 0, "the auditor sees the demo's events");
  assert.equal(await auditor.locator("nav.sidenav >> text=Users").count(), 0, "no Users link for an auditor");
  assert.equal(await auditor.locator("nav.sidenav >> text=Log Streams").count(), 0);
  await auditor.screenshot({ path: path.join(SCREENSHOTS, "users-auditor-audit-logs.png") });

  // The auditor exports and downloads.
  await auditor.click("#export-button");
  await Promise.all([auditor.waitForNavigation(), auditor.click("#confirm-export")]);
  await auditor.goto(`${base}/settings/exports`);
  const row = auditor.locator("table#exports tbody tr").first();
  const deadline = Date.now() + 30_000;
  while ((await row.getAttribute("data-status")) !== "completed") {
    assert.ok(Date.now() < deadline, "the export did not complete");
    await auditor.waitForTimeout(250);
    await auditor.reload();
  }
  const [download] = await Promise.all([auditor.waitForEvent("download"), row.locator("a.download").click()]);
  assert.match(download.suggestedFilename(), /^auditlog-demo-export-\d+\./);

  // Users (and every settings page) answer the 403 page.
  for (const page of ["/settings/users", "/settings/api-keys", "/settings/event-types", "/settings/log-streams"]) {
    const response = await auditor.goto(`${base}${page}`);
    assert.equal(response.status(), 403, page);
    assert.match(await auditor.textContent("main"), /Not allowed/);
  }
  await auditor.screenshot({ path: path.join(SCREENSHOTS, "users-auditor-403.png") });
  // The link worked once.
  const again = await auditor.goto(url);
  assert.equal(again.status(), 404);

  // The last admin cannot demote themselves.
  await admin.goto(`${base}/settings/users`);
  const me = admin.locator("tr[data-email='admin@demo.local']");
  const id = await me.getAttribute("data-user-id");
  await admin.selectOption(`#role-${id}`, "auditor");
  await Promise.all([admin.waitForNavigation(), admin.click(`#set-role-${id}`)]);
  assert.match(await admin.textContent("#form-error"), /must keep an active administrator/);
  assert.equal(await admin.getAttribute("tr[data-email='admin@demo.local']", "data-role"), "admin");
  await admin.screenshot({ path: path.join(SCREENSHOTS, "users-last-admin.png"), fullPage: true });
});

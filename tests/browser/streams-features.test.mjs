// Browser test of the log stream form's new fields (issue 15) in real
// headless Chromium, against the real `auditlog serve --demo`: a Splunk HEC
// stream created from Settings > Log Streams with its index and sourcetype
// (a bad index shown on the form, naming the rule), the values in the API
// and back in the edit form, the key field empty; a TLS client certificate
// (a textarea: PEM line breaks kept) that is not one refused naming the
// field, the key not echoed back. Screenshots go to
// target/screenshots/streams-features-*.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
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
let password;
let admin;
let context;
let page;

function cli(args) {
  return execFileSync(BIN, ["--data-dir", dataDir, ...args], { encoding: "utf8" });
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(BIN), `${BIN} is missing; build it with cargo build -p auditlog`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  dataDir = mkdtempSync(path.join(tmpdir(), "auditlog-browser-streams-"));
  server = spawn(BIN, ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--demo", "--stream-allow-private", "127.0.0.1/32"], {
    env: { ...process.env, AUDITLOG_LOG: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = readline.createInterface({ input: server.stdout });
  await new Promise((resolve, reject) => {
    server.once("exit", (code) => reject(new Error(`auditlog exited early with ${code}`)));
    lines.on("line", (line) => {
      let m;
      if ((m = line.match(/console admin: \S+ \/ (\S+)/))) password = m[1];
      if ((m = line.match(/auditlog listening on (\S+)/))) {
        base = m[1];
        resolve();
      }
    });
  });
  admin = cli(["key", "create", "--account", "demo", "--scope", "admin"]).trim();
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "auditlog-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20_000);
});

after(async () => {
  if (context) await context.close();
  if (server) server.kill("SIGKILL");
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

async function api(pathAndQuery) {
  const response = await fetch(base + pathAndQuery, { headers: { authorization: `Bearer ${admin}` } });
  const body = await response.json();
  assert.ok(response.ok, `${pathAndQuery}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

test("log stream form: HEC index and sourcetype, TLS client certificate", { skip: !haveChromium }, async () => {
  await page.goto(`${base}/login`);
  await page.fill("#account", "demo");
  await page.fill("#email", "admin@demo.local");
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);

  // Splunk HEC: a bad index is shown on the form, naming it.
  await page.goto(`${base}/settings/log-streams/new?kind=splunk_hec`);
  const hec = "http://127.0.0.1:9/services/collector/event";
  await page.fill("#f-url", hec);
  await page.fill("#f-token", "tok-browser");
  await page.fill("#f-index", "Not Valid");
  await page.fill("#f-sourcetype", "auditlog:event");
  await Promise.all([page.waitForNavigation(), page.click("#save-stream")]);
  assert.match(await page.textContent("#form-error"), /index "Not Valid" is not a Splunk index name/);
  assert.equal(await page.inputValue("#f-sourcetype"), "auditlog:event", "the form keeps what was typed");
  await page.fill("#f-token", "tok-browser");
  await page.fill("#f-index", "audit_main");
  await page.screenshot({ path: path.join(SCREENSHOTS, "streams-features-hec-new.png"), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click("#save-stream")]);
  const { streams } = await api("/api/v1/streams");
  assert.equal(streams.length, 1);
  assert.equal(streams[0].index, "audit_main");
  assert.equal(streams[0].sourcetype, "auditlog:event");
  await page.goto(`${base}/settings/log-streams/${streams[0].id}/edit`);
  assert.equal(await page.inputValue("#f-index"), "audit_main");
  assert.equal(await page.inputValue("#f-sourcetype"), "auditlog:event");
  assert.equal(await page.inputValue("#f-client_key"), "", "the key is never shown");

  // A client certificate that is not one: refused naming the field.
  await page.goto(`${base}/settings/log-streams/new?kind=webhook`);
  await page.fill("#f-url", "http://127.0.0.1:9/hook");
  const pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  await page.fill("#f-client_certificate", pem);
  await page.fill("#f-client_key", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
  await Promise.all([page.waitForNavigation(), page.click("#save-stream")]);
  const error = await page.textContent("#form-error");
  assert.ok(/client_certificate/.test(error), error);
  assert.equal((await page.inputValue("#f-client_certificate")).includes("\n"), true, "line breaks kept");
  assert.equal(await page.inputValue("#f-client_key"), "", "the key is not echoed back");
  await page.screenshot({ path: path.join(SCREENSHOTS, "streams-features-client-certificate.png"), fullPage: true });
});

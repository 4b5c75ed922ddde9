// Browser tests of Settings > Retention and Settings > Personal data (issue
// 16) in real headless Chromium, against the real `auditlog serve --demo`:
// the policy form (with its CSRF token), what the next pruning removes and
// what holds it back (a legal hold, a log stream that lags), a pruning's
// progress to done, the Log Streams page naming the stream that holds
// retention back, the personal `details` paths, a legal hold created and
// released, an erasure started and followed to done, and the admin-only
// pages.
// Screenshots go to target/screenshots/retention-*.png.
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
let demo; // { password, ingest, read }
let admin; // an admin API key
let context;
let page;

function cli(args, input = "") {
  return execFileSync(BIN, ["--data-dir", dataDir, ...args], { input, encoding: "utf8" });
}

async function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "auditlog-browser-retention-"));
  server = spawn(
    BIN,
    ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--demo", "--stream-allow-private", "127.0.0.1/32",
      "--retention-min-days", "0", "--prune-interval", "1s", "--prune-test-batch-pause-ms", "300"],
    { env: { ...process.env, AUDITLOG_LOG: "warn" }, stdio: ["ignore", "pipe", "inherit"] },
  );
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

async function api(pathAndQuery, key = demo.read, init = {}) {
  const response = await fetch(base + pathAndQuery, {
    ...init,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers || {}) },
  });
  const body = await response.json();
  assert.ok(response.ok, `${pathAndQuery}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

async function signIn(email, password) {
  await page.goto(`${base}/login`);
  await page.fill("#account", "demo");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
}

async function shot(name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `retention-${name}.png`), fullPage: true });
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(BIN), `${BIN} is missing; build it with cargo build -p auditlog`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await startServer();
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

test("Settings > Retention and Personal data", { skip: !haveChromium }, async (t) => {
  // A legal hold on one demo user's events and a log stream that lags in the middle.
  const events = [];
  for (let next = "/api/v1/events?limit=1000"; next;) {
    const page = await api(next);
    events.push(...page.events);
    next = page.next_cursor ? `/api/v1/events?limit=1000&cursor=${page.next_cursor}` : null;
  }
  const lastSeq = Math.max(...events.map((e) => e.seq));
  const oldest = events.reduce((a, b) => (a.seq < b.seq ? a : b));
  const heldUser = oldest.actor.id;
  const heldCount = events.filter((e) => e.actor.id === heldUser).length;
  cli(["hold", "create", "--account", "demo", "--name", "case-17", "--reason", "litigation", "--user", heldUser]);
  const middle = Math.floor(lastSeq / 2);
  const { stream } = await api("/api/v1/streams", admin, {
    method: "POST",
    body: JSON.stringify({ kind: "webhook", url: "http://127.0.0.1:9/never", from_seq: middle + 1 }),
  });

  await t.test("the policy form shows the policy and refuses a bad value, naming it", async () => {
    await signIn("admin@demo.local", demo.password);
    await page.goto(`${base}/settings/retention`);
    assert.equal(await page.textContent("#policy"), "forever (no policy)");
    assert.match(await page.textContent("#next-pruning"), /No policy: events are kept forever/);
    assert.equal(await page.getAttribute('nav a[href="/settings/retention"]', "aria-current"), "page");
    // The browser would refuse it itself: let it through to the server.
    await page.$eval("#retention-days", (input) => { input.type = "text"; });
    await page.fill("#retention-days", "soon");
    const [response] = await Promise.all([page.waitForNavigation(), page.click("#save-policy")]);
    assert.equal(response.status(), 422);
    assert.match(await page.textContent("#form-error"), /whole days from 0 to 36500/);
    assert.equal(await page.getAttribute("#retention-days", "value"), "soon", "the form keeps what was sent");
  });

  await t.test("a form without the session's CSRF token changes nothing", async () => {
    const status = await page.evaluate(async () => {
      const response = await fetch("/settings/retention", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "csrf=forged&retention_days=0",
      });
      return response.status;
    });
    assert.equal(status, 403);
    const { retention } = await api("/api/v1/retention", admin);
    assert.equal(retention.retention_days, null);
  });

  await t.test("a policy that removes nothing yet shows what holds pruning back", async () => {
    await page.goto(`${base}/settings/retention`);
    await page.fill("#retention-days", "30");
    await Promise.all([page.waitForNavigation(), page.click("#save-policy")]);
    assert.match(await page.textContent("#notice"), /Saved/);
    assert.equal(await page.textContent("#policy"), "30 days after receipt");
    assert.match(await page.textContent("#next-pruning"), /Nothing to remove now/);
    // The cutoff stops pruning before the stream's cursor would.
    assert.match(await page.textContent("#nothing-holds-back"), /No log stream or export holds pruning back/);
    assert.equal(await page.textContent(`#holds tr[data-hold-id] b`), "case-17");
    await shot("policy");
    const { retention } = await api("/api/v1/retention", admin);
    assert.equal(retention.retention_days, 30);
    // Recorded as the API records it, with the console user as actor.
    const [change] = (await api("/api/v1/events?event_type=Auditlog%20Account&limit=1")).events;
    assert.deepEqual(change.details.changes, [{ field: "retention_days", old: null, new: 30 }]);
    assert.equal(change.actor.email, "admin@demo.local");
  });

  await t.test("a pruning's progress is shown until it is done, with the hold's count", async () => {
    await page.goto(`${base}/settings/retention`);
    await page.fill("#retention-days", "0");
    await Promise.all([page.waitForNavigation(), page.click("#save-policy")]);
    // The pruner looks every second; once a pruning runs, the page refreshes
    // itself (batches pause 300 ms here).
    for (let i = 0; (await page.locator("#prunings tr[data-status]").count()) === 0; i++) {
      assert.ok(i < 60, "no pruning started within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 500));
      await page.goto(`${base}/settings/retention`);
    }
    const first = await page.getAttribute("#prunings tbody tr", "data-status");
    if (first !== "done") {
      assert.ok(await page.isVisible("#refresh-note"), "a running pruning refreshes the page");
      assert.match(await page.textContent("#next-pruning"), /is running/);
      await shot("pruning-running");
    }
    await page.waitForSelector('#prunings tbody tr[data-status="done"]', { timeout: 60_000 });
    const row = page.locator("#prunings tbody tr").first();
    assert.equal(await row.locator(".seqs").textContent(), `1 to ${middle}`);
    const { retention } = await api("/api/v1/retention", admin);
    const pruning = retention.prunings[0];
    assert.equal(pruning.status, "done");
    assert.equal(Number(await row.locator(".removed").textContent()), pruning.removed);
    assert.ok(pruning.removed > 0 && pruning.removed <= middle);
    const held = pruning.held.find((h) => h.name === "case-17");
    assert.ok(held && held.count > 0 && held.count <= heldCount, JSON.stringify(pruning));
    assert.match(await row.textContent(), new RegExp(`case-17 \\(${held.count}\\)`));
    assert.match(await page.textContent("#held-back-stream"), new RegExp(`Log stream #${stream.id} has examined events up to seq ${middle}:`));
    assert.match(await page.textContent("#next-pruning"), /Nothing to remove now/);
    await shot("pruning-done");
  });

  await t.test("the Log Streams page names the stream that holds retention back", async () => {
    await page.goto(`${base}/settings/log-streams`);
    const row = page.locator(`tr[data-stream-id="${stream.id}"]`);
    assert.match(await row.locator("[data-holds-retention]").textContent(), new RegExp(`events after seq ${middle} are not pruned`));
    await shot("log-streams");
  });

  await t.test("Personal data: the declared details paths are edited and audited", async () => {
    await page.goto(`${base}/settings/personal-data`);
    await page.fill("#personal-paths", "details.customer.email\n\ndetails.shipping.phone\n");
    await Promise.all([page.waitForNavigation(), page.click("#save-paths")]);
    assert.match(await page.textContent("#notice"), /Saved/);
    assert.equal(await page.inputValue("#personal-paths"), "details.customer.email\ndetails.shipping.phone");
    const declared = await api("/api/v1/account/personal-paths", admin);
    assert.deepEqual(declared.paths, ["details.customer.email", "details.shipping.phone"]);
    await page.fill("#personal-paths", "actor.email");
    const [response] = await Promise.all([page.waitForNavigation(), page.click("#save-paths")]);
    assert.equal(response.status(), 422);
    assert.ok((await page.textContent("#form-error")).length > 0);
    assert.equal(await page.inputValue("#personal-paths"), "actor.email");
    await shot("personal-data");
    const [change] = (await api("/api/v1/events?event_type=Auditlog%20Account&limit=1")).events;
    assert.equal(change.details.changes[0].field, "personal_paths");
    assert.equal(change.actor.email, "admin@demo.local");
  });

  await t.test("Retention: a legal hold is created and released from the page, escaped and audited", async () => {
    await page.goto(`${base}/settings/retention`);
    // A refused hold names the field and keeps what was sent.
    await page.fill("#hold-name", "");
    await page.fill("#hold-reason", "subpoena");
    await page.fill("#hold-q", "type:");
    const [refused] = await Promise.all([page.waitForNavigation(), page.click("#create-hold")]);
    assert.equal(refused.status(), 422);
    assert.match(await page.textContent("#form-error"), /not created\. (Name|Query):/);
    assert.equal(await page.inputValue("#hold-reason"), "subpoena");
    await page.fill("#hold-name", "console-hold");
    await page.fill("#hold-reason", "subpoena <b>17</b>");
    await page.fill("#hold-q", `user:${heldUser}`);
    await Promise.all([page.waitForNavigation(), page.click("#create-hold")]);
    assert.match(await page.textContent("#notice"), /Legal hold created/);
    const { holds } = await api("/api/v1/holds", admin);
    const created = holds.find((h) => h.name === "console-hold");
    assert.ok(created, JSON.stringify(holds));
    assert.equal(created.q, `user:${heldUser}`);
    const row = page.locator(`#holds tr[data-hold-id="${created.id}"]`);
    // The reason is shown as text, not markup.
    assert.match(await row.textContent(), /subpoena <b>17<\/b>/);
    assert.equal(await row.locator("td:nth-child(3) b").count(), 0);
    await shot("hold-created");
    const [record] = (await api("/api/v1/events?event_type=Auditlog%20Legal%20Hold&limit=1")).events;
    assert.equal(record.action, "Create");
    assert.equal(record.actor.email, "admin@demo.local");
    await Promise.all([page.waitForNavigation(), page.click(`#release-hold-${created.id}`)]);
    assert.match(await page.textContent("#notice"), /Legal hold released/);
    assert.equal(await page.locator(`#holds tr[data-hold-id="${created.id}"]`).count(), 0);
    const after = await api("/api/v1/holds", admin);
    assert.ok(!after.holds.some((h) => h.id === created.id), JSON.stringify(after));
    const [release] = (await api("/api/v1/events?event_type=Auditlog%20Legal%20Hold&limit=1")).events;
    assert.equal(release.action, "Release");
    // Releasing it again (a stale page) says so.
    const status = await page.evaluate(async ({ id, csrf }) => {
      const response = await fetch("/settings/retention/holds/release", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: `csrf=${encodeURIComponent(csrf)}&id=${id}`,
      });
      return response.status;
    }, { id: created.id, csrf: await page.getAttribute('#hold-form input[name="csrf"]', "value") });
    assert.equal(status, 404);
    const forged = await page.evaluate(async () => {
      const response = await fetch("/settings/retention/holds", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "csrf=forged&name=forged&reason=forged",
      });
      return response.status;
    });
    assert.equal(forged, 403);
    assert.ok(!(await api("/api/v1/holds", admin)).holds.some((h) => h.name === "forged"));
  });

  await t.test("Personal data: an erasure is started and its progress shown until done", async () => {
    // The most active user among the events no pruning or hold touched.
    const counts = new Map();
    for (const e of events) {
      if (e.seq > middle && e.actor && e.actor.id !== heldUser) counts.set(e.actor.id, (counts.get(e.actor.id) || 0) + 1);
    }
    const [subject] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
    await page.goto(`${base}/settings/personal-data`);
    assert.ok(await page.isVisible("#no-erasures"));
    const [refused] = await Promise.all([page.waitForNavigation(), page.click("#start-erasure")]);
    assert.equal(refused.status(), 422);
    assert.match(await page.textContent("#erasure-error"), /Subject: subject \(the actor id whose events are erased\) is required/);
    await page.fill("#erasure-subject", subject);
    await Promise.all([page.waitForNavigation(), page.click("#start-erasure")]);
    assert.match(await page.textContent("#notice"), /Erasure requested/);
    const { erasures } = await api("/api/v1/erasures", admin);
    const erasure = erasures[0];
    assert.ok(erasure.subject.startsWith("erased:"), JSON.stringify(erasure));
    assert.ok(erasure.events > 0, JSON.stringify(erasure));
    const row = page.locator(`#erasures tr[data-erasure-id="${erasure.id}"]`);
    assert.equal(await row.locator(".pseudonym").textContent(), erasure.subject);
    assert.ok(!(await page.content()).includes(subject), "the page never shows the subject's id");
    if ((await row.getAttribute("data-status")) !== "done") {
      assert.ok(await page.isVisible("#refresh-note"), "a running erasure refreshes the page");
    }
    await page.waitForSelector(`#erasures tr[data-erasure-id="${erasure.id}"][data-status="done"]`, { timeout: 60_000 });
    const done = (await api(`/api/v1/erasures/${erasure.id}`, admin)).erasure;
    assert.equal(done.status, "done");
    assert.equal(Number(await row.locator(".erased").textContent()), done.erased);
    assert.ok(done.erased > 0, JSON.stringify(done));
    await shot("erasure-done");
    const [record] = (await api("/api/v1/events?event_type=Auditlog%20Erasure&limit=1")).events;
    assert.equal(record.details.subject, erasure.subject);
    assert.match(record.actor.id, /^user:\d+$/, "requested by the console user");
  });

  await t.test("an auditor sees neither page", async () => {
    cli(["user", "create", "--account", "demo", "--email", "auditor@demo.local", "--role", "auditor"], "auditor password 123\n");
    await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
    await signIn("auditor@demo.local", "auditor password 123");
    assert.equal(await page.locator('nav a[href="/settings/retention"]').count(), 0);
    for (const pathname of ["/settings/retention", "/settings/personal-data"]) {
      const response = await page.goto(`${base}${pathname}`);
      assert.equal(response.status(), 403, pathname);
      assert.match(await page.textContent("h1"), /administrator role needed/);
    }
  });
});

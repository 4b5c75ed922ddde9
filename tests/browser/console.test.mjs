// Browser tests of the web console in real headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core. They start the real
// `auditlog serve --demo` on a fresh data directory and a free port, and
// compare what the pages show with what the JSON API answers for the same
// filters. Run by scripts/test after the Rust build; AUDITLOG_BIN names the
// binary, CHROMIUM the browser.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import readline from "node:readline";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const BIN = process.env.AUDITLOG_BIN || path.join(root, "target/debug/auditlog");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOTS = path.join(root, "target/screenshots");
// A zone far from UTC, so that a wrong local/UTC conversion shows.
const TIME_ZONE = "America/New_York";

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

/** Runs `auditlog` with `args` on the test's data directory. */
function cli(args, input = "") {
  return execFileSync(BIN, ["--data-dir", dataDir, ...args], { input, encoding: "utf8" });
}

async function startServer() {
  dataDir = mkdtempSync(path.join(tmpdir(), "auditlog-browser-"));
  // Log streams may send to the test's receiver on 127.0.0.1.
  server = spawn(BIN, ["--data-dir", dataDir, "serve", "--listen", "127.0.0.1:0", "--demo", "--stream-allow-private", "127.0.0.1/32"], {
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

async function api(pathAndQuery, key = demo.read, init = {}) {
  const response = await fetch(base + pathAndQuery, {
    ...init,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...(init.headers || {}) },
  });
  const body = await response.json();
  assert.ok(response.ok, `${pathAndQuery}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of params) search.append(name, value);
  return search.toString();
}

async function rowIds() {
  return page.$$eval("table#events tbody tr", (rows) => rows.map((r) => r.getAttribute("data-event-id")));
}

/** The table shows exactly the API's first page for the same filter parameters. */
async function assertTableMatchesApi(params, label) {
  const answer = await api(`/api/v1/events?${query(params)}`);
  const expected = answer.events.map((e) => e.id);
  assert.ok(expected.length > 0, `${label}: the API finds events, so the comparison means something`);
  assert.deepEqual(await rowIds(), expected, `${label}: table rows = API answer`);
  // The chart draws the API's histogram for the same filters, bucket by bucket.
  const interval = (await page.getAttribute("#histogram svg", "aria-label")).match(/per (\w+)$/)[1];
  const histogram = await api(`/api/v1/events/histogram?${query([...params, ["interval", interval]])}`);
  assert.equal(Number(await page.textContent("#histogram-total")), histogram.total, `${label}: histogram total`);
  const bars = await page.$$eval("#histogram svg rect title", (titles) => titles.map((t) => t.textContent));
  assert.deepEqual(bars, histogram.buckets.map((b) => `${b.start}: ${b.count}`), `${label}: histogram bars`);
  return answer.events;
}

/** Parameters of the page's current URL, in order. */
function urlParams() {
  return [...new URL(page.url()).searchParams.entries()];
}

async function openFresh() {
  await page.goto(`${base}/settings/audit-logs`);
}

async function apply() {
  await Promise.all([page.waitForNavigation(), page.click("#apply-filters")]);
}

async function signIn(email, password) {
  await page.fill("#account", "demo");
  await page.fill("#email", email);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
}

before(async () => {
  if (!haveChromium) return;
  assert.ok(existsSync(BIN), `${BIN} is missing; build it with cargo build -p auditlog`);
  mkdirSync(SCREENSHOTS, { recursive: true });
  await startServer();
  const { chromium } = await import("playwright-core");
  const profile = mkdtempSync(path.join(tmpdir(), "auditlog-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    timezoneId: TIME_ZONE,
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

test("console in headless Chromium", { skip: !haveChromium && "chromium is not installed" }, async (t) => {
  await t.test("an anonymous visitor is sent to sign in and back afterwards", async () => {
    await page.goto(`${base}/settings/audit-logs?action=Update`);
    assert.match(page.url(), /\/login\?next=%2Fsettings%2Faudit-logs%3Faction%3DUpdate$/);
    await page.fill("#account", "demo");
    await page.fill("#email", "admin@demo.local");
    await page.fill("#password", "not the password");
    await Promise.all([page.waitForNavigation(), page.click("#sign-in")]);
    assert.match(await page.textContent("#login-error"), /account, email or password is not right/);
    await signIn("admin@demo.local", demo.password);
    assert.equal(new URL(page.url()).pathname, "/settings/audit-logs");
    assert.deepEqual(urlParams(), [["action", "Update"]]);
    const cookies = await context.cookies(base);
    const session = cookies.find((c) => c.name === "auditlog_session");
    assert.ok(session, "Chromium kept the Secure session cookie on http://127.0.0.1");
    assert.equal(session.secure, true);
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, "Lax");
  });

  await t.test("the demo rows are shown, with the histogram, then Older and Newer pages", async () => {
    await openFresh();
    const events = await assertTableMatchesApi([], "no filter");
    assert.equal(events.length, 50);
    assert.equal(await page.locator("#histogram svg rect").count() > 30, true, "about 90 days of bars");
    // Times are shown in the viewer's zone, the full instant on hover.
    const first = page.locator("table#events tbody tr").first().locator("time");
    const iso = await first.getAttribute("datetime");
    const shown = await first.textContent();
    const expected = new Date(iso).toLocaleString("sv-SE", { timeZone: TIME_ZONE }).replace(",", "");
    assert.equal(shown, expected, "time in America/New_York");
    assert.match(await first.getAttribute("title"), new RegExp(iso.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    await page.screenshot({ path: path.join(SCREENSHOTS, "audit-logs.png"), fullPage: false });

    const answer = await api("/api/v1/events?limit=50");
    await Promise.all([page.waitForNavigation(), page.click("#older")]);
    const second = await api(`/api/v1/events?limit=50&cursor=${encodeURIComponent(answer.next_cursor)}`);
    assert.deepEqual(await rowIds(), second.events.map((e) => e.id), "Older shows the next page");
    await Promise.all([page.waitForNavigation(), page.click("#newer")]);
    assert.deepEqual(await rowIds(), answer.events.map((e) => e.id), "Newer returns to the first page");
  });

  await t.test("each filter shows exactly the matching rows", async () => {
    await openFresh();
    // Choosing in a dropdown writes the term into the search box; the query travels as q, with the viewer's zone.
    await page.selectOption("#f-event-type", ["Test Case", "Element"]);
    const typeTerm = await page.inputValue("#f-q");
    assert.ok(['type:"Test Case",Element', 'type:Element,"Test Case"'].includes(typeTerm), typeTerm);
    await apply();
    assert.deepEqual(urlParams(), [["q", typeTerm], ["tz", TIME_ZONE]]);
    let rows = await assertTableMatchesApi(urlParams(), "event type");
    assert.ok(rows.every((e) => ["Test Case", "Element"].includes(e.event_type)));

    await openFresh();
    await page.selectOption("#f-action", ["Delete"]);
    await apply();
    assert.deepEqual(urlParams(), [["q", "action:Delete"], ["tz", TIME_ZONE]]);
    rows = await assertTableMatchesApi(urlParams(), "action");
    assert.ok(rows.every((e) => e.action === "Delete"));

    const sample = (await api("/api/v1/events?limit=200&event_type=Test%20Case")).events;
    const actor = sample[7].actor.id;
    await openFresh();
    const options = await page.$$eval("#actor-list option", (os) => os.map((o) => o.value));
    assert.ok(options.includes(actor), "the type-ahead offers the account's actors");
    await page.fill("#f-user", actor);
    await apply();
    assert.deepEqual(urlParams(), [["q", `user:${actor}`], ["tz", TIME_ZONE]]);
    rows = await assertTableMatchesApi(urlParams(), "user");
    assert.ok(rows.every((e) => e.actor.id === actor));

    const project = sample.find((e) => e.project).project;
    await openFresh();
    await page.selectOption("#f-project", project);
    await apply();
    assert.deepEqual(urlParams(), [["q", `project:${/[\s,"*\\]/.test(project) ? JSON.stringify(project) : project}`], ["tz", TIME_ZONE]]);
    rows = await assertTableMatchesApi(urlParams(), "project");
    assert.ok(rows.every((e) => e.project === project));

    // From/To are typed in the viewer's zone and arrive as UTC instants.
    const all = (await api("/api/v1/events?limit=400")).events;
    const fromInstant = new Date(Math.floor(Date.parse(all[300].time) / 1000) * 1000);
    const toInstant = new Date(Math.floor(Date.parse(all[100].time) / 1000) * 1000);
    const local = (d) => d.toLocaleString("sv-SE", { timeZone: TIME_ZONE }).replace(" ", "T");
    await openFresh();
    await page.fill("#f-from-local", local(fromInstant));
    await page.fill("#f-to-local", local(toInstant));
    await apply();
    const expectedFrom = fromInstant.toISOString();
    const expectedTo = toInstant.toISOString().replace(".000Z", ".999999Z");
    assert.deepEqual(urlParams(), [["tz", TIME_ZONE], ["from", expectedFrom], ["to", expectedTo]]);
    rows = await assertTableMatchesApi(urlParams(), "from/to");
    assert.ok(rows.every((e) => e.time >= expectedFrom.slice(0, 19) && e.time <= expectedTo));
    // The browser drops ":00" seconds from a datetime-local value.
    const seconds = (value) => (value.length === 16 ? `${value}:00` : value);
    assert.equal(seconds(await page.inputValue("#f-from-local")), local(fromInstant), "the picker shows local time again");
    // A range of two days or less is drawn per hour, a longer one per day.
    const short = Date.parse(expectedTo) - Date.parse(expectedFrom) <= 2 * 86_400_000;
    assert.match(await page.getAttribute("#histogram svg", "aria-label"), short ? /per hour$/ : /per day$/);
    const fromDay = new Date(Date.now() - 86_400_000);
    await openFresh();
    await page.fill("#f-from-local", local(new Date(Math.floor(fromDay / 1000) * 1000)));
    await apply();
    assert.match(await page.getAttribute("#histogram svg", "aria-label"), /per hour$/, "one day is drawn per hour");
    await assertTableMatchesApi(urlParams(), "from only");

    // Combined filters, and an empty result that says what to change.
    await page.goto(`${base}/settings/audit-logs?${query([["event_type", "Authentication"], ["action", "Delete"]])}`);
    assert.match(await page.textContent("#empty-state"), /No events match these filters/);
  });

  let targetId;
  await t.test("an Update's field changes are readable and expandable", async () => {
    const steps = ["open the sign-in page", "choose single sign-on", "see the dashboard with every widget loaded"];
    targetId = "TC-BROWSER-1";
    await api("/api/v1/events", demo.ingest, {
      method: "POST",
      body: JSON.stringify({
        events: [
          {
            event_type: "Test Case", action: "Create", actor: { id: "u-browser", name: "Bea Browser", email: "bea@example.com" },
            project: "Checkout", app: "Web", version: "2.3", target: { id: targetId, name: "Login with SSO" },
          },
          {
            event_type: "Test Case", action: "Update", actor: { id: "u-browser", name: "Bea Browser", email: "bea@example.com" },
            project: "Checkout", app: "Web", version: "2.3", target: { id: targetId, name: "Login with SSO" },
            details: { changes: [
              { field: "title", old: "Login", new: "Login with SSO" },
              { field: "steps", old: steps.slice(0, 2), new: steps },
            ] },
          },
        ],
      }),
    });
    await openFresh();
    const row = page.locator("table#events tbody tr").first();
    assert.equal(await row.locator("td.action").textContent(), "Update");
    assert.equal(await row.locator("td.where").textContent(), "Checkout / Web / 2.3");
    assert.match(await row.locator("td.user").textContent(), /Bea Browser\s*bea@example\.com/);
    const title = row.locator("ul.changes li").first();
    assert.equal((await title.textContent()).replace(/\s+/g, " ").trim(), "title: Login → Login with SSO");
    const stepsChange = row.locator("ul.changes li").nth(1);
    const expandable = stepsChange.locator("details.value.new");
    assert.equal(await expandable.getAttribute("open"), null, "long values start folded");
    await expandable.locator("summary").click();
    assert.equal(await expandable.getAttribute("open"), "");
    assert.deepEqual(JSON.parse(await expandable.locator("pre").textContent()), steps);
  });

  await t.test("clicking an entity opens its whole history", async () => {
    await openFresh();
    await Promise.all([
      page.waitForNavigation(),
      page.locator("table#events tbody tr").first().locator("td.entity a.history").click(),
    ]);
    assert.deepEqual(urlParams(), [["target_id", targetId]]);
    const rows = await assertTableMatchesApi(urlParams(), "entity history");
    assert.deepEqual(rows.map((e) => e.action), ["Update", "Create"]);
  });

  await t.test("attacker-controlled fields render as text and run nothing", async () => {
    const payloads = {
      script: "<script>window.__xss = 'script'</script>",
      img: "<img src=x onerror=\"window.__xss = 'onerror'\">",
      attr: "\" autofocus onfocus=\"window.__xss = 'attribute'",
      svg: "<svg onload=\"window.__xss = 'svg'\"></svg>",
    };
    await api("/api/v1/events", demo.ingest, {
      method: "POST",
      body: JSON.stringify({
        event_type: "Element", action: "Update",
        actor: { id: "u-xss", name: payloads.script, email: payloads.attr },
        project: payloads.img, app: payloads.svg,
        target: { id: payloads.attr, name: payloads.img },
        details: { changes: [{ field: payloads.script, old: payloads.img, new: payloads.svg }], note: payloads.attr },
      }),
    });
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
    await page.goto(`${base}/settings/audit-logs?user=u-xss`);
    const row = page.locator("table#events tbody tr").first();
    assert.match(await row.locator("td.user").textContent(), /<script>window\.__xss = 'script'<\/script>/);
    assert.equal(await row.locator("td.where").textContent(), `${payloads.img} / ${payloads.svg}`);
    assert.match(await row.locator("td.details").textContent(), /<script>window\.__xss = 'script'<\/script>/);
    assert.equal(await page.locator("table#events img, table#events script, table#events svg").count(), 0, "no element came from event data");
    // The project select and the type-ahead hold the payloads as text too.
    assert.ok((await page.$$eval("#f-project option", (os) => os.map((o) => o.textContent))).includes(payloads.img));
    await row.locator("td.entity a.history").focus();
    assert.equal(await page.evaluate(() => window.__xss), undefined, "no payload ran");
    assert.deepEqual(dialogs, []);
    // The entity link carries the payload as a parameter value, not markup.
    await Promise.all([page.waitForNavigation(), row.locator("td.entity a.history").click()]);
    assert.deepEqual(urlParams(), [["target_id", payloads.attr]]);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  });

  await t.test("Export asks for confirmation, starts, completes and downloads", async () => {
    const filters = [["event_type", "Test Case"], ["action", "Update"]];
    await page.goto(`${base}/settings/audit-logs?${query(filters)}`);
    const expected = await assertTableMatchesApi(filters, "export filters");
    const total = Number(await page.textContent("#histogram-total"));
    await page.click("#export-button");
    const dialog = page.locator("dialog#export-dialog");
    assert.equal(await dialog.getAttribute("open"), "", "the confirmation dialog is open");
    const stated = (await dialog.locator(".export-filters").textContent()).replace(/\s+/g, " ");
    assert.match(stated, /Event Type: Test Case/);
    assert.match(stated, /Action: Update/);
    await page.check("#format-jsonl");
    await page.screenshot({ path: path.join(SCREENSHOTS, "export-dialog.png") });
    await Promise.all([page.waitForNavigation(), page.click("#confirm-export")]);
    assert.equal(
      (await page.textContent("#export-notice")).trim(),
      "Export started: it will appear on the Exports page when ready.",
    );
    assert.deepEqual(urlParams(), [...filters, ["export", "started"]]);

    await Promise.all([page.waitForNavigation(), page.click("nav.sidenav >> text=Exports")]);
    assert.equal(new URL(page.url()).pathname, "/settings/exports");
    const row = page.locator("table#exports tbody tr").first();
    const deadline = Date.now() + 30_000;
    while ((await row.getAttribute("data-status")) !== "completed") {
      assert.ok(Date.now() < deadline, `the export did not complete: ${await row.getAttribute("data-status")}`);
      await page.waitForTimeout(250);
      await page.reload();
    }
    assert.equal(Number(await row.locator("td.rows").textContent()), total, "every matching event is exported");
    assert.match(await row.locator("td.requester").textContent(), /admin@demo\.local \(you\)/);
    assert.match((await row.locator("td.filter-list").textContent()).replace(/\s+/g, " "), /Event Type Test Case.*Action Update/);
    await page.screenshot({ path: path.join(SCREENSHOTS, "exports.png") });

    const [download] = await Promise.all([page.waitForEvent("download"), row.locator("a.download").click()]);
    assert.match(download.suggestedFilename(), /^auditlog-demo-export-\d+\.jsonl$/);
    const file = path.join(dataDir, "downloaded.jsonl");
    await download.saveAs(file);
    const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, total);
    assert.deepEqual(lines.slice(0, expected.length).map((e) => e.id), expected.map((e) => e.id), "newest first, as the API");
    assert.ok(lines.every((e) => e.event_type === "Test Case" && e.action === "Update"));

    const audited = (await api(`/api/v1/events?${query([["event_type", "Audit Log"]])}`)).events;
    assert.deepEqual(audited.slice(0, 2).map((e) => e.action), ["Download", "Export"]);
    for (const event of audited.slice(0, 2)) {
      assert.match(event.actor.id, /^user:\d+$/);
      assert.equal(event.actor.email, "admin@demo.local");
    }
  });

  await t.test("Live adds new matching events at the top as they are stored", async () => {
    const filters = [["event_type", "Element"]];
    await page.goto(`${base}/settings/audit-logs?${query(filters)}`);
    const before = await rowIds();
    assert.ok(before.length > 0);
    await page.check("#live-toggle");
    await page.waitForFunction(() => /waiting/.test(document.getElementById("live-status").textContent));
    const send = (events) => api("/api/v1/events", demo.ingest, { method: "POST", body: JSON.stringify({ events }) });
    await send([
      { id: "live-1", event_type: "Element", action: "Create", actor: { id: "u-live", name: "<b>Live</b>" }, target: { id: "EL-live" } },
      { id: "live-2", event_type: "Test Case", action: "Create", actor: { id: "u-live" } },
    ]);
    await page.waitForSelector('table#events tbody tr[data-event-id="live-1"]');
    assert.deepEqual(await rowIds(), ["live-1", ...before], "the new row on top, the others unchanged");
    assert.equal(await page.locator('tr[data-event-id="live-2"]').count(), 0, "an event the filters leave out is not added");
    const row = page.locator("table#events tbody tr").first();
    assert.equal(await row.locator("td.user").textContent(), "<b>Live</b>", "values stay text");
    assert.equal(await row.locator("td.user b").count(), 0);
    const time = row.locator("time");
    const expected = new Date(await time.getAttribute("datetime")).toLocaleString("sv-SE", { timeZone: TIME_ZONE }).replace(",", "");
    assert.equal(await time.textContent(), expected, "the new row's time in the viewer's zone");
    await page.screenshot({ path: path.join(SCREENSHOTS, "live.png") });
    // Turned off: nothing more is added; a reload shows what the API answers.
    await page.uncheck("#live-toggle");
    await send([{ id: "live-3", event_type: "Element", action: "Delete", actor: { id: "u-live" } }]);
    await page.waitForTimeout(500);
    assert.equal(await page.locator('tr[data-event-id="live-3"]').count(), 0);
    await page.reload();
    await assertTableMatchesApi(filters, "after Live");

    // From an empty page: the table appears with the first live row.
    await page.goto(`${base}/settings/audit-logs?user=u-live-later`);
    assert.ok(await page.isVisible("#empty-state"));
    await page.check("#live-toggle");
    await page.waitForFunction(() => /waiting/.test(document.getElementById("live-status").textContent));
    await send([{ id: "live-4", event_type: "Element", action: "Create", actor: { id: "u-live-later" } }]);
    await page.waitForSelector('table#events tbody tr[data-event-id="live-4"]');
    assert.ok(await page.isVisible("table#events"));
    assert.ok(await page.isHidden("#empty-state"));
    await page.uncheck("#live-toggle");
  });

  await t.test("Log Streams: create a webhook stream, send the test event, see deliveries, pause, then Live", async () => {
    // A webhook receiver on 127.0.0.1 that checks each Standard Webhooks
    // signature itself (node:crypto, not Auditlog's code) once it knows the secret.
    const received = [];
    let secret = null;
    const receiver = createServer((request, response) => {
      const chunks = [];
      request.on("data", (c) => chunks.push(c));
      request.on("end", () => {
        const body = Buffer.concat(chunks);
        const id = request.headers["webhook-id"];
        const timestamp = request.headers["webhook-timestamp"];
        let verified = false;
        if (secret) {
          const key = Buffer.from(secret.slice("whsec_".length), "base64");
          const expected = createHmac("sha256", key).update(`${id}.${timestamp}.`).update(body).digest();
          verified = (request.headers["webhook-signature"] || "").split(" ").some((s) => {
            const given = Buffer.from(s.replace(/^v1,/, ""), "base64");
            return given.length === expected.length && timingSafeEqual(given, expected);
          });
        }
        received.push({ id, verified, events: JSON.parse(body.toString("utf8")) });
        // The answer is shown in the batch history: markup in it must stay text.
        response.writeHead(200, { "content-type": "text/plain" });
        response.end("thanks <img src=x onerror=\"window.__xss = 'answer'\">");
      });
    });
    await new Promise((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    const hook = `http://127.0.0.1:${receiver.address().port}/hook`;
    try {
      await page.goto(`${base}/settings/log-streams`);
      assert.match(await page.textContent("#empty-state"), /No log streams yet/);
      await Promise.all([page.waitForNavigation(), page.click("#new-stream")]);
      assert.equal(await page.inputValue("#f-kind"), "webhook");
      await page.fill("#f-url", hook);
      await page.selectOption("#f-event-type", ["Test Case"]);
      await page.screenshot({ path: path.join(SCREENSHOTS, "log-stream-new.png") });
      await Promise.all([page.waitForNavigation(), page.click("#save-stream")]);
      secret = (await page.textContent("#stream-secret")).trim();
      assert.match(secret, /^whsec_[A-Za-z0-9+/=]+$/, "the secret is shown once");
      await Promise.all([page.waitForNavigation(), page.click("#open-stream")]);
      const streamPath = new URL(page.url()).pathname;
      const id = Number(streamPath.split("/").pop());
      assert.equal(await page.textContent("#stream-status"), "active");
      assert.equal(await page.locator("body").textContent().then((t) => t.includes(secret.slice(6))), false, "never shown again");

      // Send test event: delivered, signed, seq 0, nothing stored.
      await Promise.all([page.waitForNavigation(), page.click("#send-test")]);
      assert.equal(await page.getAttribute("#test-result", "data-delivered"), "true");
      assert.match(await page.textContent("#test-result"), /Test event delivered: the destination answered 200/);
      assert.equal(received.length, 1);
      assert.equal(received[0].verified, true, "the test event's signature verifies");
      assert.equal(received[0].events[0].seq, 0);
      assert.equal(received[0].events[0].test, true);
      await page.screenshot({ path: path.join(SCREENSHOTS, "log-stream-test.png") });

      // A real event: delivered, and the page shows the cursor moved and the batch.
      const sent = await api("/api/v1/events", demo.ingest, {
        method: "POST",
        body: JSON.stringify({ id: "stream-1", event_type: "Test Case", action: "Create", actor: { id: "u-stream" }, target: { id: "TC-stream" } }),
      });
      const seq = sent.events ? sent.events[0].seq : sent.seq;
      assert.ok(seq > 0, JSON.stringify(sent));
      const deadline = Date.now() + 20_000;
      while (!received.some((r) => r.events.some((e) => e.id === "stream-1"))) {
        assert.ok(Date.now() < deadline, "the event was not delivered");
        await page.waitForTimeout(100);
      }
      const delivery = received.find((r) => r.events.some((e) => e.id === "stream-1"));
      assert.equal(delivery.verified, true);
      assert.deepEqual(delivery.events.map((e) => e.seq), [seq], "exactly the matching event");
      for (;;) {
        await page.goto(`${base}${streamPath}`);
        if (Number(await page.textContent("#stream-cursor")) >= seq && (await page.locator("#batches tbody tr").count()) > 0) break;
        assert.ok(Date.now() < deadline, "the page never showed the delivery");
        await page.waitForTimeout(200);
      }
      assert.equal(await page.textContent("#stream-status"), "active");
      assert.equal(await page.textContent("#stream-lag"), "0");
      const batch = page.locator("#batches tbody tr").first();
      assert.equal(await batch.getAttribute("data-status"), "delivered");
      assert.equal(await batch.locator("td.seqs").textContent().then((t) => t.split("–").pop()), String(seq));
      assert.equal(await batch.locator("td.events").textContent(), "1");
      assert.equal(await batch.locator("td.attempts").textContent(), "1");
      assert.match(await batch.locator("td.response").textContent(), /^200 thanks <img src=x onerror=/);
      assert.equal(await page.locator("#batches img").count(), 0, "the destination's answer is text");
      assert.equal(await page.evaluate(() => window.__xss), undefined);
      await page.screenshot({ path: path.join(SCREENSHOTS, "log-stream.png"), fullPage: true });

      // Replay from a seq: the event is delivered again, in a new batch.
      await page.fill("#replay-seq", String(seq));
      await Promise.all([page.waitForNavigation(), page.click("#replay")]);
      assert.match(await page.textContent("#notice"), /Replay set/);
      const again = Date.now() + 20_000;
      while (received.filter((r) => r.events.some((e) => e.id === "stream-1")).length < 2) {
        assert.ok(Date.now() < again, "the replay was not delivered");
        await page.waitForTimeout(100);
      }
      // Replay from a date-time typed in the viewer's zone: it travels as that
      // instant in UTC (an hour ahead: nothing to send again, the cursor goes to the end).
      const instant = new Date(Math.floor(Date.now() / 1000) * 1000 + 3_600_000);
      await page.goto(`${base}${streamPath}`);
      await page.fill("#replay-time-local", instant.toLocaleString("sv-SE", { timeZone: TIME_ZONE }).replace(" ", "T"));
      await Promise.all([page.waitForNavigation(), page.click("#replay")]);
      assert.match(await page.textContent("#notice"), /Replay set/);

      // Pause: the status changes, nothing more is delivered, the list shows the lag.
      await Promise.all([page.waitForNavigation(), page.click("#pause")]);
      assert.equal(await page.textContent("#stream-status"), "paused");
      assert.match(await page.textContent("#notice"), /Paused/);
      assert.ok(await page.isVisible("#resume"));
      const before = received.length;
      await api("/api/v1/events", demo.ingest, {
        method: "POST",
        body: JSON.stringify({ id: "stream-2", event_type: "Test Case", action: "Update", actor: { id: "u-stream" }, target: { id: "TC-stream" } }),
      });
      await page.waitForTimeout(1500);
      assert.equal(received.length, before, "paused: nothing delivered");
      await Promise.all([page.waitForNavigation(), page.click("nav.sidenav >> text=Log Streams")]);
      const row = page.locator(`#streams tr[data-stream-id="${id}"]`);
      assert.equal(await row.getAttribute("data-status"), "paused");
      assert.ok(Number(await row.locator("td.lag").textContent()) >= 1, "the lag shows the event held back");
      assert.equal(await row.locator("td.url").textContent(), hook);
      await page.screenshot({ path: path.join(SCREENSHOTS, "log-streams.png") });

      // Each change is an Auditlog Log Stream event with the console user as actor.
      const audited = (await api(`/api/v1/events?${query([["event_type", "Auditlog Log Stream"]])}`)).events;
      assert.deepEqual(audited.map((e) => e.action), ["Update", "Replay", "Replay", "Create"]);
      assert.deepEqual(audited[0].details.changes, [{ field: "status", old: "active", new: "paused" }]);
      assert.equal(audited[1].details.from_received_at, instant.toISOString().replace(".000Z", ".000000Z"), "the local date-time as UTC");
      assert.equal(audited[2].details.from_seq, seq);
      for (const event of audited) {
        assert.match(event.actor.id, /^user:\d+$/);
        assert.equal(event.source.kind, "console");
        assert.equal(JSON.stringify(event).includes(secret.slice(6)), false, "no secret in the audit events");
      }

      // Live on Audit Logs shows a new event as it is stored.
      await page.goto(`${base}/settings/audit-logs`);
      await page.check("#live-toggle");
      await page.waitForFunction(() => /waiting/.test(document.getElementById("live-status").textContent));
      await api("/api/v1/events", demo.ingest, {
        method: "POST",
        body: JSON.stringify({ id: "stream-live", event_type: "Element", action: "Create", actor: { id: "u-stream" }, target: { id: "EL-stream" } }),
      });
      await page.waitForSelector('table#events tbody tr[data-event-id="stream-live"]');
      assert.equal((await rowIds())[0], "stream-live");
      await page.screenshot({ path: path.join(SCREENSHOTS, "log-stream-live.png") });
      await page.uncheck("#live-toggle");
    } finally {
      receiver.close();
    }
  });

  await t.test("Search: a typed query, a clicked user, an Alt-clicked project, a shared URL, a malformed query", async () => {
    await openFresh();
    const allTotal = Number(await page.textContent("#histogram-total"));
    // The viewer's zone travels with the query, so day buckets start at their midnight.
    assert.equal(await page.inputValue("#f-tz"), TIME_ZONE);

    // Typed: the rows and the histogram change to exactly the API's answer for the same q and tz.
    await page.fill("#f-q", 'type:"Test Case" -action:Delete');
    await apply();
    assert.deepEqual(urlParams(), [["q", 'type:"Test Case" -action:Delete'], ["tz", TIME_ZONE]]);
    let rows = await assertTableMatchesApi(urlParams(), "typed query");
    assert.ok(rows.every((e) => e.event_type === "Test Case" && e.action !== "Delete"));
    const typedTotal = Number(await page.textContent("#histogram-total"));
    assert.ok(typedTotal > 0 && typedTotal < allTotal, `the histogram narrowed: ${typedTotal} of ${allTotal}`);
    // The dropdowns show the query's terms, and choosing in them edits the query.
    assert.deepEqual(await page.$eval("#f-event-type", (s) => [...s.selectedOptions].map((o) => o.value)), ["Test Case"]);
    await page.selectOption("#f-action", ["Update"]);
    assert.equal(await page.inputValue("#f-q"), 'type:"Test Case" -action:Delete action:Update');
    await page.fill("#f-q", 'type:"Test Case" -action:Delete');
    await page.dispatchEvent("#f-q", "input");
    assert.deepEqual(await page.$eval("#f-action", (s) => [...s.selectedOptions].map((o) => o.value)), [], "editing the text updates the dropdowns");
    await page.screenshot({ path: path.join(SCREENSHOTS, "search.png"), fullPage: false });

    // An Alt-click on a row's project adds it negated.
    const projectLink = page.locator("table#events tbody tr td.where a[data-term]").first();
    const projectTerm = await projectLink.getAttribute("data-term");
    await Promise.all([page.waitForNavigation(), projectLink.click({ modifiers: ["Alt"] })]);
    assert.equal(urlParams()[0][1], `type:"Test Case" -action:Delete -${projectTerm}`);
    rows = await assertTableMatchesApi(urlParams(), "Alt-clicked project");
    const projectName = projectTerm.replace(/^project:/, "").replace(/^"|"$/g, "");
    assert.ok(rows.every((e) => e.project !== projectName), "the negated project is gone");
    // A click on a row's user adds `user:<id>` to the query.
    const firstUser = page.locator("table#events tbody tr td.user a[data-term]").first();
    const userTerm = await firstUser.getAttribute("data-term");
    await Promise.all([page.waitForNavigation(), firstUser.click()]);
    assert.equal(urlParams()[0][1], `type:"Test Case" -action:Delete -${projectTerm} ${userTerm}`);
    rows = await assertTableMatchesApi(urlParams(), "clicked user");
    const actorId = userTerm.replace(/^user:/, "").replace(/^"|"$/g, "");
    assert.ok(rows.every((e) => e.actor.id === actorId && e.project !== projectName));

    const sharedUrl = page.url();
    const sharedRows = await rowIds();
    const sharedTotal = await page.textContent("#histogram-total");
    const sharedBars = await page.$$eval("#histogram svg rect title", (ts) => ts.map((t) => t.textContent));
    await page.screenshot({ path: path.join(SCREENSHOTS, "search-terms.png"), fullPage: false });

    // The URL shared into a fresh session (another browser profile) shows the same view after sign-in.
    const { chromium } = await import("playwright-core");
    const other = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), "auditlog-chromium-")), {
      executablePath: CHROMIUM,
      headless: true,
      timezoneId: TIME_ZONE,
      viewport: { width: 1400, height: 900 },
      args: ["--no-sandbox", "--disable-gpu", "--no-first-run"],
    });
    try {
      const fresh = other.pages()[0] || (await other.newPage());
      await fresh.goto(sharedUrl);
      assert.match(fresh.url(), /\/login\?next=/);
      await fresh.fill("#account", "demo");
      await fresh.fill("#email", "admin@demo.local");
      await fresh.fill("#password", demo.password);
      await Promise.all([fresh.waitForNavigation(), fresh.click("#sign-in")]);
      assert.equal(fresh.url(), sharedUrl);
      assert.deepEqual(await fresh.$$eval("table#events tbody tr", (rs) => rs.map((r) => r.getAttribute("data-event-id"))), sharedRows);
      assert.equal(await fresh.textContent("#histogram-total"), sharedTotal);
      assert.deepEqual(await fresh.$$eval("#histogram svg rect title", (ts) => ts.map((t) => t.textContent)), sharedBars);
      assert.equal(await fresh.inputValue("#f-q"), urlParams()[0][1]);
    } finally {
      await other.close();
    }

    // A malformed query: the server's message at its position; the page and table stay as they were.
    const before = page.url();
    await page.fill("#f-q", "type:Login user:");
    await page.click("#apply-filters");
    await page.waitForSelector("#query-error:not([hidden])");
    assert.match(await page.textContent("#query-error"), /position 16/);
    assert.match(await page.textContent("#query-error .query-pointer"), /\n {16}\^$/);
    assert.equal(page.url(), before, "no navigation");
    assert.deepEqual(await rowIds(), sharedRows, "the table is left as it was");
    await page.screenshot({ path: path.join(SCREENSHOTS, "search-error.png"), fullPage: false });
    // Without the script's check the page itself says the same.
    const response = await page.goto(`${base}/settings/audit-logs?${query([["q", "type:Login user:"]])}`);
    assert.equal(response.status(), 400);
    assert.match(await page.textContent("#query-error"), /position 16/);

    // Dragging across the histogram narrows From/To to the bars covered.
    await openFresh();
    const bars = page.locator("#histogram svg rect");
    const count = await bars.count();
    // Bars may be empty (zero height): aim by their x in the chart's 800-wide coordinates.
    const chart = await page.locator("#histogram svg").boundingBox();
    const at = async (i) => {
      const x = Number(await bars.nth(i).getAttribute("x")) + Number(await bars.nth(i).getAttribute("width")) / 2;
      return [chart.x + (x / 800) * chart.width, chart.y + chart.height - 2];
    };
    const [ax, ay] = await at(count - 10);
    const [bx, by] = await at(count - 8);
    const expectedFrom = await bars.nth(count - 10).getAttribute("data-start");
    const expectedEnd = await bars.nth(count - 8).getAttribute("data-end");
    await page.mouse.move(ax, ay);
    await page.mouse.down();
    await page.mouse.move(bx, by, { steps: 4 });
    await Promise.all([page.waitForNavigation(), page.mouse.up()]);
    const params = Object.fromEntries(urlParams());
    assert.equal(new Date(params.from).getTime(), new Date(expectedFrom).getTime(), "From is the first bar's start");
    assert.equal(new Date(params.to).getTime(), new Date(expectedEnd).getTime() - 1, "To ends just before the last bar's end");
    await assertTableMatchesApi(urlParams(), "dragged range");
  });

  await t.test("signing out is recorded as a Logout event", async () => {
    await openFresh();
    await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
    assert.equal(new URL(page.url()).pathname, "/login");
    await page.goto(`${base}/settings/audit-logs`);
    assert.equal(new URL(page.url()).pathname, "/login", "the session ended");
    await signIn("admin@demo.local", demo.password);
    const [logout] = (await api("/api/v1/events?event_type=Authentication&action=Logout&limit=1")).events;
    assert.match(logout.actor.id, /^user:\d+$/);
    assert.equal(logout.actor.email, "admin@demo.local");
    assert.equal(logout.context.ip, "127.0.0.1");
    const mine = [["event_type", "Authentication"], ["user", logout.actor.id]];
    await page.goto(`${base}/settings/audit-logs?${query(mine)}`);
    await assertTableMatchesApi(mine, "the admin's sign-ins and sign-outs");
    const actions = await page.$$eval("table#events tbody tr td.action", (cells) => cells.map((c) => c.textContent));
    // The search test signed in once more, from a second browser session;
    // the wrong password tried first is recorded as Login Failed (issue 18).
    assert.deepEqual(actions, ["Login", "Logout", "Login", "Login", "Login Failed"]);
    assert.match(logout.context.user_agent, /Chrome/);
  });

  await t.test("a member is refused with a clear page", async () => {
    cli(["user", "create", "--account", "demo", "--email", "member@demo.local", "--role", "member"], "member password 123\n");
    await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
    await signIn("member@demo.local", "member password 123");
    const response = await page.goto(`${base}/settings/audit-logs`);
    assert.equal(response.status(), 403);
    assert.equal(await page.textContent("h1"), "Not allowed");
    assert.equal(await page.locator("table#events").count(), 0);
  });
});

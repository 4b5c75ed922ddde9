// Fault tests against the real server: 503 and 429 answers for a while,
// connections dropped, answers lost, requests timing out, and the server
// killed with SIGKILL and restarted while 100,000 events go through a
// batcher. After flush, every event is stored exactly once.
import { test } from "node:test";
import assert from "node:assert/strict";
import { AuditlogClient, event } from "../dist/index.js";
import { eventsOf, killServer, removeDir, startProxy, startServer, tempDir, uniqueProject } from "./harness.mjs";

function valid(project, n) {
  return event("Test Case", "Create", `u-${n % 97}`).project(project).target(`TC-${n}`);
}

/** Stored ids of `project`: each expected once, nothing else. */
async function assertStoredOnce(server, project, ids) {
  const stored = (await eventsOf(server, project)).map((e) => e.id);
  assert.equal(stored.length, ids.length, "stored count");
  assert.equal(new Set(stored).size, stored.length, "duplicate ids stored");
  const expected = new Set(ids);
  assert.ok(
    stored.every((id) => expected.has(id)),
    "an id that was never sent",
  );
}

test("503 and 429 for a while: Retry-After and exponential backoff observed, nothing lost", async () => {
  const dataDir = tempDir();
  const server = await startServer({ dataDir });
  const faults = [
    { status: 503, headers: { "retry-after": "1" } },
    { status: 429, headers: { "retry-after": "1" }, code: "rate_limited" },
    { status: 503 },
    { status: 503 },
    { status: 429, code: "rate_limited" },
  ];
  const proxy = await startProxy(server.base, (n) => faults[n]);
  try {
    const project = uniqueProject("unavailable");
    const client = new AuditlogClient({
      url: proxy.url,
      key: server.keys.ingest,
      retry: { initialDelayMs: 200, maxDelayMs: 5_000 },
    });
    const failed = [];
    const batcher = client.batcher({ maxEvents: 500, concurrency: 1, onFailed: (id, e) => failed.push([id, e]) });
    const ids = [];
    for (let n = 0; n < 2_000; n += 1) ids.push(await batcher.add(valid(project, n)));
    await batcher.flush(60_000);
    assert.deepEqual(failed, []);
    const r = proxy.requests;
    // The five faults hit the first batch; it went through on the sixth try.
    assert.deepEqual(
      r.slice(0, 6).map((q) => q.ids[0]),
      Array(6).fill(ids[0]),
    );
    const gaps = r.slice(0, 6).map((q, i) => (i === 0 ? 0 : q.at - r[i - 1].at)).slice(1);
    // Retry-After: 1 is the least wait after the first two answers.
    assert.ok(gaps[0] >= 990 && gaps[1] >= 990, `gaps ${gaps}`);
    // Without Retry-After: backoff of attempt k is at least 200 ms * 2^k / 2.
    assert.ok(gaps[2] >= 400 - 10, `gaps ${gaps}`);
    assert.ok(gaps[3] >= 800 - 10, `gaps ${gaps}`);
    assert.ok(gaps[4] >= 1600 - 10, `gaps ${gaps}`);
    console.log(`retry gaps (ms): ${gaps.map((g) => Math.round(g)).join(", ")}`);
    await assertStoredOnce(server, project, ids);
  } finally {
    await proxy.close();
    await killServer(server);
    removeDir(dataDir);
  }
});

test("dropped connections, lost answers and timeouts are retried with the same ids: stored once", async () => {
  const dataDir = tempDir();
  const server = await startServer({ dataDir });
  let lost = 0;
  // Request 2 reaches the server, which stores it; the proxy then drops the
  // answer, so the client cannot know and must resend.
  const proxy = await startProxy(server.base, (n) => (n === 0 ? "reset" : n === 1 ? "hang" : undefined));
  const lossy = await startProxy(proxy.url, (n) => {
    if (n === 2 && lost === 0) {
      lost += 1;
      return "forward-then-reset";
    }
    return undefined;
  });
  try {
    const project = uniqueProject("network");
    const receipts = [];
    const client = new AuditlogClient({ url: lossy.url, key: server.keys.ingest, timeoutMs: 500, retry: { initialDelayMs: 50 } });
    const batcher = client.batcher({ maxEvents: 100, concurrency: 1, onReceipt: (r) => receipts.push(r) });
    const ids = [];
    for (let n = 0; n < 300; n += 1) ids.push(await batcher.add(valid(project, n)));
    await batcher.flush(30_000);
    assert.deepEqual(
      proxy.requests.slice(0, 2).map((q) => q.fault),
      ["reset", "hang"],
    );
    assert.equal(lost, 1);
    assert.equal(receipts.length, 300);
    // The batch whose answer was lost was stored by the first try: the
    // resend's receipts say `created: false`.
    assert.equal(receipts.filter((r) => !r.created).length, 100);
    await assertStoredOnce(server, project, ids);
  } finally {
    await lossy.close();
    await proxy.close();
    await killServer(server);
    removeDir(dataDir);
  }
});

test("the server killed with SIGKILL and restarted while 100,000 events go through a batcher: each stored once", async () => {
  const dataDir = tempDir();
  let server = await startServer({ dataDir });
  const keys = server.keys;
  const port = server.port;
  try {
    const project = uniqueProject("kill");
    const failed = [];
    const rejected = [];
    let repeated = 0;
    const client = new AuditlogClient({ url: server.base, key: keys.ingest, timeoutMs: 10_000, retry: { initialDelayMs: 50, maxDelayMs: 1_000 } });
    const batcher = client.batcher({
      maxEvents: 1000,
      concurrency: 2,
      capacity: 10_000,
      onFailed: (id, e) => failed.push([id, String(e)]),
      onRejected: (r) => rejected.push(r),
      onReceipt: (r) => {
        if (!r.created) repeated += 1;
      },
    });
    const total = 100_000;
    let killedAt;
    let restarted;
    const started = performance.now();
    const ids = [];
    for (let n = 0; n < total; n += 1) {
      ids.push(await batcher.add(valid(project, n)));
      if (killedAt === undefined && batcher.stats().stored >= 30_000) {
        killedAt = batcher.stats().stored;
        await killServer(server);
        // Restarted in the background on the same data directory and port,
        // while the producer keeps adding and the batcher keeps retrying.
        restarted = new Promise((resolve) => setTimeout(resolve, 500)).then(() =>
          startServer({ dataDir, listen: `127.0.0.1:${port}`, keys }),
        );
      }
    }
    assert.ok(restarted, "the server was never killed");
    server = await restarted;
    await batcher.flush(240_000);
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `100,000 events in ${seconds.toFixed(1)} s through the batcher; killed after ${killedAt} receipts; ` +
        `${repeated} receipts of resends found the event already stored`,
    );
    assert.deepEqual(failed, []);
    assert.deepEqual(rejected, []);
    assert.equal(batcher.stats().stored, total);
    await assertStoredOnce(server, project, ids);
  } finally {
    await killServer(server);
    removeDir(dataDir);
  }
});

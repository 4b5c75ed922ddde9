// Answers that are rare or malformed: a body over the server's 10 MiB limit
// (split, or reported for one event), retries given up, an aborted send,
// a success without receipts, an error naming events the client cannot place.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { AbortedError, AuditlogClient, HttpError, RejectedError, RetriesExhaustedError, event } from "../dist/index.js";
import { eventsOf, killServer, removeDir, startProxy, startServer, tempDir, uniqueProject } from "./harness.mjs";

let server;
let dataDir;

before(async () => {
  dataDir = tempDir();
  server = await startServer({ dataDir });
});

after(async () => {
  await killServer(server);
  removeDir(dataDir);
});

function valid(project, n) {
  return event("Test Case", "Create", "u-1").project(project).target(`TC-${n}`);
}

/** Runs `body` with a client behind a proxy that applies `fault`. */
async function viaProxy(fault, options, body) {
  const proxy = await startProxy(server.base, fault);
  try {
    await body(new AuditlogClient({ url: proxy.url, key: server.keys.ingest, ...options }), proxy);
  } finally {
    await proxy.close();
  }
}

test("a batch over the server's 10 MiB (413) is sent in halves; all of it stored", async () => {
  const project = uniqueProject("halves");
  // 800 events of about 16 KB: some 13 MB, over the limit; halves fit.
  const events = Array.from({ length: 800 }, (_, n) => valid(project, n).detail("pad", "x".repeat(16_000)).build());
  await viaProxy(() => undefined, {}, async (client, proxy) => {
    const result = await client.sendBatch(events);
    assert.deepEqual(result.rejected, []);
    assert.deepEqual(
      result.receipts.map((r) => r.id),
      events.map((e) => e.id),
    );
    assert.deepEqual(
      proxy.requests.map((r) => r.events),
      [800, 400, 400],
    );
  });
  assert.equal((await eventsOf(server, project)).length, 800);
});

test("one event over 10 MiB is reported by id with the server's 413 reason", async () => {
  const big = valid("big", 1).detail("pad", "x".repeat(11 * 1024 * 1024)).build();
  const error = await new AuditlogClient({ url: server.base, key: server.keys.ingest })
    .send(big)
    .then(() => assert.fail("accepted"), (e) => e);
  assert.ok(error instanceof RejectedError, String(error));
  assert.equal(error.rejection.id, big.id);
  assert.equal(error.rejection.status, 413);
  assert.equal(error.rejection.code, "body_too_large");
});

test("retries stop after maxElapsedMs: send rejects, a batcher reports each event", async () => {
  await viaProxy(() => ({ status: 503 }), { retry: { initialDelayMs: 50, maxElapsedMs: 600 } }, async (client, proxy) => {
    const started = performance.now();
    const error = await client.send(valid("gone", 1)).then(() => assert.fail("accepted"), (e) => e);
    const took = performance.now() - started;
    assert.ok(error instanceof RetriesExhaustedError, String(error));
    assert.equal(error.attempts, proxy.requests.length);
    assert.ok(error.attempts >= 3, `${error.attempts} attempts`);
    assert.match(error.message, /HTTP 503/);
    // Not a timing assertion: only that it did not wait for the default 5 minutes.
    assert.ok(took < 30_000, `gave up after ${took} ms`);
    const failed = [];
    const batcher = client.batcher({ onFailed: (id, e) => failed.push([id, e.name]) });
    const id = await batcher.add(valid("gone", 2));
    await batcher.flush(5_000);
    assert.deepEqual(failed, [[id, "RetriesExhaustedError"]]);
  });
});

test("send with an aborted signal stops waiting at once", async () => {
  await viaProxy(() => "hang", { timeoutMs: 60_000 }, async (client) => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = performance.now();
    await assert.rejects(client.send(valid("abort", 1), { signal: controller.signal }), AbortedError);
    assert.ok(performance.now() - started < 2_000);
  });
});

test("a success without receipts is retried (ids make it safe); the event stored once", async () => {
  const project = uniqueProject("no-receipts");
  const fault = (n) => (n === 0 ? { status: 201, body: "<html>proxy says ok</html>" } : undefined);
  await viaProxy(fault, { retry: { initialDelayMs: 10 } }, async (client, proxy) => {
    const receipt = await client.send(valid(project, 1));
    assert.equal(proxy.requests.length, 2);
    assert.equal(receipt.created, true);
  });
  assert.equal((await eventsOf(server, project)).length, 1);
});

test("receipts that do not match the events sent are an error, not a success", async () => {
  const fault = () => ({ status: 201, body: '{"events": []}' });
  await viaProxy(fault, {}, async (client) => {
    const error = await client.send(valid("mismatch", 1)).then(() => assert.fail("accepted"), (e) => e);
    assert.ok(error instanceof HttpError);
    assert.equal(error.code, "bad_answer");
  });
});

test("a 422 whose details the client cannot place fails the whole request rather than guess", async () => {
  const fault = () => ({ status: 422, code: "invalid_events", details: [{ index: 0, errors: [] }, { what: "?" }] });
  await viaProxy(fault, {}, async (client) => {
    const error = await client.send(valid("unplaced", 1)).then(() => assert.fail("accepted"), (e) => e);
    assert.ok(error instanceof HttpError);
    assert.equal(error.status, 422);
    assert.equal(error.code, "invalid_events");
  });
});

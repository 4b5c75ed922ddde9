// The client against the real server (`auditlog serve --demo` on a throwaway
// data directory): receipts, idempotent resends, per-event rejections, the
// batcher's flush triggers, its full-buffer policies, flush and shutdown.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  AuditlogClient,
  BufferFullError,
  ClosedError,
  DeadlineError,
  HttpError,
  RejectedError,
  event,
} from "../dist/index.js";
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

function client(options = {}) {
  return new AuditlogClient({ url: server.base, key: server.keys.ingest, ...options });
}

/** A valid event of `project`. */
function valid(project, n) {
  return event("Test Case", "Update", `u-${n}`).project(project).target(`TC-${n}`).change("title", `old ${n}`, `new ${n}`);
}

/** An event the server refuses (an action the taxonomy lacks), with an id of its own. */
function invalid(project, n) {
  return { id: `bad-${project}-${n}`, event_type: "Test Case", action: "Explode", actor: { id: "u-1" }, project };
}

test("send resolves with the receipt once stored; resending the same id is idempotent", async () => {
  const project = uniqueProject("send");
  const built = valid(project, 1).build();
  const receipt = await client().send(built);
  assert.equal(receipt.id, built.id);
  assert.equal(receipt.created, true);
  assert.ok(Number.isInteger(receipt.seq) && receipt.seq > 0);
  assert.match(receipt.hash, /^[0-9a-f]{64}$/);
  const again = await client().send(built);
  assert.deepEqual(again, { ...receipt, created: false });
  const stored = await eventsOf(server, project);
  assert.equal(stored.length, 1);
  assert.equal(stored[0].id, built.id);
  assert.equal(stored[0].hash, receipt.hash);
  assert.deepEqual(stored[0].details, { changes: [{ field: "title", old: "old 1", new: "new 1" }] });
});

test("sendBatch: two invalid events are reported by id with the server's reason, the rest stored", async () => {
  const project = uniqueProject("batch");
  const events = Array.from({ length: 10 }, (_, n) => (n === 3 || n === 7 ? invalid(project, n) : valid(project, n).build()));
  const result = await client().sendBatch(events);
  assert.deepEqual(
    result.rejected.map((r) => [r.id, r.index, r.status, r.code]),
    [
      [`bad-${project}-3`, 3, 422, "invalid_events"],
      [`bad-${project}-7`, 7, 422, "invalid_events"],
    ],
  );
  for (const rejection of result.rejected) {
    assert.deepEqual(
      rejection.problems.map((p) => [p.field, p.rule]),
      [["action", "action_not_allowed"]],
    );
    assert.match(rejection.reason, /Explode/);
  }
  const good = events.filter((_, n) => n !== 3 && n !== 7).map((e) => e.id);
  assert.deepEqual(
    result.receipts.map((r) => r.id),
    good,
  );
  const stored = await eventsOf(server, project);
  assert.deepEqual(stored.map((e) => e.id).sort(), [...good].sort());
});

test("a batcher's batch with two invalid events: those two reported by id, the others stored", async () => {
  const project = uniqueProject("batcher-invalid");
  const rejected = [];
  const failed = [];
  const batcher = client().batcher({
    maxEvents: 50,
    onRejected: (r) => rejected.push(r),
    onFailed: (id, e) => failed.push([id, e]),
  });
  const ids = [];
  for (let n = 0; n < 50; n += 1) ids.push(await batcher.add(n === 10 || n === 40 ? invalid(project, n) : valid(project, n)));
  await batcher.flush(10_000);
  assert.deepEqual(failed, []);
  assert.deepEqual(
    rejected.map((r) => r.id),
    [`bad-${project}-10`, `bad-${project}-40`],
  );
  assert.ok(rejected.every((r) => r.reason.includes("Explode")));
  const stored = (await eventsOf(server, project)).map((e) => e.id);
  assert.equal(stored.length, 48);
  assert.deepEqual(stored.sort(), ids.filter((id) => !id.startsWith("bad-")).sort());
  assert.deepEqual(batcher.stats(), { added: 50, stored: 48, rejected: 2, failed: 0, pending: 0 });
});

test("an id stored with other content (409) is reported with the server's reason; the rest is stored", async () => {
  const project = uniqueProject("conflict");
  const first = valid(project, 1).id(`dup-${project}`).build();
  await client().send(first);
  const changed = { ...first, action: "Delete" };
  const others = [valid(project, 2).build(), valid(project, 3).build()];
  const result = await client().sendBatch([others[0], changed, others[1]]);
  assert.equal(result.rejected.length, 1);
  const [rejection] = result.rejected;
  assert.equal(rejection.id, first.id);
  assert.equal(rejection.index, 1);
  assert.equal(rejection.status, 409);
  assert.equal(rejection.code, "conflict");
  assert.match(rejection.reason, new RegExp(first.id));
  assert.deepEqual(
    result.receipts.map((r) => r.id),
    others.map((e) => e.id),
  );
  const stored = await eventsOf(server, project);
  assert.equal(stored.length, 3);
  assert.equal(stored.find((e) => e.id === first.id).action, "Update");
});

test("a time too far in the future is reported with the server's clock", async () => {
  const project = uniqueProject("future");
  const built = valid(project, 1).time(new Date(Date.now() + 3600_000)).build();
  const error = await client()
    .send(built)
    .then(() => assert.fail("accepted"), (e) => e);
  assert.ok(error instanceof RejectedError, String(error));
  const r = error.rejection;
  assert.equal(r.id, built.id);
  assert.deepEqual(
    r.problems.map((p) => [p.field, p.rule]),
    [["time", "in_future"]],
  );
  assert.ok(r.serverTime instanceof Date);
  // The Date header has whole seconds.
  assert.ok(Math.abs(r.serverTime.getTime() - Date.now()) < 5_000, `server time ${r.serverTime.toISOString()}`);
  assert.match(r.reason, /5 minutes in the future.*server's clock read \d{4}-/);
  assert.equal((await eventsOf(server, project)).length, 0);
});

test("a request refused as a whole (bad key) rejects send and reaches onFailed for each event", async () => {
  const bad = new AuditlogClient({ url: server.base, key: "not-a-key" });
  const error = await bad.send(valid("x", 1)).then(() => assert.fail("accepted"), (e) => e);
  assert.ok(error instanceof HttpError);
  assert.equal(error.status, 401);
  const failed = [];
  const batcher = bad.batcher({ onFailed: (id, e) => failed.push([id, e.status]) });
  const ids = [await batcher.add(valid("x", 1)), await batcher.add(valid("x", 2))];
  await batcher.flush(5_000);
  assert.deepEqual(failed, [
    [ids[0], 401],
    [ids[1], 401],
  ]);
});

test("the batcher sends when maxEvents is reached, when maxBytes would be passed, and after intervalMs", async () => {
  const project = uniqueProject("triggers");
  const proxy = await startProxy(server.base, () => undefined);
  try {
    const via = new AuditlogClient({ url: proxy.url, key: server.keys.ingest });
    // By count: 25 events, 10 per batch; the last 5 wait for flush.
    const byCount = via.batcher({ maxEvents: 10, intervalMs: 60_000, concurrency: 1 });
    for (let n = 0; n < 25; n += 1) await byCount.add(valid(project, n));
    await waitFor(() => proxy.requests.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(
      proxy.requests.map((r) => r.events),
      [10, 10],
    );
    await byCount.flush(5_000);
    assert.deepEqual(
      proxy.requests.map((r) => r.events),
      [10, 10, 5],
    );

    // By bytes: each event is about 330 bytes; 1,000 bytes hold two.
    proxy.requests.length = 0;
    const bytesEvent = (n) => valid(project, n).detail("pad", "x".repeat(200));
    const size = JSON.stringify(bytesEvent(0).build()).length;
    assert.ok(size > 300 && size < 450, `event of ${size} bytes`);
    const byBytes = via.batcher({ maxBytes: 1000, intervalMs: 60_000, concurrency: 1 });
    for (let n = 0; n < 6; n += 1) await byBytes.add(bytesEvent(100 + n));
    await byBytes.flush(5_000);
    assert.deepEqual(
      proxy.requests.map((r) => r.events),
      [2, 2, 2],
    );

    // By interval: three events and no flush; they leave after 300 ms.
    proxy.requests.length = 0;
    const byTime = via.batcher({ intervalMs: 300 });
    const added = performance.now();
    for (let n = 0; n < 3; n += 1) await byTime.add(valid(project, 200 + n));
    await waitFor(() => proxy.requests.length === 1);
    assert.equal(proxy.requests[0].events, 3);
    assert.ok(proxy.requests[0].at - added >= 290, `sent after ${proxy.requests[0].at - added} ms`);
    await byTime.flush(5_000);
    assert.equal((await eventsOf(server, project)).length, 34);
  } finally {
    await proxy.close();
  }
});

test("a full buffer: 'error' fails add at once; shutdown past its deadline reports each undelivered event", async () => {
  const project = uniqueProject("full");
  const proxy = await startProxy(server.base, () => "hang");
  try {
    const failed = [];
    const via = new AuditlogClient({ url: proxy.url, key: server.keys.ingest, timeoutMs: 60_000 });
    const batcher = via.batcher({ capacity: 5, maxEvents: 3, whenFull: "error", onFailed: (id, e) => failed.push([id, e]) });
    const ids = [];
    for (let n = 0; n < 5; n += 1) ids.push(await batcher.add(valid(project, n)));
    await assert.rejects(batcher.add(valid(project, 5)), BufferFullError);
    assert.equal(batcher.stats().pending, 5);
    const started = performance.now();
    await assert.rejects(batcher.shutdown(300), DeadlineError);
    const took = performance.now() - started;
    assert.ok(took >= 290 && took < 3_000, `shutdown took ${took} ms`);
    assert.deepEqual(failed.map(([id]) => id).sort(), [...ids].sort());
    assert.ok(failed.every(([, e]) => e instanceof DeadlineError));
    await assert.rejects(batcher.add(valid(project, 6)), ClosedError);
  } finally {
    await proxy.close();
  }
});

test("a full buffer: 'wait' holds add until a batch is delivered, and nothing is lost", async () => {
  const project = uniqueProject("wait");
  // The first request hangs until the client's timeout; its retry goes through.
  const proxy = await startProxy(server.base, (n) => (n === 0 ? "hang" : undefined));
  try {
    const via = new AuditlogClient({ url: proxy.url, key: server.keys.ingest, timeoutMs: 400 });
    const batcher = via.batcher({ capacity: 3, maxEvents: 3, whenFull: "wait" });
    for (let n = 0; n < 3; n += 1) await batcher.add(valid(project, n));
    await waitFor(() => proxy.requests.length === 1);
    const fourth = batcher.add(valid(project, 3)).then(() => proxy.requests.length);
    // add resolved only once the retry (the second request) had stored the batch.
    assert.equal(await fourth, 2);
    await batcher.shutdown(5_000);
    assert.equal((await eventsOf(server, project)).length, 4);
  } finally {
    await proxy.close();
  }
});

test("flush past its deadline rejects, and delivery goes on in the background", async () => {
  const project = uniqueProject("flush-deadline");
  // The first request hangs until the client's timeout (1 s); its retry goes through.
  const proxy = await startProxy(server.base, (n) => (n === 0 ? "hang" : undefined));
  try {
    const via = new AuditlogClient({ url: proxy.url, key: server.keys.ingest, timeoutMs: 1_000 });
    const batcher = via.batcher({ intervalMs: 60_000 });
    for (let n = 0; n < 3; n += 1) await batcher.add(valid(project, n));
    const error = await batcher.flush(100).then(() => assert.fail("flushed"), (e) => e);
    assert.ok(error instanceof DeadlineError, String(error));
    assert.equal(error.pending, 3);
    await batcher.flush(10_000);
    assert.equal(proxy.requests.length, 2);
    assert.equal((await eventsOf(server, project)).length, 3);
  } finally {
    await proxy.close();
  }
});

test("shutdown delivers what is buffered, then refuses add", async () => {
  const project = uniqueProject("shutdown");
  const batcher = client().batcher({ intervalMs: 60_000 });
  for (let n = 0; n < 7; n += 1) await batcher.add(valid(project, n));
  assert.equal((await eventsOf(server, project)).length, 0);
  await batcher.shutdown(5_000);
  assert.equal((await eventsOf(server, project)).length, 7);
  await assert.rejects(batcher.add(valid(project, 8)), ClosedError);
});

async function waitFor(condition, ms = 10_000) {
  const end = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

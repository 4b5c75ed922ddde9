// The parts that need no server: ids, the event builder, backoff and Retry-After.
import { test } from "node:test";
import assert from "node:assert/strict";
import { backoffMs, DEFAULT_RETRY, event, parseRetryAfter, uuidv7, uuidv7Millis } from "../dist/index.js";

test("uuidv7 has the RFC 9562 layout: timestamp, version 7, variant 10", () => {
  const before = Date.now();
  const id = uuidv7();
  const after = Date.now();
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const millis = uuidv7Millis(id);
  assert.ok(millis >= before && millis <= after, `${millis} not in [${before}, ${after}]`);
  // The 48-bit timestamp is written big-endian, beyond 32 bits too.
  assert.equal(uuidv7Millis(uuidv7(0x123456789abc)) >= 0x123456789abc, true);
});

test("uuidv7 ids made in one millisecond are distinct and sort in the order made", () => {
  const ids = Array.from({ length: 10_000 }, () => uuidv7(1_700_000_000_000));
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids);
});

test("the builder writes every SPEC field and assigns a UUIDv7 id", () => {
  const built = event("Test Case", "Update", { id: "u-17", name: "Ada Lovelace", email: "ada@example.com" })
    .time(new Date("2026-11-25T14:03:07.123Z"))
    .project("Checkout")
    .app("Web")
    .version("2.3")
    .target("TC-1042", "Login with SSO")
    .context({ ip: "203.0.113.7", user_agent: "curl", request_id: "r-88" })
    .detail("ticket", "JIRA-1")
    .change("title", "Login", "Login with SSO")
    .build();
  assert.match(built.id, /^[0-9a-f-]{36}$/);
  assert.deepEqual(
    { ...built, id: "x" },
    {
      id: "x",
      time: "2026-11-25T14:03:07.123Z",
      event_type: "Test Case",
      action: "Update",
      actor: { id: "u-17", name: "Ada Lovelace", email: "ada@example.com" },
      project: "Checkout",
      app: "Web",
      version: "2.3",
      target: { id: "TC-1042", name: "Login with SSO" },
      context: { ip: "203.0.113.7", user_agent: "curl", request_id: "r-88" },
      details: { ticket: "JIRA-1", changes: [{ field: "title", old: "Login", new: "Login with SSO" }] },
    },
  );
  assert.equal(event("Test Case", "Create", "u-1").id("mine").build().id, "mine");
});

test("changes() lists exactly the fields whose values differ, with old and new", () => {
  const built = event("Test Case", "Update", "u-1")
    .changes({ title: "a", tags: ["x"], owner: "u-1", gone: 1 }, { title: "b", tags: ["x"], owner: "u-1", added: { k: 1 } })
    .build();
  assert.deepEqual(built.details.changes, [
    { field: "title", old: "a", new: "b" },
    { field: "gone", old: 1, new: null },
    { field: "added", old: null, new: { k: 1 } },
  ]);
  const created = event("Test Case", "Create", "u-1").changes(null, { title: "t" }).build();
  assert.deepEqual(created.details.changes, [{ field: "title", old: null, new: "t" }]);
  assert.equal(event("Test Case", "Update", "u-1").changes({ a: 1 }, { a: 1 }).build().details, undefined);
});

test("backoff doubles per attempt up to the cap, with jitter in the upper half", () => {
  const policy = { ...DEFAULT_RETRY, initialDelayMs: 100, maxDelayMs: 1000 };
  assert.equal(backoffMs(policy, 0, undefined, () => 0), 50);
  assert.equal(backoffMs(policy, 0, undefined, () => 1), 100);
  assert.equal(backoffMs(policy, 3, undefined, () => 0), 400);
  assert.equal(backoffMs(policy, 10, undefined, () => 1), 1000);
  // Retry-After is the least wait.
  assert.equal(backoffMs(policy, 0, 2000, () => 1), 2000);
  assert.equal(backoffMs(policy, 10, 10, () => 1), 1000);
});

test("Retry-After is read as seconds or as an HTTP date", () => {
  assert.equal(parseRetryAfter("3"), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter("soon"), undefined);
  const now = Date.parse("2026-12-06T08:00:00Z");
  assert.equal(parseRetryAfter("Sun, 06 Dec 2026 08:00:05 GMT", now), 5000);
  assert.equal(parseRetryAfter("Sun, 06 Dec 2026 07:00:00 GMT", now), 0);
});

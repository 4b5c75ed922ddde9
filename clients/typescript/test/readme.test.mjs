// The README's example runs as written (TypeScript stripped by the pinned
// compiler) against the real server, importing the package by its name.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { eventsOf, killServer, removeDir, startServer, tempDir } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const readme = readFileSync(path.join(here, "../README.md"), "utf8");

test("the README's example sends its events and prints the receipt", async () => {
  const example = readme.match(/## Example\n[\s\S]*?```ts\n([\s\S]*?)```/)?.[1];
  assert.ok(example, "no ```ts block under ## Example");
  const js = ts.transpileModule(example, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const dataDir = tempDir();
  const server = await startServer({ dataDir });
  // Inside the package, so that `import "auditlog-client"` resolves to it.
  const file = path.join(here, `../dist/readme-example-${process.pid}.mjs`);
  try {
    writeFileSync(file, js.replace("http://127.0.0.1:8080", server.base));
    const before = await eventsOf(server, "Checkout");
    const deletes = { target_id: "TC-7", action: "Delete" };
    const deletesBefore = await eventsOf(server, null, deletes);
    const out = execFileSync(process.execPath, [file], { env: { ...process.env, AUDITLOG_KEY: server.keys.ingest }, encoding: "utf8" });
    assert.match(out, /^\d+ [0-9a-f]{64} true\n$/);
    const after = await eventsOf(server, "Checkout");
    assert.equal(after.length, before.length + 1);
    assert.deepEqual(after[0].details.changes, [{ field: "title", old: "Login", new: "Login with SSO" }]);
    // The batcher's event, delivered by shutdown.
    assert.equal((await eventsOf(server, null, deletes)).length, deletesBefore.length + 1);
  } finally {
    rmSync(file, { force: true });
    await killServer(server);
    removeDir(dataDir);
  }
});

// The type-drift check: the checked-in generated file matches what the
// server describes, and a file that differs makes the check fail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { removeDir, tempDir } from "./harness.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const script = path.join(here, "../scripts/generate-types.mjs");
const generated = path.join(here, "../src/generated/openapi.ts");

function check(file) {
  return spawnSync(process.execPath, [script, "--check", "--file", file], { encoding: "utf8" });
}

test("the checked-in types match the server's OpenAPI description", () => {
  const run = check(generated);
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /matches the server's OpenAPI description/);
});

test("types that differ from the description fail the check", () => {
  const dir = tempDir();
  try {
    const drifted = path.join(dir, "openapi.ts");
    const current = readFileSync(generated, "utf8");
    // A field the server no longer describes.
    writeFileSync(drifted, current.replace("created: boolean;", "created: boolean;\n            stale: string;"));
    assert.notEqual(readFileSync(drifted, "utf8"), current);
    const run = check(drifted);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /differs from the server's OpenAPI description; run `npm run generate`/);
  } finally {
    removeDir(dir);
  }
});

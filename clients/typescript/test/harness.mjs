// Test harness: the real `auditlog` binary on a throwaway data directory and
// 127.0.0.1, reads through its API, and a fault-injecting HTTP proxy.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(root, process.env.CARGO_TARGET_DIR) : path.join(root, "target");
export const BIN = process.env.AUDITLOG_BIN || path.join(targetDir, "debug/auditlog");

export function tempDir() {
  return mkdtempSync(path.join(tmpdir(), "auditlog-ts-"));
}

export function removeDir(dir) {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts `auditlog serve --demo` on `dataDir` and `listen`; resolves with the
 * child, its base URL and the demo account's keys (printed on the first
 * start only: pass `keys` again on a restart).
 */
export async function startServer({ dataDir, listen = "127.0.0.1:0", keys } = {}) {
  const child = spawn(BIN, ["--data-dir", dataDir, "serve", "--listen", listen, "--demo"], {
    env: { ...process.env, AUDITLOG_LOG: "error" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const found = { ...keys };
  const base = await new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`auditlog exited with ${code} before listening`)));
    readline.createInterface({ input: child.stdout }).on("line", (line) => {
      let m;
      if ((m = line.match(/ingest key: (\S+)/))) found.ingest = m[1];
      if ((m = line.match(/read key: (\S+)/))) found.read = m[1];
      if ((m = line.match(/auditlog listening on (\S+)/))) resolve(m[1]);
    });
  });
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return { child, base, port: new URL(base).port, keys: found, dataDir, exited };
}

/** SIGKILL: the server gets no chance to flush anything. */
export async function killServer(server) {
  server.child.kill("SIGKILL");
  await server.exited;
}

/**
 * Every event of `project` (or matching `filters`, an object of query
 * parameters), paged through the API (newest first).
 */
export async function eventsOf(server, project, filters = { project }) {
  const events = [];
  let cursor = null;
  do {
    const query = new URLSearchParams({ ...filters, limit: "1000" });
    if (cursor) query.set("cursor", cursor);
    const response = await fetch(`${server.base}/api/v1/events?${query}`, {
      headers: { authorization: `Bearer ${server.keys.read}` },
    });
    const body = await response.json();
    if (!response.ok) throw new Error(`GET /api/v1/events: ${response.status} ${JSON.stringify(body)}`);
    events.push(...body.events);
    cursor = body.next_cursor;
  } while (cursor);
  return events;
}

/**
 * An HTTP proxy on 127.0.0.1 in front of `upstream`. `fault(n, body)` decides
 * for the n-th request (0-based): `undefined` forwards it; `{status, headers,
 * code, details}` answers it with that (an error body in the SPEC shape, or
 * `body` as given); `"reset"` drops the
 * connection; `"hang"` never answers; `"forward-then-reset"` forwards it and
 * drops the connection instead of relaying the answer. Every request is recorded in `requests`
 * (`at` in ms, the `fault` applied, the number of events and their ids).
 */
export async function startProxy(upstream, fault) {
  const requests = [];
  const hanging = new Set();
  const proxy = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const n = requests.length;
    let ids = [];
    try {
      const parsed = JSON.parse(body.toString("utf8"));
      ids = (parsed.events ?? [parsed]).map((e) => e.id);
    } catch {
      // Not JSON: recorded without ids.
    }
    const action = fault(n, ids);
    requests.push({ at: performance.now(), fault: action, events: ids.length, ids });
    if (action === "reset") {
      req.socket.destroy();
      return;
    }
    if (action === "hang") {
      hanging.add(res);
      return;
    }
    if (action !== undefined && action !== "forward-then-reset") {
      res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      const error = { code: action.code ?? "unavailable", message: "injected by the test proxy", details: action.details };
      res.end(action.body ?? JSON.stringify({ error }));
      return;
    }
    let answer;
    try {
      answer = await fetch(upstream + req.url, {
        method: req.method,
        headers: { authorization: req.headers.authorization, "content-type": req.headers["content-type"] },
        body: req.method === "GET" ? undefined : body,
      });
    } catch {
      // The upstream dropped the connection (or is down): so does the proxy.
      req.socket.destroy();
      return;
    }
    const headers = {};
    for (const name of ["content-type", "date", "retry-after"]) {
      const value = answer.headers.get(name);
      if (value !== null) headers[name] = value;
    }
    if (action === "forward-then-reset") {
      // Stored upstream, but the client never learns it.
      await answer.arrayBuffer();
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, headers);
    res.end(Buffer.from(await answer.arrayBuffer()));
  });
  await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${proxy.address().port}`,
    requests,
    async close() {
      for (const res of hanging) res.socket?.destroy();
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/** A project name of its own for each test, so that counts are exact. */
export function uniqueProject(name) {
  return `${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

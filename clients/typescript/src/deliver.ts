// Delivering a batch of events: one POST /api/v1/events at a time, retried
// while the failure may pass, and cut down when the server names bad events
// (422 by index, 409 for an id stored with other content): those are dropped
// and reported, the rest is sent again. Ids never change between attempts, so
// a request that was stored but whose answer was lost is stored once.

import type { components } from "./generated/openapi.js";
import { AbortedError, HttpError, RetriesExhaustedError, type FieldProblem, type Rejection } from "./errors.js";
import { backoffMs, parseRetryAfter, sleep, type RetryPolicy } from "./retry.js";

/** What the server returned for one stored event. */
export type Receipt = components["schemas"]["Receipt"];
type IngestAnswer = components["schemas"]["IngestAnswer"];
type ErrorBody = components["schemas"]["Error"];

/** An event serialized once, when it was handed to the client. */
export interface Prepared {
  id: string;
  json: string;
  /** UTF-8 length of `json`. */
  bytes: number;
}

/** How requests are made. */
export interface Transport {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  key: string;
  /** One request's limit, answer included. */
  timeoutMs: number;
  retry: RetryPolicy;
  fetch: typeof fetch;
}

/** The outcome of a batch: a receipt for each stored event, a rejection for each refused one. */
export interface BatchResult {
  receipts: Receipt[];
  rejected: Rejection[];
}

const RETRYABLE_STATUS = new Set([429, 502, 503, 504]);

/** The `{"events": [...]}` body of `events`. */
export function batchBody(events: readonly Prepared[]): string {
  return `{"events":[${events.map((e) => e.json).join(",")}]}`;
}

/** Bytes of the batch envelope around the events and their commas. */
export const ENVELOPE_BYTES = batchBody([]).length;

/**
 * Stores `events` (1 to 1,000) or names why each one was not: resolves with
 * receipts and rejections; rejects with `HttpError` when the whole request is
 * refused for a reason retrying cannot change, `RetriesExhaustedError` when
 * the retry policy gives up, `AbortedError` when `signal` aborts.
 */
export async function deliver(t: Transport, events: readonly Prepared[], signal?: AbortSignal): Promise<BatchResult> {
  return deliverIndexed(
    t,
    events.map((event, index) => ({ event, index })),
    signal,
  );
}

/** An event and its index in the caller's batch (rejections name that index). */
interface Indexed {
  event: Prepared;
  index: number;
}

async function deliverIndexed(t: Transport, events: readonly Indexed[], signal?: AbortSignal): Promise<BatchResult> {
  const receipts: Receipt[] = [];
  const rejected: Rejection[] = [];
  let pending = [...events];
  while (pending.length > 0) {
    const answer = await postWithRetry(
      t,
      batchBody(pending.map((p) => p.event)),
      signal,
    );
    if (answer.status === 200 || answer.status === 201) {
      const stored = (answer.body as IngestAnswer).events;
      if (stored.length !== pending.length) {
        throw new HttpError(answer.status, "bad_answer", `${stored.length} receipts for ${pending.length} events`);
      }
      receipts.push(...stored);
      break;
    }
    const error = (answer.body as ErrorBody | undefined)?.error;
    const code = error?.code ?? "unknown";
    const message = error?.message ?? `HTTP ${answer.status}`;
    const named = namedEvents(answer, pending);
    if (named.length > 0) {
      rejected.push(...named);
      const drop = new Set(named.map((r) => r.index));
      pending = pending.filter((p) => !drop.has(p.index));
      continue;
    }
    if (answer.status === 413 && pending.length > 1) {
      // Too large as a whole: the halves may each fit.
      const half = Math.ceil(pending.length / 2);
      for (const part of [pending.slice(0, half), pending.slice(half)]) {
        const result = await deliverIndexed(t, part, signal);
        receipts.push(...result.receipts);
        rejected.push(...result.rejected);
      }
      break;
    }
    const [only] = pending;
    if (answer.status === 413 && only !== undefined) {
      rejected.push({ id: only.event.id, index: only.index, status: 413, code, reason: message, problems: [] });
      break;
    }
    throw new HttpError(answer.status, code, message, error?.details);
  }
  return { receipts, rejected };
}

interface Answer {
  status: number;
  body: unknown;
  date: string | null;
}

/** The events a 422 or 409 names by index, as rejections. */
function namedEvents(answer: Answer, pending: readonly Indexed[]): Rejection[] {
  const error = (answer.body as ErrorBody | undefined)?.error;
  const details = error?.details as unknown;
  if (answer.status === 409 && error?.code === "conflict") {
    const index = (details as { index?: unknown } | undefined)?.index;
    const event = typeof index === "number" ? pending[index] : undefined;
    if (event === undefined || typeof index !== "number") return [];
    return [{ id: event.event.id, index: event.index, status: 409, code: error.code, reason: error.message, problems: [] }];
  }
  if (answer.status === 422 && error?.code === "invalid_events" && Array.isArray(details)) {
    const rejections: Rejection[] = [];
    for (const item of details as Array<{ index?: unknown; errors?: FieldProblem[] }>) {
      const index = item.index;
      const event = typeof index === "number" ? pending[index] : undefined;
      if (event === undefined || typeof index !== "number") continue;
      const problems = Array.isArray(item.errors) ? item.errors : [];
      const rejection: Rejection = {
        id: event.event.id,
        index: event.index,
        status: 422,
        code: error.code,
        reason: problems.map((p) => p.message).join("; ") || error.message,
        problems,
      };
      if (problems.some((p) => p.rule === "in_future") && answer.date !== null) {
        const serverTime = new Date(answer.date);
        if (!Number.isNaN(serverTime.getTime())) {
          rejection.serverTime = serverTime;
          rejection.reason += ` (the server's clock read ${serverTime.toISOString()})`;
        }
      }
      rejections.push(rejection);
    }
    // Only when every named index was understood: otherwise resending the
    // rest would be refused again for the events not dropped.
    return rejections.length === details.length ? rejections : [];
  }
  return [];
}

/** POSTs `body` until an answer that retrying cannot change, within the retry policy. */
async function postWithRetry(t: Transport, body: string, signal?: AbortSignal): Promise<Answer> {
  const started = Date.now();
  for (let attempt = 0; ; attempt += 1) {
    let retryAfterMs: number | undefined;
    let failure: string;
    try {
      const answer = await postOnce(t, body, signal);
      if (!RETRYABLE_STATUS.has(answer.status)) return answer;
      retryAfterMs = parseRetryAfter(answer.retryAfter);
      failure = `HTTP ${answer.status}`;
    } catch (error) {
      if (signal?.aborted) throw new AbortedError();
      failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    const wait = backoffMs(t.retry, attempt, retryAfterMs);
    if (Date.now() + wait - started > t.retry.maxElapsedMs) {
      throw new RetriesExhaustedError(attempt + 1, failure);
    }
    await sleep(wait, signal);
  }
}

/** One POST; rejects on a connection error, a timeout or an unreadable answer. */
async function postOnce(
  t: Transport,
  body: string,
  signal?: AbortSignal,
): Promise<Answer & { retryAfter: string | null }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer within ${t.timeoutMs} ms`)), t.timeoutMs);
  const onAbort = () => controller.abort(new AbortedError());
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const response = await t.fetch(`${t.url}/api/v1/events`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" },
      body,
      signal: controller.signal,
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    if ((response.status === 200 || response.status === 201) && !isIngestAnswer(parsed)) {
      // A success without readable receipts (a proxy's page?): the events
      // may be stored; resending is safe, since ids make it idempotent.
      throw new Error(`answer ${response.status} without receipts`);
    }
    return {
      status: response.status,
      body: parsed,
      date: response.headers.get("date"),
      retryAfter: response.headers.get("retry-after"),
    };
  } catch (error) {
    if (controller.signal.aborted && controller.signal.reason instanceof Error) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
}

function isIngestAnswer(value: unknown): value is IngestAnswer {
  return typeof value === "object" && value !== null && Array.isArray((value as IngestAnswer).events);
}

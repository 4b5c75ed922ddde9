// When to try again: exponential backoff with jitter, and the server's
// `Retry-After` taken as the least wait.

import { AbortedError } from "./errors.js";

/** How failed requests are retried (connection errors, timeouts, 429, 502, 503, 504). */
export interface RetryPolicy {
  /** The first backoff, before jitter. Default 100 ms. */
  initialDelayMs: number;
  /** No backoff grows beyond this (a `Retry-After` may). Default 10 s. */
  maxDelayMs: number;
  /**
   * Give up on a request once this much time has passed since its first
   * attempt (`RetriesExhaustedError`). Default 5 minutes: a server restart
   * or a short outage is waited out.
   */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 10_000,
  maxElapsedMs: 5 * 60_000,
};

/**
 * The wait before retry number `attempt` (0 for the first retry): "equal
 * jitter" — half the exponential step fixed, half random — so that waits
 * grow even with bad luck and many clients do not retry in step. A
 * `Retry-After` is the least wait: the server said when it may succeed.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.min(attempt, 30));
  const jittered = step / 2 + random() * (step / 2);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}

/**
 * `Retry-After` in milliseconds: delay-seconds or an HTTP date (RFC 9110
 * §10.2.3); undefined when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Waits `ms`, or rejects with `AbortedError` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortedError());
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(new AbortedError());
    }
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

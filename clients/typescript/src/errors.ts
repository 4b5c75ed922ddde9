// What the client reports to its caller: every event it does not store is
// named by its id, with the server's reason, never silently dropped.

/** One broken rule of one event, as the server's 422 `details` name it. */
export interface FieldProblem {
  field: string;
  rule: string;
  message: string;
}

/**
 * An event the server refused for good (422, 409, or 413 for one event on
 * its own): resending it cannot succeed, so it was dropped from its batch and
 * the rest of the batch was sent without it.
 */
export interface Rejection {
  /** The event's id (assigned by the client when the caller gave none). */
  id: string;
  /** The event's index in the batch the caller handed over (for a batcher: in the request it was sent in). */
  index: number;
  /** HTTP status of the refusal: 422, 409 or 413. */
  status: number;
  /** The server's error code, e.g. `invalid_events`, `conflict`. */
  code: string;
  /** The server's words: each broken rule's message, joined by "; ". */
  reason: string;
  /** Each broken rule (422); empty for a 409 or 413. */
  problems: FieldProblem[];
  /**
   * For a `time` refused as too far in the future (rule `in_future`): the
   * server's clock when it answered (its `Date` header), so the sender's
   * clock skew can be seen.
   */
  serverTime?: Date;
}

/** The base class of every error this package throws. */
export class AuditlogError extends Error {
  override name = "AuditlogError";
}

/** `send` of one event that the server refused for good. */
export class RejectedError extends AuditlogError {
  override name = "RejectedError";
  constructor(readonly rejection: Rejection) {
    super(`event ${rejection.id} was refused (${rejection.status} ${rejection.code}): ${rejection.reason}`);
  }
}

/**
 * An answer that refuses the whole request and that retrying cannot change
 * (400, 401, 403, 415, 500, a 422 that names no event, …): nothing was stored.
 */
export class HttpError extends AuditlogError {
  override name = "HttpError";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly details?: unknown,
  ) {
    super(`the server answered ${status} ${code}: ${serverMessage}`);
  }
}

/** Retries stopped (the retry policy's `maxElapsedMs`) before any answer stored the events. */
export class RetriesExhaustedError extends AuditlogError {
  override name = "RetriesExhaustedError";
  constructor(
    readonly attempts: number,
    readonly lastError: string,
  ) {
    super(`gave up after ${attempts} attempts; last: ${lastError}`);
  }
}

/** `add` on a full buffer with the `"error"` policy. */
export class BufferFullError extends AuditlogError {
  override name = "BufferFullError";
  constructor(readonly capacity: number) {
    super(`the batcher holds ${capacity} undelivered events, its capacity; the event was not added`);
  }
}

/** `add` after `shutdown()`. */
export class ClosedError extends AuditlogError {
  override name = "ClosedError";
  constructor() {
    super("the batcher is shut down; the event was not added");
  }
}

/** `flush` or `shutdown` passed its deadline with events not yet delivered. */
export class DeadlineError extends AuditlogError {
  override name = "DeadlineError";
  constructor(
    readonly pending: number,
    readonly deadlineMs: number,
  ) {
    super(`${pending} events were not delivered within ${deadlineMs} ms`);
  }
}

/** A request or retry wait ended because the caller's signal aborted it. */
export class AbortedError extends AuditlogError {
  override name = "AbortedError";
  constructor() {
    super("aborted before the server stored the events");
  }
}

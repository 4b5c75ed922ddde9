// auditlog-client: send audit events to an Auditlog server.
//
// Layout:
// - client.ts: `AuditlogClient` — settings, `send`, `sendBatch`, `batcher`
// - batcher.ts: `Batcher` — buffering, flush by count/bytes/interval, flush and shutdown
// - deliver.ts: one batch to the server — retries, dropping and reporting refused events
// - retry.ts: backoff with jitter, `Retry-After`
// - event.ts: the typed event builder
// - prepare.ts: an event serialized once, with its id
// - uuid.ts: UUIDv7 ids
// - errors.ts: what is reported to the caller
// - generated/openapi.ts: the wire types, generated from the server's OpenAPI description

export { AuditlogClient, MAX_BATCH_EVENTS, type ClientOptions } from "./client.js";
export { Batcher, type BatcherOptions, type BatcherStats } from "./batcher.js";
export type { BatchResult, Receipt } from "./deliver.js";
export { event, EventBuilder, type Actor, type Change, type Context, type NewEvent, type Target } from "./event.js";
export {
  AbortedError,
  AuditlogError,
  BufferFullError,
  ClosedError,
  DeadlineError,
  HttpError,
  RejectedError,
  RetriesExhaustedError,
  type FieldProblem,
  type Rejection,
} from "./errors.js";
export { DEFAULT_RETRY, backoffMs, parseRetryAfter, type RetryPolicy } from "./retry.js";
export { uuidv7, uuidv7Millis } from "./uuid.js";
export type { components, paths } from "./generated/openapi.js";

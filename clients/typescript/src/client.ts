// The client: settings, `send` of one event and `sendBatch` of many, each
// awaited until the server has stored them durably, and batchers.

import { Batcher, type BatcherOptions } from "./batcher.js";
import { deliver, type BatchResult, type Receipt, type Transport } from "./deliver.js";
import { RejectedError } from "./errors.js";
import type { EventBuilder, NewEvent } from "./event.js";
import { prepare } from "./prepare.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";

export interface ClientOptions {
  /** The server's base URL, e.g. `https://audit.example.com` (no `/api/v1`). */
  url: string;
  /** An API key with the `ingest` scope. */
  key: string;
  /** One request's limit, answer included. Default 10 s. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** The `fetch` to use; default the global one. */
  fetch?: typeof fetch;
}

/** Most events in one request (SPEC.md). */
export const MAX_BATCH_EVENTS = 1000;

export class AuditlogClient {
  private readonly transport: Transport;

  constructor(options: ClientOptions) {
    this.transport = {
      url: options.url.replace(/\/+$/, ""),
      key: options.key,
      timeoutMs: options.timeoutMs ?? 10_000,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
    };
  }

  /**
   * Sends one event and resolves with its receipt once the server has
   * stored it durably (`created` false if that id was already stored with
   * the same content). Rejects with `RejectedError` when the server refuses
   * the event, `RetriesExhaustedError` when retrying gave up.
   */
  async send(event: NewEvent | EventBuilder, options: { signal?: AbortSignal } = {}): Promise<Receipt> {
    const result = await deliver(this.transport, [prepare(event)], options.signal);
    const [rejection] = result.rejected;
    if (rejection !== undefined) throw new RejectedError(rejection);
    const [receipt] = result.receipts;
    if (receipt === undefined) throw new Error("the server answered without a receipt");
    return receipt;
  }

  /**
   * Sends events in requests of at most 1,000, one request at a time;
   * resolves once every event is stored or refused: receipts in order, and a
   * rejection (by id, with the server's reason) for each refused event.
   */
  async sendBatch(events: Array<NewEvent | EventBuilder>, options: { signal?: AbortSignal } = {}): Promise<BatchResult> {
    const prepared = events.map(prepare);
    const result: BatchResult = { receipts: [], rejected: [] };
    for (let start = 0; start < prepared.length; start += MAX_BATCH_EVENTS) {
      const chunk = prepared.slice(start, start + MAX_BATCH_EVENTS);
      const part = await deliver(this.transport, chunk, options.signal);
      result.receipts.push(...part.receipts);
      result.rejected.push(...part.rejected.map((r) => ({ ...r, index: r.index + start })));
    }
    return result;
  }

  /** A background batcher on this client (see `BatcherOptions`). */
  batcher(options: BatcherOptions = {}): Batcher {
    return new Batcher(this.transport, options);
  }
}

// The background batcher: events are buffered and sent in batches when the
// buffer holds `maxEvents` or `maxBytes`, when the oldest waited
// `intervalMs`, or on `flush()`/`shutdown()`. The buffer is bounded; what
// happens when it is full is the caller's choice (`whenFull`).
//
// No spool: buffered events live in this process's memory only. Whatever is
// buffered or in flight when the process dies is lost; an event is durable
// once `flush()` (or `send` on the client) has resolved after it was added.

import { deliver, ENVELOPE_BYTES, type Prepared, type Receipt, type Transport } from "./deliver.js";
import { AbortedError, BufferFullError, ClosedError, DeadlineError, type Rejection } from "./errors.js";
import type { EventBuilder, NewEvent } from "./event.js";
import { prepare } from "./prepare.js";

export interface BatcherOptions {
  /** Send when this many events are buffered; at most 1,000 (SPEC.md). Default 500. */
  maxEvents?: number;
  /** Send when the buffered batch body would reach this many bytes. Default 1 MiB (the server takes 10 MiB). */
  maxBytes?: number;
  /** Send what is buffered once the oldest event has waited this long. Default 1,000 ms. */
  intervalMs?: number;
  /** Most events held, buffered and in flight together. Default 10,000. */
  capacity?: number;
  /**
   * When `capacity` is reached: `"wait"` (default) — `add` resolves once
   * there is room; `"error"` — `add` rejects with `BufferFullError` at once.
   */
  whenFull?: "wait" | "error";
  /** Requests in flight at once. Default 2. */
  concurrency?: number;
  /** Each stored event's receipt. */
  onReceipt?: (receipt: Receipt) => void;
  /** Each event the server refused (422, 409, 413), by id with its reason; it was dropped from its batch. */
  onRejected?: (rejection: Rejection) => void;
  /**
   * Each event that could not be delivered: the request was refused as a
   * whole (`HttpError`), retries gave up (`RetriesExhaustedError`), or
   * `shutdown` passed its deadline (`DeadlineError`).
   */
  onFailed?: (id: string, error: Error) => void;
}

/** Counts since the batcher was made. */
export interface BatcherStats {
  added: number;
  stored: number;
  rejected: number;
  failed: number;
  /** Buffered and in flight now. */
  pending: number;
}

interface Entry extends Prepared {
  /** Order of `add`: `flush` waits for the entries added before it. */
  serial: number;
}

const MAX_EVENTS = 1000;

export class Batcher {
  private readonly maxEvents: number;
  private readonly maxBytes: number;
  private readonly intervalMs: number;
  private readonly capacity: number;
  private readonly whenFull: "wait" | "error";
  private readonly concurrency: number;
  private readonly buffer: Entry[] = [];
  private bufferedBytes = ENVELOPE_BYTES;
  /** The lowest serial of each batch in flight. */
  private readonly inFlight = new Map<object, number>();
  private inFlightEvents = 0;
  private nextSerial = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Set by the timer and by flush: send even a partial batch, until the buffer is empty. */
  private draining = false;
  private closed = false;
  private readonly spaceWaiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private readonly settleWaiters = new Set<() => void>();
  private readonly abort = new AbortController();
  /** Why `shutdown` abandoned the requests in flight. */
  private abandoned: DeadlineError | undefined;
  private readonly counts = { added: 0, stored: 0, rejected: 0, failed: 0 };

  constructor(
    private readonly transport: Transport,
    private readonly options: BatcherOptions,
  ) {
    this.maxEvents = clamp(options.maxEvents ?? 500, 1, MAX_EVENTS);
    this.maxBytes = Math.max(options.maxBytes ?? 1024 * 1024, ENVELOPE_BYTES + 1);
    this.intervalMs = Math.max(options.intervalMs ?? 1000, 0);
    this.capacity = Math.max(options.capacity ?? 10_000, 1);
    this.whenFull = options.whenFull ?? "wait";
    this.concurrency = Math.max(options.concurrency ?? 2, 1);
  }

  /**
   * Buffers `event` (assigning it an id if it has none) and resolves with
   * that id; not yet durable — see `flush`. When the buffer is full: waits
   * for room, or rejects with `BufferFullError` (`whenFull`). Rejects with
   * `ClosedError` after `shutdown`.
   */
  async add(event: NewEvent | EventBuilder): Promise<string> {
    if (this.closed) throw new ClosedError();
    const prepared = prepare(event);
    while (this.pendingCount() >= this.capacity) {
      if (this.whenFull === "error") throw new BufferFullError(this.capacity);
      await new Promise<void>((resolve, reject) => this.spaceWaiters.push({ resolve, reject }));
      if (this.closed) throw new ClosedError();
    }
    this.buffer.push({ ...prepared, serial: this.nextSerial++ });
    this.bufferedBytes += prepared.bytes + 1;
    this.counts.added += 1;
    this.pump();
    return prepared.id;
  }

  /**
   * Sends everything added before this call and resolves once each of those
   * events is stored or reported (`onRejected`, `onFailed`). Rejects with
   * `DeadlineError` after `deadlineMs` (default: no deadline); delivery goes
   * on in the background.
   */
  async flush(deadlineMs?: number): Promise<void> {
    const mark = this.nextSerial;
    this.draining = true;
    this.pump();
    await this.settled(mark, deadlineMs);
  }

  /**
   * Refuses further `add`s, then delivers what is buffered within
   * `deadlineMs` (default 10 s). Past the deadline the requests in flight are
   * abandoned, and each event not delivered is reported to `onFailed` with a
   * `DeadlineError`, which this also rejects with.
   */
  async shutdown(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    for (const waiter of this.spaceWaiters.splice(0)) waiter.reject(new ClosedError());
    try {
      await this.flush(deadlineMs);
    } catch (error) {
      if (!(error instanceof DeadlineError)) throw error;
      const left = this.buffer.splice(0);
      this.bufferedBytes = ENVELOPE_BYTES;
      this.abandoned = error;
      this.abort.abort();
      for (const entry of left) this.fail(entry.id, error);
      // The aborted requests end at once; each of their events is reported
      // before this rejects.
      await this.settled(this.nextSerial);
      throw error;
    } finally {
      this.clearTimer();
    }
  }

  stats(): BatcherStats {
    return { ...this.counts, pending: this.pendingCount() };
  }

  private pendingCount(): number {
    return this.buffer.length + this.inFlightEvents;
  }

  /** Starts as many batches as are due and allowed. */
  private pump(): void {
    while (this.inFlight.size < this.concurrency && this.buffer.length > 0 && (this.draining || this.full())) {
      this.start(this.takeBatch());
    }
    if (this.buffer.length === 0) {
      this.draining = false;
      this.clearTimer();
    } else if (this.timer === undefined && !this.draining) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.draining = true;
        this.pump();
      }, this.intervalMs);
    }
  }

  private full(): boolean {
    return this.buffer.length >= this.maxEvents || this.bufferedBytes >= this.maxBytes;
  }

  /** The oldest events that fit one batch (always at least one). */
  private takeBatch(): Entry[] {
    let count = 0;
    let bytes = ENVELOPE_BYTES;
    for (const entry of this.buffer) {
      if (count === this.maxEvents || (count > 0 && bytes + entry.bytes + 1 > this.maxBytes)) break;
      count += 1;
      bytes += entry.bytes + 1;
    }
    const batch = this.buffer.splice(0, count);
    this.bufferedBytes -= bytes - ENVELOPE_BYTES;
    return batch;
  }

  private start(batch: Entry[]): void {
    const token = {};
    this.inFlight.set(token, batch[0]?.serial ?? Infinity);
    this.inFlightEvents += batch.length;
    deliver(this.transport, batch, this.abort.signal)
      .then(
        (result) => {
          for (const receipt of result.receipts) {
            this.counts.stored += 1;
            this.report(() => this.options.onReceipt?.(receipt));
          }
          for (const rejection of result.rejected) {
            this.counts.rejected += 1;
            this.report(() => this.options.onRejected?.(rejection));
          }
        },
        (error: unknown) => {
          const reason =
            error instanceof AbortedError && this.abandoned !== undefined
              ? this.abandoned
              : error instanceof Error
                ? error
                : new Error(String(error));
          for (const entry of batch) this.fail(entry.id, reason);
        },
      )
      .finally(() => {
        this.inFlight.delete(token);
        this.inFlightEvents -= batch.length;
        while (this.spaceWaiters.length > 0 && this.pendingCount() < this.capacity) {
          this.spaceWaiters.shift()?.resolve();
        }
        this.pump();
        this.settle();
      });
  }

  private fail(id: string, error: Error): void {
    this.counts.failed += 1;
    this.report(() => this.options.onFailed?.(id, error));
  }

  /** Runs a caller's callback; what it throws surfaces as an uncaught error, not inside the batcher. */
  private report(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      queueMicrotask(() => {
        throw error;
      });
    }
  }

  /** The lowest serial not yet stored or reported. */
  private lowestUnsettled(): number {
    let lowest = this.buffer[0]?.serial ?? Infinity;
    for (const serial of this.inFlight.values()) lowest = Math.min(lowest, serial);
    return lowest;
  }

  private settle(): void {
    for (const waiter of [...this.settleWaiters]) waiter();
  }

  /** Resolves once every event with a serial below `mark` is settled. */
  private settled(mark: number, deadlineMs?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const check = () => {
        if (this.lowestUnsettled() < mark) return;
        this.settleWaiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      if (deadlineMs !== undefined) {
        timer = setTimeout(() => {
          this.settleWaiters.delete(check);
          reject(new DeadlineError(this.pendingCount(), deadlineMs));
        }, deadlineMs);
      }
      this.settleWaiters.add(check);
      check();
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(Math.floor(value), low), high);
}

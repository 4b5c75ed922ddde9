// The typed event builder (SPEC.md "Event"). Its types come from the
// server's OpenAPI description (generated/openapi.ts), so a field the server
// renames or adds shows up here as a compile error after regenerating.

import type { components } from "./generated/openapi.js";
import { uuidv7 } from "./uuid.js";

/** One event as a client sends it. */
export type NewEvent = components["schemas"]["NewEvent"];
export type Actor = components["schemas"]["NewActor"];
export type Target = components["schemas"]["NewTarget"];
export type Context = components["schemas"]["NewContext"];

/** One entry of `details.changes`: a field's value before and after. */
export interface Change {
  field: string;
  old: unknown;
  new: unknown;
}

/** Starts an event: its type, its action and who acted (an id, or an actor object). */
export function event(eventType: string, action: string, actor: string | Actor): EventBuilder {
  return new EventBuilder(eventType, action, actor);
}

/**
 * Builds a `NewEvent` field by field. `build()` gives it a UUIDv7 `id` when
 * none was set, so that resending it (a retry) can never store it twice.
 */
export class EventBuilder {
  private readonly fields: NewEvent;
  private readonly changeList: Change[] = [];

  constructor(eventType: string, action: string, actor: string | Actor) {
    this.fields = {
      event_type: eventType,
      action,
      actor: typeof actor === "string" ? { id: actor } : { ...actor },
    };
  }

  /** The event's id, unique per account (1–64 printable ASCII characters). */
  id(id: string): this {
    this.fields.id = id;
    return this;
  }

  /** When it happened (a `Date`, or an RFC 3339 string kept as given). */
  time(time: Date | string): this {
    this.fields.time = typeof time === "string" ? time : time.toISOString();
    return this;
  }

  project(project: string): this {
    this.fields.project = project;
    return this;
  }

  app(app: string): this {
    this.fields.app = app;
    return this;
  }

  version(version: string): this {
    this.fields.version = version;
    return this;
  }

  /** The entity acted on. */
  target(id: string, name?: string): this {
    this.fields.target = name === undefined ? { id } : { id, name };
    return this;
  }

  /** Where the action came from: `ip`, `user_agent`, `request_id`. */
  context(context: Context): this {
    this.fields.context = { ...context };
    return this;
  }

  /** Sets one key of `details` (`changes` is written by the change methods). */
  detail(key: string, value: unknown): this {
    this.fields.details = { ...(this.fields.details ?? {}), [key]: value };
    return this;
  }

  /** One changed field with its old and new value (any JSON). */
  change(field: string, oldValue: unknown, newValue: unknown): this {
    this.changeList.push({ field, old: oldValue, new: newValue });
    return this;
  }

  /**
   * A change for every field whose value differs between `before` and
   * `after` (compared as JSON; a field missing on one side is `null` there),
   * in the order the fields first appear. Use `null` for `before` on a
   * creation and for `after` on a deletion.
   */
  changes(before: Record<string, unknown> | null, after: Record<string, unknown> | null): this {
    const old = before ?? {};
    const now = after ?? {};
    const fields = [...new Set([...Object.keys(old), ...Object.keys(now)])];
    for (const field of fields) {
      const a = old[field] ?? null;
      const b = now[field] ?? null;
      if (JSON.stringify(a) !== JSON.stringify(b)) this.change(field, a, b);
    }
    return this;
  }

  /** The event, with an id assigned if none was set. */
  build(): NewEvent {
    const built: NewEvent = { ...this.fields, id: this.fields.id ?? uuidv7() };
    if (this.changeList.length > 0) {
      built.details = { ...(built.details ?? {}), changes: [...this.changeList] };
    }
    return built;
  }
}

// An event serialized once, when the caller hands it over: later changes to
// the caller's object cannot change what is sent, and a batch's size in
// bytes is known before it is sent.

import type { Prepared } from "./deliver.js";
import { EventBuilder, type NewEvent } from "./event.js";
import { uuidv7 } from "./uuid.js";

const encoder = new TextEncoder();

/** `event` (built if a builder) with an id, serialized. */
export function prepare(event: NewEvent | EventBuilder): Prepared {
  const built = event instanceof EventBuilder ? event.build() : event;
  const withId = built.id === undefined || built.id === null ? { ...built, id: uuidv7() } : built;
  const json = JSON.stringify(withId);
  return { id: withId.id as string, json, bytes: encoder.encode(json).length };
}

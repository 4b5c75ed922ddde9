// UUIDv7 (RFC 9562 §5.7) generated on the client, so that every retry of an
// event carries the same id and the server stores it once.

let lastMillis = -1;
let counter = 0;

/**
 * A new UUIDv7: 48 bits of Unix milliseconds, the version (7), 12 bits
 * `rand_a`, the variant (0b10) and 62 random bits `rand_b`.
 *
 * Within one millisecond `rand_a` is a counter that starts at a random value
 * below 2^11 and counts up (RFC 9562 §6.2, method 1), so ids made by one
 * process sort in the order they were made. When it would overflow, the
 * timestamp is advanced by one millisecond rather than losing that order.
 */
export function uuidv7(now: number = Date.now()): string {
  let millis = Math.floor(now);
  if (millis <= lastMillis) {
    millis = lastMillis;
    counter += 1;
    if (counter > 0xfff) {
      millis += 1;
      counter = randomCounterStart();
    }
  } else {
    counter = randomCounterStart();
  }
  lastMillis = millis;
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  // 48-bit big-endian timestamp; done with division because the bit
  // operators of JavaScript work on 32 bits.
  let t = millis;
  for (let i = 5; i >= 0; i -= 1) {
    bytes[i] = t % 256;
    t = Math.floor(t / 256);
  }
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function randomCounterStart(): number {
  const word = new Uint16Array(1);
  globalThis.crypto.getRandomValues(word);
  // Below 2^11: leaves at least 2^11 increments before an overflow.
  return (word[0] ?? 0) & 0x7ff;
}

/** The Unix milliseconds written into a UUIDv7. */
export function uuidv7Millis(id: string): number {
  return parseInt(id.replace(/-/g, "").slice(0, 12), 16);
}

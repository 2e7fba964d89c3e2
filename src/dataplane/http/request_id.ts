// Random (version 4) UUIDs for x-request-id, made in batches: one random fill and one string per batch.

import { randomFill } from '../../random_bytes.js';

/** UUIDs per batch; the batch's one string holds them all, and each id is a slice of it. */
const BATCH = 128;
const ID_LENGTH = 36;
/** HEX_PAIRS[b] is byte b's two hex digits as one little-endian 16-bit store: a byte costs one table load and one store. */
const HEX_PAIRS = (() => {
  const digits = '0123456789abcdef';
  const t = new Uint16Array(256);
  for (let b = 0; b < 256; b++) t[b] = digits.charCodeAt(b >> 4) | (digits.charCodeAt(b & 15) << 8);
  return t;
})();
/** Where the hex digits of each of an id's 16 bytes go; the dashes between the groups never move. */
const DIGITS_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const DASHES_AT = [8, 13, 18, 23];

/**
 * Hands out RFC 9562 version 4 UUIDs. Each batch draws BATCH * 16 bytes from the CSPRNG at once and formats them
 * into one latin1 string, so an id costs a substring instead of Node's per-id formatting (a rope of 20 pieces to
 * flatten when the header is written).
 */
export class RequestIdSource {
  private readonly random = Buffer.alloc(BATCH * 16);
  private readonly text = Buffer.alloc(BATCH * ID_LENGTH);
  private readonly view = new DataView(this.text.buffer, this.text.byteOffset, this.text.byteLength);
  private batch = '';
  private next = BATCH;

  constructor() {
    for (let n = 0; n < BATCH; n++) for (const at of DASHES_AT) this.text[n * ID_LENGTH + at] = 45; // '-'
  }

  id(): string {
    if (this.next === BATCH) this.refill();
    const at = this.next++ * ID_LENGTH;
    return this.batch.slice(at, at + ID_LENGTH);
  }

  private refill(): void {
    const r = randomFill(this.random);
    const v = this.view;
    for (let n = 0; n < BATCH; n++) {
      const src = n * 16;
      r[src + 6] = (r[src + 6]! & 0x0f) | 0x40; // version 4
      r[src + 8] = (r[src + 8]! & 0x3f) | 0x80; // variant 10
      const o = n * ID_LENGTH;
      for (let i = 0; i < 16; i++) v.setUint16(o + DIGITS_AT[i]!, HEX_PAIRS[r[src + i]!]!, true);
    }
    this.batch = this.text.toString('latin1');
    this.next = 0;
  }
}

const shared = new RequestIdSource();

/** A fresh random UUID (x-request-id). */
export function requestId(): string {
  return shared.id();
}

// Random (version 4) UUIDs for x-request-id, made in batches: one random fill and one string per batch.

import { nodeCrypto } from '../../lazy_builtins.js';

/** UUIDs per batch; the batch's one string holds them all, and each id is a slice of it. */
const BATCH = 128;
const ID_LENGTH = 36;
const HEX = Buffer.from('0123456789abcdef', 'latin1');

/**
 * Hands out RFC 9562 version 4 UUIDs. Each batch draws BATCH * 16 bytes from the CSPRNG at once and formats them
 * into one latin1 string, so an id costs a substring instead of Node's per-id formatting (a rope of 20 pieces to
 * flatten when the header is written).
 */
export class RequestIdSource {
  private readonly random = Buffer.alloc(BATCH * 16);
  private readonly text = Buffer.alloc(BATCH * ID_LENGTH);
  private batch = '';
  private next = BATCH;

  id(): string {
    if (this.next === BATCH) this.refill();
    const at = this.next++ * ID_LENGTH;
    return this.batch.slice(at, at + ID_LENGTH);
  }

  private refill(): void {
    const r = nodeCrypto().randomFillSync(this.random);
    const t = this.text;
    for (let n = 0; n < BATCH; n++) {
      const src = n * 16;
      r[src + 6] = (r[src + 6]! & 0x0f) | 0x40; // version 4
      r[src + 8] = (r[src + 8]! & 0x3f) | 0x80; // variant 10
      let o = n * ID_LENGTH;
      for (let i = 0; i < 16; i++) {
        if (i === 4 || i === 6 || i === 8 || i === 10) t[o++] = 45; // '-'
        const b = r[src + i]!;
        t[o++] = HEX[b >> 4]!;
        t[o++] = HEX[b & 15]!;
      }
    }
    this.batch = t.toString('latin1');
    this.next = 0;
  }
}

const shared = new RequestIdSource();

/** A fresh random UUID (x-request-id). */
export function requestId(): string {
  return shared.id();
}

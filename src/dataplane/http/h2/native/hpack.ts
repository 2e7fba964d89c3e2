// HPACK header compression (RFC 7541) for the native HTTP/2 codec: one decoder and one encoder per connection.

import { huffmanDecode } from './huffman.js';
import { STATIC_COUNT, STATIC_NAME_INDEX, STATIC_NAMES, STATIC_VALUES } from './static_table.js';

/** A malformed header block: a connection error of type COMPRESSION_ERROR (RFC 9113 §4.3). */
export class HpackError extends Error {
  constructor(message: string) {
    super(`hpack: ${message}`);
    this.name = 'HpackError';
  }
}

/**
 * The decoded header list is larger than the caller's limit. The whole block was decoded, so the dynamic
 * table is still in sync with the peer: a stream error (431 or RST_STREAM), not a connection error.
 */
export class HeaderListTooLarge extends Error {
  constructor(
    readonly size: number,
    readonly limit: number,
  ) {
    super(`header list size ${size} exceeds ${limit}`);
    this.name = 'HeaderListTooLarge';
  }
}

/** The per-entry overhead of RFC 7541 §4.1, also used by RFC 9113's SETTINGS_MAX_HEADER_LIST_SIZE. */
const ENTRY_OVERHEAD = 32;
/** The dynamic table size both sides assume before SETTINGS (RFC 9113 §6.5.2). */
const DEFAULT_TABLE_SIZE = 4096;
/** Longest integer accepted: 2^31 - 1, which takes at most 5 continuation bytes. */
const MAX_INT = 0x7fffffff;

// Buffer's own latin1 slicing and writing skip toString's encoding dispatch; they are not in @types/node.
interface Latin1Buffer extends Buffer {
  latin1Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number, length: number): number;
}

function asBuffer(block: Uint8Array): Latin1Buffer {
  return (
    Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength)
  ) as Latin1Buffer;
}

/**
 * Decodes header blocks sent by the peer. Names and values are latin1 strings, as sent: validating them
 * (lower-case names, no CR/LF/NUL, pseudo-header rules) is the HTTP/2 layer's job.
 */
export class HpackDecoder {
  /**
   * The last block had a field HTTP/2 calls malformed (RFC 9113 §8.2.1): a name with a byte outside visible
   * ASCII (or ':' past its first byte), or a value with NUL, CR or LF. Passed on to an HTTP/1.1 upstream, such a
   * field would smuggle a header or a request; the block is still decoded whole so the table stays in step.
   * Checked on literals only: fields taken from the tables were checked when they were literals.
   */
  malformed = false;
  /** The largest size update accepted: what we advertise, but never less than the protocol's default. */
  private readonly maxTableSize: number;
  /** The table size last set by the peer's size updates; until the first one, the protocol's default. */
  private capacity = DEFAULT_TABLE_SIZE;
  private size = 0;
  // Ring of entries: entry number k (0-based, in insertion order) lives at k & mask.
  private names: string[] = new Array<string>(16).fill('');
  private values: string[] = new Array<string>(16).fill('');
  private mask = 15;
  private inserted = 0;
  private length = 0;
  /** Read position in the current block. */
  private pos = 0;
  private scratch = Buffer.allocUnsafe(256) as Latin1Buffer;

  /**
   * `maxTableSize` is the SETTINGS_HEADER_TABLE_SIZE we advertise. The peer's encoder starts from the
   * protocol's 4096 and changes size only through size updates (§4.2), so the table does too. A peer may send
   * blocks before it has seen our SETTINGS, so below 4096 the limit is not enforced: it stays 4096, which
   * keeps the table in sync instead of silently mis-decoding (a compliant peer shrinks it after our SETTINGS).
   */
  constructor(maxTableSize = DEFAULT_TABLE_SIZE) {
    if (!Number.isInteger(maxTableSize) || maxTableSize < 0 || maxTableSize > MAX_INT) {
      throw new RangeError(`invalid HPACK table size ${maxTableSize}`);
    }
    this.maxTableSize = Math.max(maxTableSize, DEFAULT_TABLE_SIZE);
  }

  /**
   * Decodes one complete header block (HEADERS + CONTINUATION payloads already joined), appending
   * name, value pairs to `out`. Throws HpackError on any malformed input. When the header list
   * (sum of name + value + 32 per field, RFC 9113 §6.5.2) exceeds `maxListSize`, the block is still decoded
   * to the end (keeping the table in sync), `out` is restored to its length on entry, and HeaderListTooLarge
   * is thrown.
   */
  decode(block: Uint8Array, out: string[], maxListSize = Number.POSITIVE_INFINITY): void {
    this.malformed = false;
    const buf = asBuffer(block);
    const end = buf.length;
    const start = out.length;
    let listSize = 0;
    let fields = 0;
    this.pos = 0;
    while (this.pos < end) {
      const b = buf[this.pos]!;
      let name: string;
      let value: string;
      if (b & 0x80) {
        // Indexed field (§6.1).
        const index = this.integer(buf, 7);
        if (index <= STATIC_COUNT) {
          if (index === 0) throw new HpackError('indexed field with index 0');
          name = STATIC_NAMES[index]!;
          value = STATIC_VALUES[index]!;
        } else {
          const d = index - STATIC_COUNT;
          if (d > this.length) throw new HpackError(`index ${index} beyond the dynamic table`);
          const slot = (this.inserted - d) & this.mask;
          name = this.names[slot]!;
          value = this.values[slot]!;
        }
      } else if (b & 0x40) {
        // Literal with incremental indexing (§6.2.1).
        const index = this.integer(buf, 6);
        name = index === 0 ? this.string(buf, true) : this.nameAt(index);
        value = this.string(buf, false);
        this.insert(name, value);
      } else if (b & 0x20) {
        // Dynamic table size update (§6.3): only before the first field of a block (§4.2).
        if (fields > 0) throw new HpackError('table size update after a header field');
        const size = this.integer(buf, 5);
        if (size > this.maxTableSize) {
          throw new HpackError(`table size update to ${size} exceeds ${this.maxTableSize}`);
        }
        this.capacity = size;
        this.evictTo(size);
        continue;
      } else {
        // Literal without indexing (0000) or never indexed (0001) (§6.2.2, §6.2.3).
        const index = this.integer(buf, 4);
        name = index === 0 ? this.string(buf, true) : this.nameAt(index);
        value = this.string(buf, false);
      }
      fields++;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      // Past the limit, keep decoding for the table's sake but stop collecting.
      if (listSize <= maxListSize) out.push(name, value);
    }
    if (listSize > maxListSize) {
      out.length = start;
      throw new HeaderListTooLarge(listSize, maxListSize);
    }
  }

  /** Decodes an integer with an n-bit prefix at this.pos (§5.1). */
  private integer(buf: Buffer, n: number): number {
    const max = (1 << n) - 1;
    let value = buf[this.pos++]! & max;
    if (value < max) return value;
    const end = buf.length;
    for (let shift = 0; shift <= 28; shift += 7) {
      if (this.pos >= end) throw new HpackError('truncated integer');
      const b = buf[this.pos++]!;
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INT) throw new HpackError('integer overflow');
      if ((b & 0x80) === 0) return value;
    }
    throw new HpackError('integer too long');
  }

  /** Decodes a string literal at this.pos (§5.2). */
  private string(buf: Latin1Buffer, isName: boolean): string {
    if (this.pos >= buf.length) throw new HpackError('truncated string');
    const huffman = buf[this.pos]! & 0x80;
    const length = this.integer(buf, 7);
    const start = this.pos;
    if (length > buf.length - start) throw new HpackError('truncated string');
    this.pos = start + length;
    if (huffman === 0) {
      if (!this.malformed && !wellFormed(buf, start, start + length, isName)) this.malformed = true;
      return buf.latin1Slice(start, start + length);
    }
    // Every code is at least 5 bits long.
    const most = Math.ceil((length * 8) / 5);
    if (most > this.scratch.length)
      this.scratch = Buffer.allocUnsafe(Math.max(most, 2 * this.scratch.length)) as Latin1Buffer;
    const n = huffmanDecode(buf, start, start + length, this.scratch);
    if (n < 0) throw new HpackError('invalid Huffman string');
    if (!this.malformed && !wellFormed(this.scratch, 0, n, isName)) this.malformed = true;
    return this.scratch.latin1Slice(0, n);
  }

  private nameAt(index: number): string {
    if (index <= STATIC_COUNT) return STATIC_NAMES[index]!;
    const d = index - STATIC_COUNT;
    if (d > this.length) throw new HpackError(`index ${index} beyond the dynamic table`);
    return this.names[(this.inserted - d) & this.mask]!;
  }

  private insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    // An entry larger than the table empties it and is not added (§4.4).
    this.evictTo(this.capacity - size);
    if (size > this.capacity) return;
    if (this.length === this.names.length) this.grow();
    const slot = this.inserted & this.mask;
    this.names[slot] = name;
    this.values[slot] = value;
    this.inserted++;
    this.length++;
    this.size += size;
  }

  /** Doubles the ring (the table only holds as many entries as the peer fills it with). */
  private grow(): void {
    const n = this.names.length;
    const names = new Array<string>(2 * n).fill('');
    const values = new Array<string>(2 * n).fill('');
    for (let k = this.inserted - this.length; k < this.inserted; k++) {
      names[k & (2 * n - 1)] = this.names[k & this.mask]!;
      values[k & (2 * n - 1)] = this.values[k & this.mask]!;
    }
    this.names = names;
    this.values = values;
    this.mask = 2 * n - 1;
  }

  /** Evicts the oldest entries until the table holds at most `limit` bytes. */
  private evictTo(limit: number): void {
    while (this.size > limit && this.length > 0) {
      const slot = (this.inserted - this.length) & this.mask;
      this.size -= this.names[slot]!.length + this.values[slot]!.length + ENTRY_OVERHEAD;
      this.names[slot] = '';
      this.values[slot] = '';
      this.length--;
    }
  }
}

/** The encoder never uses a larger table than this, whatever the peer allows: memory per connection. */
const ENCODER_MAX_TABLE_SIZE = 4096;
/** Longer values go as literals: they are rarely repeated and would evict many useful entries. */
const MAX_INDEXED_VALUE = 128;

// Per-name encoding policy, looked up once per field together with the name's static index.
const NO_INDEX = 1 << 8; // values that change on every message: indexing them would only churn the table
const NEVER_INDEX = 1 << 9; // secrets: never indexed here nor by intermediaries (§7.1.3)
const STATIC_INDEX_MASK = 0xff;

const NAME_POLICY = new Map<string, number>();
for (const [name, index] of STATIC_NAME_INDEX) NAME_POLICY.set(name, index);
for (const name of [
  'date',
  'content-length',
  'etag',
  'last-modified',
  'age',
  'expires',
  'content-range',
  'if-modified-since',
  'if-none-match',
  'x-request-id',
  'x-envoy-upstream-service-time',
  'x-envoy-expected-rq-timeout-ms',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'grpc-message',
]) {
  NAME_POLICY.set(name, (NAME_POLICY.get(name) ?? 0) | NO_INDEX);
}
for (const name of ['authorization', 'proxy-authorization', 'cookie', 'set-cookie']) {
  NAME_POLICY.set(name, (NAME_POLICY.get(name) ?? 0) | NEVER_INDEX);
}

/** Static indexes of the statuses that have a fully indexed static entry. */
const STATUS_INDEX: Readonly<Record<number, number>> = {
  200: 8,
  204: 9,
  206: 10,
  304: 11,
  400: 12,
  404: 13,
  500: 14,
};
const STATUS_NAME_INDEX = 8;

/**
 * Encodes header blocks for the peer. Repeated name/value pairs are indexed in the dynamic table so that
 * they shrink to one byte; values that change per message, long values and secrets go as literals (see
 * NAME_POLICY). Strings are written raw (no Huffman): cheaper to produce, and indexing does most of the work.
 * Names must already be lower-case; names and values are written as latin1.
 */
export class HpackEncoder {
  /** Our table size: min(peer's SETTINGS_HEADER_TABLE_SIZE, ENCODER_MAX_TABLE_SIZE). */
  private capacity = DEFAULT_TABLE_SIZE;
  private size = 0;
  /** A size update is owed at the next block start; pendingMin is the smallest size set since the last one. */
  private pending = false;
  private pendingMin = 0;
  /** name → value → entry number (0-based, in insertion order) of the entries in the table. */
  private readonly index = new Map<string, Map<string, number>>();
  // Ring of entries: entry number k lives at k & RING_MASK (the table holds at most 4096 / 32 entries).
  private readonly names: string[] = new Array<string>(ENCODER_MAX_TABLE_SIZE / ENTRY_OVERHEAD).fill('');
  private readonly values: string[] = new Array<string>(ENCODER_MAX_TABLE_SIZE / ENTRY_OVERHEAD).fill('');
  private inserted = 0;
  private length = 0;
  private buf = Buffer.allocUnsafe(1024) as Latin1Buffer;
  private pos = 0;

  constructor(maxTableSize = DEFAULT_TABLE_SIZE) {
    this.setMaxTableSize(maxTableSize);
  }

  /** The peer changed SETTINGS_HEADER_TABLE_SIZE: a size update goes at the start of the next block. */
  setMaxTableSize(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`invalid HPACK table size ${n}`);
    const size = Math.min(n, ENCODER_MAX_TABLE_SIZE);
    if (size === this.capacity && !this.pending) return;
    this.pendingMin = this.pending ? Math.min(this.pendingMin, size) : size;
    this.pending = true;
    this.capacity = size;
    // The peer evicts down to the smallest size it is told about; so do we, now.
    this.evictTo(size);
  }

  /** Encodes `:status` and a flat [name, value, ...] list into a header block. */
  encodeResponse(status: number, headers: readonly string[]): Buffer {
    this.begin(headers);
    const index = STATUS_INDEX[status];
    if (index !== undefined) {
      this.buf[this.pos++] = 0x80 | index;
    } else {
      // Literal without indexing, static name `:status`: other statuses are too rare to index.
      this.buf[this.pos++] = STATUS_NAME_INDEX;
      this.raw(String(status));
    }
    return this.finish(headers);
  }

  /** Encodes any flat [name, value, ...] list (trailers, or a request with its pseudo-headers). */
  encode(headers: readonly string[]): Buffer {
    this.begin(headers);
    return this.finish(headers);
  }

  private begin(headers: readonly string[]): void {
    // Worst case per field: 3 representation/length prefixes of at most 6 bytes each plus the strings.
    let need = 32;
    for (let i = 0; i < headers.length; i++) need += headers[i]!.length + 9;
    if (need > this.buf.length)
      this.buf = Buffer.allocUnsafe(Math.max(need, 2 * this.buf.length)) as Latin1Buffer;
    this.pos = 0;
    if (this.pending) {
      if (this.pendingMin < this.capacity) this.integer(0x20, 5, this.pendingMin);
      this.integer(0x20, 5, this.capacity);
      this.pending = false;
    }
  }

  private finish(headers: readonly string[]): Buffer {
    for (let i = 0; i + 1 < headers.length; i += 2) this.field(headers[i]!, headers[i + 1]!);
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  private field(name: string, value: string): void {
    const policy = NAME_POLICY.get(name) ?? 0;
    const staticIndex = policy & STATIC_INDEX_MASK;
    if (staticIndex !== 0 && STATIC_VALUES[staticIndex] !== '') {
      // One of the few static entries with a value (:method, :path, :scheme, :status, accept-encoding).
      for (let i = staticIndex; i <= STATIC_COUNT && STATIC_NAMES[i] === name; i++) {
        if (STATIC_VALUES[i] === value) {
          this.buf[this.pos++] = 0x80 | i;
          return;
        }
      }
    }
    if (policy & NEVER_INDEX) {
      this.literal(0x10, 4, staticIndex, name, value);
      return;
    }
    const size = name.length + value.length + ENTRY_OVERHEAD;
    if (policy & NO_INDEX || value.length > MAX_INDEXED_VALUE || size > this.capacity) {
      this.literal(0x00, 4, staticIndex, name, value);
      return;
    }
    const entry = this.index.get(name)?.get(value);
    if (entry !== undefined) {
      this.integer(0x80, 7, STATIC_COUNT + this.inserted - entry);
      return;
    }
    this.literal(0x40, 6, staticIndex, name, value);
    // Insert after evicting, as the decoder does (§4.4); eviction may drop this name's map.
    this.evictTo(this.capacity - size);
    let values = this.index.get(name);
    if (values === undefined) {
      values = new Map();
      this.index.set(name, values);
    }
    const slot = this.inserted & (this.names.length - 1);
    this.names[slot] = name;
    this.values[slot] = value;
    values.set(value, this.inserted);
    this.inserted++;
    this.length++;
    this.size += size;
  }

  private literal(pattern: number, n: number, nameIndex: number, name: string, value: string): void {
    if (nameIndex !== 0) {
      this.integer(pattern, n, nameIndex);
    } else {
      this.buf[this.pos++] = pattern;
      this.raw(name);
    }
    this.raw(value);
  }

  /** Writes an integer with an n-bit prefix, the prefix's byte starting with `pattern` (§5.1). */
  private integer(pattern: number, n: number, value: number): void {
    const max = (1 << n) - 1;
    if (value < max) {
      this.buf[this.pos++] = pattern | value;
      return;
    }
    this.buf[this.pos++] = pattern | max;
    value -= max;
    while (value >= 0x80) {
      this.buf[this.pos++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 0x80);
    }
    this.buf[this.pos++] = value;
  }

  /** Writes a raw (not Huffman) string literal. */
  private raw(s: string): void {
    this.integer(0, 7, s.length);
    const buf = this.buf;
    let pos = this.pos;
    if (s.length > 16) {
      pos += buf.latin1Write(s, pos, s.length);
    } else {
      for (let i = 0; i < s.length; i++) buf[pos++] = s.charCodeAt(i);
    }
    this.pos = pos;
  }

  /** Evicts the oldest entries until the table holds at most `limit` bytes. */
  private evictTo(limit: number): void {
    const mask = this.names.length - 1;
    while (this.size > limit && this.length > 0) {
      const k = this.inserted - this.length;
      const slot = k & mask;
      const name = this.names[slot]!;
      const value = this.values[slot]!;
      this.size -= name.length + value.length + ENTRY_OVERHEAD;
      const values = this.index.get(name)!;
      values.delete(value);
      if (values.size === 0) this.index.delete(name);
      this.names[slot] = '';
      this.values[slot] = '';
      this.length--;
    }
  }
}

/** RFC 9113 §8.2.1 on the bytes of one literal: see HpackDecoder.malformed. */
function wellFormed(b: Uint8Array, start: number, end: number, isName: boolean): boolean {
  if (isName) {
    for (let i = start; i < end; i++) {
      const c = b[i]!;
      if (c <= 0x20 || c >= 0x7f || (c === 0x3a && i > start)) return false;
    }
  } else {
    for (let i = start; i < end; i++) {
      const c = b[i]!;
      if (c === 0x00 || c === 0x0a || c === 0x0d) return false;
    }
  }
  return true;
}

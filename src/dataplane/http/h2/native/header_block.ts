// Header blocks in: a HEADERS frame and its CONTINUATION frames joined into one block, HPACK-decoded into a list.

import { ErrorCode, Flag, H2ConnectionError } from './frames.js';
import { HeaderListTooLarge, HpackDecoder } from './hpack.js';

export enum BlockResult {
  Ok = 0,
  /** Over max_request_headers_kb: 431, the connection goes on. */
  TooLarge = 1,
  /** A field with bytes HTTP/2 forbids (CR, LF, NUL in a value; see HpackDecoder.malformed): stream error. */
  Malformed = 2,
}

/** A header block being received in HEADERS + CONTINUATION frames. */
export interface PendingBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  size: number;
}

/** The header blocks of one connection: one HPACK decoder, at most one block in progress. */
export class HeaderBlockReader {
  /** The block whose CONTINUATION frames are awaited: no other frame may come before its end. */
  pending: PendingBlock | undefined;
  private readonly decoder: HpackDecoder;
  private readonly limit: number;

  constructor(
    hpackTableSize: number,
    private readonly maxHeaderBytes: number,
  ) {
    this.decoder = new HpackDecoder(hpackTableSize);
    // A header block larger than twice the limit cannot decode to a list within it (short of a hostile encoder).
    this.limit = 2 * maxHeaderBytes + 16 * 1024;
  }

  /** A HEADERS frame without END_HEADERS: its fragment starts a block. */
  begin(streamId: number, endStream: boolean, fragment: Buffer): void {
    this.pending = { streamId, endStream, parts: [fragment], size: fragment.length };
  }

  /** A CONTINUATION frame: the whole block once it has END_HEADERS (then no longer pending), else undefined. */
  continuation(flags: number, id: number, payload: Buffer): PendingBlock | undefined {
    const b = this.pending;
    if (b === undefined || b.streamId !== id) {
      throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without its HEADERS');
    }
    b.parts.push(payload);
    b.size += payload.length;
    if (b.size > this.limit) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block over the limit');
    }
    if (!(flags & Flag.END_HEADERS)) return undefined;
    this.pending = undefined;
    return b;
  }

  /**
   * Decodes `block` into `list` (name, value, ...). Every block is decoded, even one for a stream about to be
   * refused: the HPACK table must stay in step.
   */
  decode(block: Buffer, list: string[]): BlockResult {
    try {
      this.decoder.decode(block, list, this.maxHeaderBytes);
    } catch (err) {
      if (!(err instanceof HeaderListTooLarge)) throw err;
      return BlockResult.TooLarge;
    }
    return this.decoder.malformed ? BlockResult.Malformed : BlockResult.Ok;
  }
}

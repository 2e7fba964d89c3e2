// Strict HTTP/1.1 message-head parsing and chunked decoding (RFC 9112), shared by the downstream and upstream codecs.

/** A parse failure: the message is rejected and the connection closed (no guessing, no smuggling). */
export class H1ParseError extends Error {
  constructor(
    message: string,
    /** Status for a downstream reply: 400, 431, 501, 505. */
    readonly status = 400,
  ) {
    super(message);
  }
}

import { knownName, NAME_LOWER, nameHash } from './header_names.js';

/** Control characters other than HTAB are never valid inside a head line. */
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;

export interface ParsedHead {
  readonly startLine: string;
  /** Flat [name, value, ...] with lower-cased names and trimmed values. */
  readonly headers: string[];
}

function ctlError(c: number, where: string): H1ParseError {
  return new H1ParseError(
    c === 13 || c === 10 ? `invalid character in ${where}` : 'invalid control character in message head',
  );
}

/**
 * Parses the head in `buf[start, end)` (`end` is where the final CRLFCRLF starts). Throws H1ParseError on
 * anything ambiguous. Validation runs over the bytes with lookup tables, which is several times faster than
 * charCodeAt over a string or a regular expression; the strings are then slices of one latin1 decoding of the head.
 */
export function parseHead(buf: Buffer, start: number, end: number, maxHeaders: number): ParsedHead {
  const text = buf.toString('latin1', start, end);
  let i = start;
  while (i < end && LINE_BYTES[buf[i]!] === 1) i++;
  if (i < end && (buf[i] !== 13 || buf[i + 1] !== 10)) throw ctlError(buf[i]!, 'start line');
  const startLine = text.slice(0, i - start);
  const headers: string[] = [];
  let n = 0;
  while (i < end) {
    i += 2; // the CRLF ending the previous line
    const ls = i;
    const c0 = buf[ls]!;
    if (c0 === 32 || c0 === 9) throw new H1ParseError('obsolete line folding is not allowed');
    // Name bytes are checked, and hashed lower-cased for the known-names table, in one pass.
    let upper = 0;
    let hash = 0;
    for (; i < end; i++) {
      const b = buf[i]!;
      const k = NAME_LOWER[b]!;
      if (k === 0) break;
      upper |= k ^ b;
      hash = nameHash(hash, k);
    }
    if (i < end && buf[i] !== 58 /* : */) {
      const c = buf[i]!;
      if (c === 13 || c === 10) throw malformedLine(text, ls - start, i - start);
      throw new H1ParseError(`invalid header name "${printable(text.slice(ls - start, i - start + 1))}"`);
    }
    if (i === end || i === ls) throw malformedLine(text, ls - start, i - start);
    const colon = i;
    for (i++; i < end && LINE_BYTES[buf[i]!] === 1; i++);
    if (i < end && (buf[i] !== 13 || buf[i + 1] !== 10)) {
      throw ctlError(buf[i]!, `header "${text.slice(ls - start, colon - start).toLowerCase()}"`);
    }
    let vs = colon + 1;
    let ve = i;
    while (vs < ve && (buf[vs] === 32 || buf[vs] === 9)) vs++;
    while (ve > vs && (buf[ve - 1] === 32 || buf[ve - 1] === 9)) ve--;
    let name = knownName(buf, ls, colon, hash);
    if (name === undefined) {
      name = text.slice(ls - start, colon - start);
      if (upper !== 0) name = name.toLowerCase();
    }
    headers[n++] = name;
    headers[n++] = text.slice(vs - start, ve - start);
    if (n > maxHeaders * 2) {
      throw new H1ParseError(`request has more than ${maxHeaders} headers (max_headers_count)`, 431);
    }
  }
  return { startLine, headers };
}

function malformedLine(text: string, from: number, at: number): H1ParseError {
  let to = text.indexOf('\r\n', at);
  if (to < 0) to = text.length;
  return new H1ParseError(`malformed header line "${printable(text.slice(from, to))}"`);
}

/** Per byte of a start line or field value: 1 where allowed, 0 for a control character other than HTAB. */
const LINE_BYTES = (() => {
  const t = new Uint8Array(256);
  for (let c = 0; c < 256; c++) t[c] = c === 9 || (c >= 32 && c !== 127) ? 1 : 0;
  return t;
})();

export interface RequestLine {
  readonly method: string;
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: number;
}

/** `method SP request-target SP HTTP/d.d` (RFC 9112 §3); the line holds no control characters. */
export function parseRequestLine(line: string): RequestLine {
  const sp1 = line.indexOf(' ');
  const sp2 = sp1 > 0 ? line.indexOf(' ', sp1 + 1) : -1;
  if (sp2 < sp1 + 2 || line.length !== sp2 + 9 || !line.startsWith('HTTP/', sp2 + 1) || line[sp2 + 7] !== '.')
    throw new H1ParseError(`malformed request line "${printable(line)}"`);
  for (let i = 0; i < sp1; i++) {
    const c = line.charCodeAt(i);
    if (c > 255 || NAME_LOWER[c] === 0) throw new H1ParseError(`malformed request line "${printable(line)}"`);
  }
  const major = line.charCodeAt(sp2 + 6) - 48;
  const minor = line.charCodeAt(sp2 + 8) - 48;
  if (!isDigit(major) || !isDigit(minor))
    throw new H1ParseError(`malformed request line "${printable(line)}"`);
  if (major !== 1 || minor > 1) throw new H1ParseError(`unsupported HTTP version ${major}.${minor}`, 505);
  return { method: line.slice(0, sp1), target: line.slice(sp1 + 1, sp2), minor };
}

function isDigit(d: number): boolean {
  return d >= 0 && d <= 9;
}

export interface StatusLine {
  readonly minor: number;
  readonly status: number;
  readonly reason: string;
}

/** `HTTP/1.x SP 3DIGIT [SP reason]`; the line holds no control characters. */
export function parseStatusLine(line: string): StatusLine {
  const minor = line.charCodeAt(7) - 48;
  const d0 = line.charCodeAt(9) - 48;
  const d1 = line.charCodeAt(10) - 48;
  const d2 = line.charCodeAt(11) - 48;
  if (
    !line.startsWith('HTTP/1.') ||
    (minor !== 0 && minor !== 1) ||
    line[8] !== ' ' ||
    !isDigit(d0) ||
    !isDigit(d1) ||
    !isDigit(d2) ||
    (line.length > 12 && line[12] !== ' ')
  ) {
    throw new H1ParseError(`malformed status line "${printable(line)}"`);
  }
  return { minor, status: d0 * 100 + d1 * 10 + d2, reason: line.length > 13 ? line.slice(13) : '' };
}

/** How a message body is delimited. */
export type Framing =
  | { readonly kind: 'none' }
  | { readonly kind: 'length'; readonly length: number }
  | { readonly kind: 'chunked' }
  | { readonly kind: 'close' };

/** The framing headers of a message: Transfer-Encoding values joined, and the one Content-Length value. */
function framingHeaders(headers: readonly string[], errorStatus: number): { te?: string; cl?: string } {
  let te: string | undefined;
  let cl: string | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i];
    if (n === 'transfer-encoding') te = te === undefined ? headers[i + 1]! : `${te},${headers[i + 1]}`;
    else if (n === 'content-length') {
      const v = headers[i + 1]!;
      for (const part of v.includes(',') ? v.split(',') : [v]) {
        const p = part.trim();
        if (cl !== undefined && cl !== p)
          throw new H1ParseError('conflicting Content-Length values', errorStatus);
        cl = p;
      }
    }
  }
  if (cl !== undefined && !isContentLength(cl)) {
    throw new H1ParseError(`invalid Content-Length "${printable(cl)}"`, errorStatus);
  }
  return { te, cl };
}

/** 1 to 15 decimal digits (beyond that a length is not a safe integer in JS). */
function isContentLength(s: string): boolean {
  if (s.length === 0 || s.length > 15) return false;
  for (let i = 0; i < s.length; i++) if (!isDigit(s.charCodeAt(i) - 48)) return false;
  return true;
}

/**
 * RFC 9112 §6.3 for requests, strictly: Transfer-Encoding must be exactly "chunked" and never comes with
 * Content-Length; several Content-Length values must agree. Anything else is a 400 (or 501).
 */
export function requestFraming(headers: readonly string[], minor: number): Framing {
  const { te, cl } = framingHeaders(headers, 400);
  if (te !== undefined) {
    if (cl !== undefined) throw new H1ParseError('both Transfer-Encoding and Content-Length are present');
    if (minor === 0) throw new H1ParseError('Transfer-Encoding is not allowed in HTTP/1.0');
    if (te.trim().toLowerCase() !== 'chunked') {
      throw new H1ParseError(`unsupported Transfer-Encoding "${printable(te)}"`, 501);
    }
    return { kind: 'chunked' };
  }
  if (cl === undefined) return { kind: 'none' };
  const length = Number(cl);
  return length === 0 ? { kind: 'none' } : { kind: 'length', length };
}

/** RFC 9112 §6.3 for responses to `method` with `status`. */
export function responseFraming(headers: readonly string[], status: number, method: string): Framing {
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return { kind: 'none' };
  const { te, cl } = framingHeaders(headers, 502);
  if (te !== undefined) {
    // Forwarding both would let the Content-Length frame the body differently downstream (response splitting).
    if (cl !== undefined)
      throw new H1ParseError('both Transfer-Encoding and Content-Length are present', 502);
    const codings = te.toLowerCase().split(',');
    // Only a final "chunked" delimits the body; any other coding means "read until close".
    return codings[codings.length - 1]!.trim() === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  return cl === undefined ? { kind: 'close' } : { kind: 'length', length: Number(cl) };
}

enum ChunkState {
  Size = 0,
  Data = 1,
  DataCrlf = 2,
  Trailers = 3,
  Done = 4,
}

/** Decodes a chunked body incrementally; trailers are parsed and dropped. */
export class ChunkedDecoder {
  private state = ChunkState.Size;
  private remaining = 0;
  private line = '';
  private trailerBytes = 0;
  private crlfSeen = 0;

  constructor(private readonly maxLine = 4096) {}

  get done(): boolean {
    return this.state === ChunkState.Done;
  }

  /**
   * Feeds bytes; calls onData for each piece of body. Returns the number of bytes consumed (less than
   * buf.length only once the body is complete: the rest belongs to the next message). Throws H1ParseError.
   */
  feed(buf: Buffer, onData: (chunk: Buffer) => void): number {
    let i = 0;
    const n = buf.length;
    while (i < n && this.state !== ChunkState.Done) {
      switch (this.state) {
        case ChunkState.Size:
        case ChunkState.Trailers: {
          const lf = buf.indexOf(10, i);
          const end = lf < 0 ? n : lf + 1;
          this.line += buf.toString('latin1', i, end);
          i = end;
          if (this.line.length > this.maxLine) throw new H1ParseError('chunk size line too long');
          if (lf < 0) break;
          if (!this.line.endsWith('\r\n')) throw new H1ParseError('chunk line must end with CRLF');
          const line = this.line.slice(0, -2);
          this.line = '';
          if (this.state === ChunkState.Size) {
            const semi = line.indexOf(';');
            const hex = (semi < 0 ? line : line.slice(0, semi)).trimEnd();
            if (!/^[0-9a-fA-F]{1,12}$/.test(hex))
              throw new H1ParseError(`invalid chunk size "${printable(line)}"`);
            if (semi >= 0 && CTL.test(line.slice(semi))) throw new H1ParseError('invalid chunk extension');
            this.remaining = Number.parseInt(hex, 16);
            this.state = this.remaining === 0 ? ChunkState.Trailers : ChunkState.Data;
          } else {
            if (line === '') this.state = ChunkState.Done;
            else {
              this.trailerBytes += line.length;
              if (this.trailerBytes > 64 * 1024) throw new H1ParseError('trailers too large', 431);
              if (CTL.test(line) || line.indexOf(':') <= 0) throw new H1ParseError('malformed trailer');
            }
          }
          break;
        }
        case ChunkState.Data: {
          const take = Math.min(this.remaining, n - i);
          onData(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = ChunkState.DataCrlf;
          break;
        }
        case ChunkState.DataCrlf: {
          if (buf[i] !== (this.crlfSeen === 0 ? 13 : 10))
            throw new H1ParseError('chunk data must be followed by CRLF');
          i++;
          if (++this.crlfSeen === 2) {
            this.crlfSeen = 0;
            this.state = ChunkState.Size;
          }
          break;
        }
      }
    }
    return i;
  }
}

function printable(s: string): string {
  const t = s.length > 60 ? `${s.slice(0, 60)}...` : s;
  return t.replace(/[\x00-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

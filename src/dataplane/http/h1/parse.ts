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

/** Control characters other than HTAB are never valid inside a head line. */
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\r\n]*))?$/;

export interface ParsedHead {
  readonly startLine: string;
  /** Flat [name, value, ...] with lower-cased names and trimmed values. */
  readonly headers: string[];
}

/** Parses the head text (without the final CRLFCRLF). Throws H1ParseError on anything ambiguous. */
/** Control characters other than HTAB, CR and LF: checked once over the whole head. */
const HEAD_CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;

export function parseHead(text: string, maxHeaders: number): ParsedHead {
  if (HEAD_CTL.test(text)) throw new H1ParseError('invalid control character in message head');
  const n = text.length;
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = n;
  const startLine = text.slice(0, eol);
  if (startLine.includes('\r') || startLine.includes('\n'))
    throw new H1ParseError('invalid character in start line');
  const headers: string[] = [];
  let pos = eol + 2;
  while (pos < n) {
    let end = text.indexOf('\r\n', pos);
    if (end < 0) end = n;
    const c0 = text.charCodeAt(pos);
    if (c0 === 32 || c0 === 9) throw new H1ParseError('obsolete line folding is not allowed');
    let i = pos;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 58 /* : */) break;
      if (c > 127 || TOKEN_CHARS[c] === 0) {
        throw new H1ParseError(`invalid header name "${printable(text.slice(pos, Math.min(end, i + 1)))}"`);
      }
    }
    if (i === end || i === pos)
      throw new H1ParseError(`malformed header line "${printable(text.slice(pos, end))}"`);
    const name = text.slice(pos, i).toLowerCase();
    let vs = i + 1;
    let ve = end;
    while (vs < ve && (text.charCodeAt(vs) === 32 || text.charCodeAt(vs) === 9)) vs++;
    while (ve > vs && (text.charCodeAt(ve - 1) === 32 || text.charCodeAt(ve - 1) === 9)) ve--;
    // HEAD_CTL has ruled out everything but a stray CR or LF inside the line.
    const cr = text.indexOf('\r', vs);
    const lf = text.indexOf('\n', vs);
    if ((cr >= 0 && cr < end) || (lf >= 0 && lf < end)) {
      throw new H1ParseError(`invalid character in header "${name}"`);
    }
    headers.push(name, text.slice(vs, ve));
    if (headers.length > maxHeaders * 2) {
      throw new H1ParseError(`request has more than ${maxHeaders} headers (max_headers_count)`, 431);
    }
    pos = end + 2;
  }
  return { startLine, headers };
}

/** RFC 9110 tchar, as a lookup table. */
const TOKEN_CHARS = (() => {
  const t = new Uint8Array(128);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    t[c.charCodeAt(0)] = 1;
  return t;
})();

export interface RequestLine {
  readonly method: string;
  readonly target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  readonly minor: number;
}

export function parseRequestLine(line: string): RequestLine {
  const m = REQUEST_LINE.exec(line);
  if (!m) throw new H1ParseError(`malformed request line "${printable(line)}"`);
  if (m[3] !== '1' || (m[4] !== '0' && m[4] !== '1')) {
    throw new H1ParseError(`unsupported HTTP version ${m[3]}.${m[4]}`, 505);
  }
  return { method: m[1]!, target: m[2]!, minor: m[4] === '1' ? 1 : 0 };
}

export interface StatusLine {
  readonly minor: number;
  readonly status: number;
  readonly reason: string;
}

export function parseStatusLine(line: string): StatusLine {
  const m = STATUS_LINE.exec(line);
  if (!m) throw new H1ParseError(`malformed status line "${printable(line)}"`);
  return { minor: Number(m[1]), status: Number(m[2]), reason: m[3] ?? '' };
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
      for (const part of headers[i + 1]!.split(',')) {
        const p = part.trim();
        if (cl !== undefined && cl !== p)
          throw new H1ParseError('conflicting Content-Length values', errorStatus);
        cl = p;
      }
    }
  }
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) {
    throw new H1ParseError(`invalid Content-Length "${printable(cl)}"`, errorStatus);
  }
  return { te, cl };
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

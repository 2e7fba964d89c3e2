// Test support: raw HTTP/1.1 over a socket — exact bytes out, responses parsed from the bytes that came back.

import { connect, type Socket } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly reason: string;
  /** Lower-cased names; repeated headers joined with ", ". */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Trailer section of a chunked body, exactly as received (empty when none). */
  readonly trailers: string;
  /** Exactly the bytes of this response (latin1). */
  readonly raw: string;
}

/**
 * Parses one response from the start of `text`. Returns undefined while it is incomplete.
 * `head` marks the answer to a HEAD request (no body whatever the headers say).
 * A response with neither Content-Length nor chunked framing is complete only once `closed`.
 */
export function parseOneResponse(
  text: string,
  opts: { head?: boolean; closed?: boolean } = {},
): { response: RawResponse; rest: string } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = text.slice(0, end).split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(lines[0] ?? '');
  if (!m) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify(lines[0])}`);
  const status = Number(m[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    const k = line.slice(0, i).toLowerCase();
    const v = line.slice(i + 1).trim();
    headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
  }
  const bodyStart = end + 4;
  const done = (bodyEnd: number, body: string, trailers = '') => ({
    response: { status, reason: m[2] ?? '', headers, body, trailers, raw: text.slice(0, bodyEnd) },
    rest: text.slice(bodyEnd),
  });
  if (opts.head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    return done(bodyStart, '');
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    let at = bodyStart;
    let body = '';
    for (;;) {
      const eol = text.indexOf('\r\n', at);
      if (eol < 0) return undefined;
      const size = Number.parseInt(text.slice(at, eol), 16);
      if (Number.isNaN(size)) throw new Error(`bad chunk size line ${JSON.stringify(text.slice(at, eol))}`);
      at = eol + 2;
      if (size === 0) {
        const tEnd = text.indexOf('\r\n\r\n', at - 2);
        if (tEnd < 0) return undefined;
        return done(tEnd + 4, body, text.slice(at, tEnd + 2));
      }
      if (text.length < at + size + 2) return undefined;
      body += text.slice(at, at + size);
      at += size + 2;
    }
  }
  if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (text.length < bodyStart + n) return undefined;
    return done(bodyStart + n, text.slice(bodyStart, bodyStart + n));
  }
  return opts.closed ? done(text.length, text.slice(bodyStart)) : undefined;
}

/** One client connection driven byte by byte. Always `destroy()` it (after() does not know about it). */
export class RawConnection {
  private buffered = '';
  private closedFlag = false;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buffered += d;
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closedFlag = true;
      this.wake();
    });
  }

  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve(new RawConnection(s));
      });
      s.once('error', reject);
    });
  }

  /** True once the peer closed (or the socket died). */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** Everything received and not yet consumed by `response()`. */
  get pending(): string {
    return this.buffered;
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Waits for one complete response (or the close, or the timeout: then it throws with what came). */
  async response(opts: { head?: boolean; timeoutMs?: number } = {}): Promise<RawResponse> {
    const deadline = Date.now() + (opts.timeoutMs ?? 5000);
    for (;;) {
      const r = parseOneResponse(this.buffered, { head: opts.head, closed: this.closedFlag });
      if (r) {
        this.buffered = r.rest;
        return r.response;
      }
      if (this.closedFlag)
        throw new Error(`connection closed mid-response; got ${JSON.stringify(this.buffered)}`);
      if (!(await this.wait(deadline))) {
        throw new Error(`no complete response in time; got ${JSON.stringify(this.buffered)}`);
      }
    }
  }

  /** Resolves true when the peer closes within timeoutMs, false otherwise. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closedFlag) if (!(await this.wait(deadline))) return false;
    return true;
  }

  /** Waits until `predicate(received)` holds; false on timeout or close without it. */
  async until(predicate: (received: string) => boolean, timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this.buffered)) {
      if (this.closedFlag) return false;
      if (!(await this.wait(deadline))) return false;
    }
    return true;
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wait(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        resolve(false);
      }, left);
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.waiters.push(wake);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}

/** Sends `data` on a fresh connection; returns what came back and whether the proxy closed the connection. */
export async function rawRoundTrip(
  port: number,
  data: string | Buffer,
  timeoutMs = 5000,
): Promise<{ received: string; closed: boolean }> {
  const c = await RawConnection.open(port);
  try {
    c.write(data);
    const closed = await c.waitClosed(timeoutMs);
    return { received: c.pending, closed };
  } finally {
    c.destroy();
  }
}

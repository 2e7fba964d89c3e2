// Envoy's http_inspector as a pure incremental parser: does a connection open with HTTP/2's preface or an HTTP/1.x request line.

/** The application protocol names Envoy's http_inspector sets. */
export type HttpProtocol = 'http/1.0' | 'http/1.1' | 'h2c';

/** `too_large`: no verdict within the limit (Envoy counts a read_error and closes the connection). */
export type HttpInspection =
  | { readonly kind: 'need_more' }
  | { readonly kind: 'not_http' }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'http'; readonly protocol: HttpProtocol };

const NEED_MORE: HttpInspection = { kind: 'need_more' };
const NOT_HTTP: HttpInspection = { kind: 'not_http' };
const TOO_LARGE: HttpInspection = { kind: 'too_large' };

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const VERSION_PREFIX = Buffer.from('HTTP/', 'latin1');

/** Envoy's http_inspector reads at most this much looking for the end of the request line. */
export const MAX_INSPECT_SIZE = 64 * 1024;

/** RFC 9110 tchar. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TOKEN[c] = 1;

enum State {
  Preface,
  Method,
  Target,
  Version,
  Major,
  Dot,
  Minor,
  Cr,
  Lf,
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;

/**
 * Looks at each byte once: a prefix of the HTTP/2 preface waits for more; anything else must be a request line
 * `METHOD SP target SP HTTP/d.d` ended by CRLF (or a bare LF, as HTTP/1 parsers accept). HTTP/1.1 is "http/1.1";
 * any other version is "http/1.0", as in Envoy. The first answer other than `need_more` is final.
 */
export class HttpInspectorParser {
  private result: HttpInspection | undefined;
  private state = State.Preface;
  private seen = 0;
  private count = 0;
  private major = 0;
  private minor = 0;

  constructor(private readonly maxSize = MAX_INSPECT_SIZE) {}

  push(chunk: Buffer): HttpInspection {
    if (this.result !== undefined) return this.result;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.state === State.Preface) {
        if (c === PREFACE[this.seen]) {
          this.seen++;
          if (this.seen === PREFACE.length) return this.finish({ kind: 'http', protocol: 'h2c' });
          continue;
        }
        // Not the preface after all: what matched so far may still begin a request line ("PRI * HTTP/1.1").
        const matched = this.seen;
        this.state = State.Method;
        this.seen = 0;
        for (let j = 0; j < matched; j++) {
          const r = this.step(PREFACE[j]!);
          if (r !== undefined) return this.finish(r);
        }
      }
      const r = this.step(c);
      if (r !== undefined) return this.finish(r);
    }
    if (this.seen >= this.maxSize) return this.finish(TOO_LARGE);
    return NEED_MORE;
  }

  /** One byte of the request line; a verdict, or undefined to go on. */
  private step(c: number): HttpInspection | undefined {
    this.seen++;
    switch (this.state) {
      case State.Method:
        if (c === SP && this.count > 0) return this.next(State.Target);
        return TOKEN[c] ? this.more() : NOT_HTTP;
      case State.Target:
        if (c === SP && this.count > 0) return this.next(State.Version);
        return c > SP && c !== 0x7f ? this.more() : NOT_HTTP;
      case State.Version:
        if (c !== VERSION_PREFIX[this.count]) return NOT_HTTP;
        return this.count + 1 === VERSION_PREFIX.length ? this.next(State.Major) : this.more();
      case State.Major:
        if (c < 0x30 || c > 0x39) return NOT_HTTP;
        this.major = c - 0x30;
        return this.next(State.Dot);
      case State.Dot:
        return c === 0x2e ? this.next(State.Minor) : NOT_HTTP;
      case State.Minor:
        if (c < 0x30 || c > 0x39) return NOT_HTTP;
        this.minor = c - 0x30;
        return this.next(State.Cr);
      case State.Cr:
        if (c === LF) return this.verdict();
        return c === CR ? this.next(State.Lf) : NOT_HTTP;
      case State.Lf:
        return c === LF ? this.verdict() : NOT_HTTP;
      default:
        return NOT_HTTP;
    }
  }

  private more(): undefined {
    this.count++;
    return undefined;
  }

  private next(s: State): undefined {
    this.state = s;
    this.count = 0;
    return undefined;
  }

  private verdict(): HttpInspection {
    return { kind: 'http', protocol: this.major === 1 && this.minor === 1 ? 'http/1.1' : 'http/1.0' };
  }

  private finish(r: HttpInspection): HttpInspection {
    this.result = r;
    return r;
  }
}

/** The verdict on `bytes` read from the start of a connection. */
export function inspectHttp(bytes: Buffer, maxSize?: number): HttpInspection {
  return new HttpInspectorParser(maxSize).push(bytes);
}

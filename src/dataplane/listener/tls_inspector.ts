// Envoy's tls_inspector as a pure incremental parser: is this the start of a TLS ClientHello, and what SNI and ALPN does it ask for.

/** What the bytes read so far say. `too_large`: no ClientHello within the size limit (Envoy closes the connection). */
export type ClientHelloResult =
  | { readonly kind: 'need_more' }
  | { readonly kind: 'not_tls' }
  | { readonly kind: 'too_large' }
  | {
      readonly kind: 'tls';
      /** The host_name of the server_name extension, lower-cased; "" when there is none. */
      readonly serverName: string;
      /** The protocols of the ALPN extension in the client's order; [] when absent or malformed. */
      readonly alpn: readonly string[];
    };

const NEED_MORE: ClientHelloResult = { kind: 'need_more' };
const NOT_TLS: ClientHelloResult = { kind: 'not_tls' };
const TOO_LARGE: ClientHelloResult = { kind: 'too_large' };

const RECORD_HEADER = 5;
const HANDSHAKE_HEADER = 4;
const CONTENT_HANDSHAKE = 0x16;
const CLIENT_HELLO = 1;
/** RFC 8446 §5.1: a plaintext record carries at most 2^14 bytes. */
const MAX_RECORD = 16384;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;

/**
 * Reads a ClientHello as it arrives, across TCP reads and TLS records (a handshake message may be split over
 * several records). Each byte is looked at once; the message itself is parsed once it is complete. The first
 * answer other than `need_more` is final.
 */
export class ClientHelloParser {
  private result: ClientHelloResult | undefined;
  private seen = 0;
  private readonly header = Buffer.alloc(RECORD_HEADER);
  private headerFill = 0;
  private recordLeft = 0;
  private readonly fragments: Buffer[] = [];
  private handshakeBytes = 0;
  private messageLength = -1;

  /** `maxSize`: the most bytes read before giving up (Envoy's max_client_hello_size, 64 KiB). */
  constructor(private readonly maxSize = 64 * 1024) {}

  push(chunk: Buffer): ClientHelloResult {
    if (this.result !== undefined) return this.result;
    this.seen += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.recordLeft === 0) {
        const take = Math.min(RECORD_HEADER - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + take);
        this.headerFill += take;
        i += take;
        // Plaintext fails on its first byte or two: no need to wait for a whole record header.
        if (this.header[0] !== CONTENT_HANDSHAKE) return this.finish(NOT_TLS);
        if (this.headerFill >= 2 && this.header[1] !== 3) return this.finish(NOT_TLS);
        if (this.headerFill < RECORD_HEADER) break;
        const length = this.header.readUInt16BE(3);
        if (length === 0 || length > MAX_RECORD) return this.finish(NOT_TLS);
        this.recordLeft = length;
        this.headerFill = 0;
        continue;
      }
      const take = Math.min(this.recordLeft, chunk.length - i);
      this.fragments.push(chunk.subarray(i, i + take));
      this.handshakeBytes += take;
      this.recordLeft -= take;
      i += take;
      if (this.messageLength < 0 && this.handshakeBytes >= HANDSHAKE_HEADER) {
        const head = this.handshake(HANDSHAKE_HEADER);
        if (head[0] !== CLIENT_HELLO) return this.finish(NOT_TLS);
        this.messageLength = head.readUIntBE(1, 3);
        const total = HANDSHAKE_HEADER + this.messageLength;
        // Known too large before it arrives: every record of it adds a header.
        if (total + Math.ceil(total / MAX_RECORD) * RECORD_HEADER > this.maxSize)
          return this.finish(TOO_LARGE);
      }
      if (this.messageLength >= 0 && this.handshakeBytes >= HANDSHAKE_HEADER + this.messageLength) {
        const message = this.handshake(HANDSHAKE_HEADER + this.messageLength);
        return this.finish(parseClientHello(message.subarray(HANDSHAKE_HEADER)));
      }
    }
    if (this.seen >= this.maxSize) return this.finish(TOO_LARGE);
    return NEED_MORE;
  }

  /** The first `n` handshake bytes, joined into one buffer (kept joined for the next call). */
  private handshake(n: number): Buffer {
    if (this.fragments.length > 1 && this.fragments[0]!.length < n) {
      const joined = Buffer.concat(this.fragments);
      this.fragments.length = 0;
      this.fragments.push(joined);
    }
    return this.fragments[0]!.subarray(0, n);
  }

  private finish(r: ClientHelloResult): ClientHelloResult {
    this.result = r;
    this.fragments.length = 0;
    return r;
  }
}

/** The verdict on `bytes` read from the start of a connection. */
export function inspectClientHello(bytes: Buffer, maxSize?: number): ClientHelloResult {
  return new ClientHelloParser(maxSize).push(bytes);
}

/** A bounds-checked reader over one buffer; every read past the end makes `ok` false. */
class Reader {
  ok = true;
  constructor(
    private readonly b: Buffer,
    private pos = 0,
    private readonly end = b.length,
  ) {}
  get left(): number {
    return this.end - this.pos;
  }
  u8(): number {
    if (this.left < 1) return this.fail();
    return this.b[this.pos++]!;
  }
  u16(): number {
    if (this.left < 2) return this.fail();
    const v = this.b.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  /** The next `n` bytes as a reader of their own; the outer one moves past them. */
  sub(n: number): Reader {
    if (this.left < n) {
      this.fail();
      return new Reader(this.b, 0, 0);
    }
    const r = new Reader(this.b, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }
  bytes(n: number): Buffer {
    if (this.left < n) {
      this.fail();
      return Buffer.alloc(0);
    }
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  private fail(): number {
    this.ok = false;
    this.pos = this.end;
    return 0;
  }
}

/**
 * The body of a ClientHello (RFC 8446 §4.1.2, the same layout back to TLS 1.0). Anything malformed is "not TLS",
 * as BoringSSL's handshake failing is in Envoy; a malformed ALPN list only loses the ALPN, as there.
 */
export function parseClientHello(body: Buffer): ClientHelloResult {
  const r = new Reader(body);
  const major = r.u8();
  r.u8();
  r.bytes(32); // random
  const sessionId = r.u8();
  if (sessionId > 32) return NOT_TLS;
  r.bytes(sessionId);
  const suites = r.u16();
  if (suites < 2 || suites % 2 !== 0) return NOT_TLS;
  r.bytes(suites);
  const compression = r.u8();
  if (compression < 1) return NOT_TLS;
  r.bytes(compression);
  if (!r.ok || major !== 3) return NOT_TLS;
  let serverName = '';
  let alpn: string[] = [];
  if (r.left > 0) {
    const exts = r.sub(r.u16());
    if (!r.ok || r.left !== 0) return NOT_TLS;
    const types = new Set<number>();
    while (exts.left > 0) {
      const type = exts.u16();
      const data = exts.sub(exts.u16());
      if (!exts.ok || types.has(type)) return NOT_TLS;
      types.add(type);
      if (type === EXT_SERVER_NAME) {
        const name = parseServerName(data);
        if (name === undefined) return NOT_TLS;
        serverName = name;
      } else if (type === EXT_ALPN) {
        alpn = parseAlpn(data);
      }
    }
  }
  return { kind: 'tls', serverName, alpn };
}

/** RFC 6066 §3 as BoringSSL reads it: exactly one host_name entry, not empty, no NUL. */
function parseServerName(r: Reader): string | undefined {
  const list = r.sub(r.u16());
  const type = list.u8();
  const name = list.bytes(list.u16());
  if (!r.ok || !list.ok || r.left !== 0 || list.left !== 0 || type !== 0) return undefined;
  if (name.length === 0 || name.includes(0)) return undefined;
  return name.toString('latin1').toLowerCase();
}

/** RFC 7301 §3.1; a malformed list yields no protocols (the real TLS stack reports it later). */
function parseAlpn(r: Reader): string[] {
  const list = r.sub(r.u16());
  if (!r.ok || r.left !== 0 || list.left < 2) return [];
  const out: string[] = [];
  while (list.left > 0) {
    const n = list.u8();
    const name = list.bytes(n);
    if (!list.ok || n === 0) return [];
    out.push(name.toString('latin1'));
  }
  return out;
}

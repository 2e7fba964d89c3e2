// Well-known header names, found by their bytes while a head is parsed: a known name costs no string slice and no
// lower-casing, and is the same internalized string every time, so comparing it with a literal is a pointer test.

/** Per byte of a field name: its lower-case form for an RFC 9110 tchar, 0 for any other byte (which ends a name). */
export const NAME_LOWER = (() => {
  const t = new Uint8Array(256);
  for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") t[c.charCodeAt(0)] = c.charCodeAt(0);
  for (let c = 65; c <= 90; c++) t[c] = c + 32;
  return t;
})();

/** The running hash of a name's lower-cased bytes `k`, as parseHead computes it byte by byte. */
export function nameHash(h: number, k: number): number {
  return (Math.imul(h, 31) + k) | 0;
}

const KNOWN = [
  // framing, connection management and the request's own
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'te',
  'expect',
  'user-agent',
  'accept',
  'accept-encoding',
  'accept-language',
  'authorization',
  'cookie',
  'referer',
  'origin',
  'range',
  'if-none-match',
  'if-modified-since',
  'cache-control',
  'pragma',
  // responses
  'date',
  'server',
  'content-type',
  'content-encoding',
  'set-cookie',
  'location',
  'etag',
  'last-modified',
  'expires',
  'age',
  'vary',
  'accept-ranges',
  'access-control-allow-origin',
  'strict-transport-security',
  'x-content-type-options',
  // proxies, meshes and tracing
  'via',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'x-request-id',
  'x-envoy-upstream-service-time',
  'x-envoy-expected-rq-timeout-ms',
  'x-envoy-attempt-count',
  'x-forwarded-client-cert',
  'traceparent',
  'tracestate',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'b3',
  'grpc-status',
  'grpc-message',
  'grpc-timeout',
];

const SLOTS = 256;
const MASK = SLOTS - 1;

interface Known {
  readonly hash: number;
  readonly name: string;
  readonly bytes: Uint8Array;
}

/** Open addressing over the hash's low bits; a slot holds one name. */
const TABLE: (Known | undefined)[] = new Array<Known | undefined>(SLOTS).fill(undefined);

for (const name of KNOWN) {
  const bytes = Buffer.from(name, 'latin1');
  let hash = 0;
  for (const k of bytes) hash = nameHash(hash, k);
  let slot = hash & MASK;
  while (TABLE[slot] !== undefined) slot = (slot + 1) & MASK;
  TABLE[slot] = { hash, name, bytes };
}

/** The known name spelled (in any case) by buf[from, to), whose lower-cased bytes hash to `hash`; else undefined. */
export function knownName(buf: Uint8Array, from: number, to: number, hash: number): string | undefined {
  const length = to - from;
  for (let slot = hash & MASK; ; slot = (slot + 1) & MASK) {
    const e = TABLE[slot];
    if (e === undefined) return undefined;
    if (e.hash !== hash || e.bytes.length !== length) continue;
    const bytes = e.bytes;
    let j = 0;
    while (j < length && NAME_LOWER[buf[from + j]!] === bytes[j]) j++;
    if (j === length) return e.name;
  }
}

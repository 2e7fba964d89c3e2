// The HPACK static table (RFC 7541 Appendix A) and the lookups the encoder needs over it.

/** Number of static entries: dynamic entries start at index STATIC_COUNT + 1. */
export const STATIC_COUNT = 61;

/** Name, value pairs of the static table in index order (index i is at 2 * (i - 1)). */
// biome-ignore format: one entry a line, as in the RFC
const ENTRIES: readonly string[] = [
  ':authority', '',
  ':method', 'GET',
  ':method', 'POST',
  ':path', '/',
  ':path', '/index.html',
  ':scheme', 'http',
  ':scheme', 'https',
  ':status', '200',
  ':status', '204',
  ':status', '206',
  ':status', '304',
  ':status', '400',
  ':status', '404',
  ':status', '500',
  'accept-charset', '',
  'accept-encoding', 'gzip, deflate',
  'accept-language', '',
  'accept-ranges', '',
  'accept', '',
  'access-control-allow-origin', '',
  'age', '',
  'allow', '',
  'authorization', '',
  'cache-control', '',
  'content-disposition', '',
  'content-encoding', '',
  'content-language', '',
  'content-length', '',
  'content-location', '',
  'content-range', '',
  'content-type', '',
  'cookie', '',
  'date', '',
  'etag', '',
  'expect', '',
  'expires', '',
  'from', '',
  'host', '',
  'if-match', '',
  'if-modified-since', '',
  'if-none-match', '',
  'if-range', '',
  'if-unmodified-since', '',
  'last-modified', '',
  'link', '',
  'location', '',
  'max-forwards', '',
  'proxy-authenticate', '',
  'proxy-authorization', '',
  'range', '',
  'referer', '',
  'refresh', '',
  'retry-after', '',
  'server', '',
  'set-cookie', '',
  'strict-transport-security', '',
  'transfer-encoding', '',
  'user-agent', '',
  'vary', '',
  'via', '',
  'www-authenticate', '',
];

/** STATIC_NAMES[i] is the name of static index i (1..61); index 0 is unused. */
export const STATIC_NAMES: readonly string[] = [''];
/** STATIC_VALUES[i] is the value of static index i ('' when the entry has none). */
export const STATIC_VALUES: readonly string[] = [''];
/** Static index of the first entry with a name, for literals with an indexed name. */
export const STATIC_NAME_INDEX: ReadonlyMap<string, number> = new Map();
/** Static index of an exact `name\0value` entry, for fully indexed fields. */
export const STATIC_PAIR_INDEX: ReadonlyMap<string, number> = new Map();

for (let i = 1; i <= STATIC_COUNT; i++) {
  const name = ENTRIES[2 * (i - 1)]!;
  const value = ENTRIES[2 * i - 1]!;
  (STATIC_NAMES as string[]).push(name);
  (STATIC_VALUES as string[]).push(value);
  if (!STATIC_NAME_INDEX.has(name)) (STATIC_NAME_INDEX as Map<string, number>).set(name, i);
  if (value !== '') (STATIC_PAIR_INDEX as Map<string, number>).set(`${name}\0${value}`, i);
}

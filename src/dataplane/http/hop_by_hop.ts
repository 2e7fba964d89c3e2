// Headers that belong to one connection (RFC 9110 §7.6.1) and never cross the proxy.

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'http2-settings',
  'proxy-authenticate',
  'proxy-authorization',
]);

/** HOP_BY_HOP.has(name) without hashing a freshly parsed name: most names are ruled out by their length. */
export function isHopByHop(name: string): boolean {
  switch (name.length) {
    case 2:
      return name === 'te';
    case 7:
      return name === 'trailer' || name === 'upgrade';
    case 10:
      return name === 'connection' || name === 'keep-alive';
    case 14:
    case 16:
    case 17:
    case 18:
    case 19:
      return HOP_BY_HOP.has(name);
    default:
      return false;
  }
}

/** Names listed in a Connection header ("connection: close, x-foo") are hop-by-hop too. */
export function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  // The common values name no header: no set to build.
  if (value === undefined || value === 'keep-alive' || value === 'close') return undefined;
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const t of v.split(',')) {
      const n = t.trim().toLowerCase();
      if (n && n !== 'close' && n !== 'keep-alive') out.add(n);
    }
  }
  return out.size > 0 ? out : undefined;
}

/**
 * Headers an HTTP/2 message never carries: the connection-specific ones (RFC 9113 §8.2.2), and Host, which
 * :authority replaces. `te` is allowed only as "trailers" (checked by the callers, which have the value).
 */
export function droppedOnHttp2(name: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
    case 'host':
      return true;
    default:
      return false;
  }
}

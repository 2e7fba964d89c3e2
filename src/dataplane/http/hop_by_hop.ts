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

/** Names listed in a Connection header ("connection: close, x-foo") are hop-by-hop too. */
export function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) {
    for (const t of v.split(',')) {
      const n = t.trim().toLowerCase();
      if (n && n !== 'close' && n !== 'keep-alive') out.add(n);
    }
  }
  return out.size > 0 ? out : undefined;
}

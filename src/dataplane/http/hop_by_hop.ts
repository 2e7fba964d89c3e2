// Headers that belong to one connection (RFC 9110 §7.6.1) and never cross the proxy.

import type { HeaderRecord } from './header_list.js';

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

/** Removes hop-by-hop headers from a response in place. */
export function stripHopByHop(h: HeaderRecord): void {
  const listed = connectionListed(h.connection);
  for (const name of HOP_BY_HOP) if (h[name] !== undefined) delete h[name];
  if (listed) for (const name of listed) delete h[name];
}

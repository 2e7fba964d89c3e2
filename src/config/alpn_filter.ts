// Istio's istio.alpn HTTP filter: the ALPN that a request's upstream TLS connection offers, by upstream protocol.

import type { AlpnFilterConfig } from './model.js';
import { Fields } from './reader.js';

/** RFC 7301: a protocol name is 1 to 255 bytes. */
const MAX_ALPN_BYTES = 255;

const PROTOCOLS = ['HTTP10', 'HTTP11', 'HTTP2'] as const;

/**
 * The fields of an istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig: `alpn_override`, a list of
 * {upstream_protocol, alpn_override}. As in Istio, a protocol given twice keeps its first entry, and an empty list
 * means no override. An unset upstream_protocol is HTTP10 (proto3's zero value).
 */
export function alpnFilter(f: Fields): AlpnFilterConfig | undefined {
  const byProtocol: Record<(typeof PROTOCOLS)[number], string[] | undefined> = {
    HTTP10: undefined,
    HTTP11: undefined,
    HTTP2: undefined,
  };
  const seen = new Set<string>();
  let failed = false;
  for (const item of f.list('alpn_override')) {
    const o = Fields.of(f.ctx, item.value, item.path);
    if (o === undefined) {
      failed = true;
      continue;
    }
    const given = o.has('upstream_protocol');
    const protocol = o.enumOf('upstream_protocol', PROTOCOLS);
    if (given && protocol === undefined) failed = true;
    const names: string[] = [];
    for (const name of o.strings('alpn_override', { nonEmptyItems: true })) {
      const value = name.value as string;
      if (Buffer.byteLength(value) > MAX_ALPN_BYTES) {
        f.ctx.error(name.path, `longer than ${MAX_ALPN_BYTES} bytes`);
        failed = true;
      } else names.push(value);
    }
    o.finish();
    const p = protocol ?? 'HTTP10';
    if (seen.has(p)) continue;
    seen.add(p);
    if (names.length > 0) byProtocol[p] = names;
  }
  f.finish();
  if (failed) return undefined;
  return { http10: byProtocol.HTTP10, http11: byProtocol.HTTP11, http2: byProtocol.HTTP2 };
}

// The connection pools of one protocol for a cluster's hosts: one per host, and one per host and ALPN override.

import type { Host } from './host.js';
import type { ConnectionPool } from './upstream_request.js';

/**
 * The ALPN a request's TLS connection offers instead of its context's (istio.alpn): built once per filter config.
 * `key` tells overrides apart, so a connection opened offering one list is never reused for a request wanting
 * another.
 */
export interface AlpnOverride {
  readonly protocols: readonly string[];
  readonly key: string;
}

export function alpnOverride(protocols: readonly string[]): AlpnOverride {
  return { protocols, key: protocols.join('\n') };
}

export class HostPools {
  private readonly plain = new Map<Host, ConnectionPool>();
  /** By override key, then host; empty unless an istio.alpn filter sends requests to TLS hosts. */
  private readonly byAlpn = new Map<string, Map<Host, ConnectionPool>>();

  get(host: Host, alpn: AlpnOverride | undefined): ConnectionPool | undefined {
    return alpn === undefined ? this.plain.get(host) : this.byAlpn.get(alpn.key)?.get(host);
  }

  set(host: Host, alpn: AlpnOverride | undefined, pool: ConnectionPool): void {
    if (alpn === undefined) {
      this.plain.set(host, pool);
      return;
    }
    let m = this.byAlpn.get(alpn.key);
    if (m === undefined) {
      m = new Map();
      this.byAlpn.set(alpn.key, m);
    }
    m.set(host, pool);
  }

  /** Removes the host's pools and returns them. */
  take(host: Host): ConnectionPool[] {
    const out: ConnectionPool[] = [];
    const p = this.plain.get(host);
    if (p !== undefined) {
      this.plain.delete(host);
      out.push(p);
    }
    for (const [key, m] of this.byAlpn) {
      const q = m.get(host);
      if (q === undefined) continue;
      m.delete(host);
      if (m.size === 0) this.byAlpn.delete(key);
      out.push(q);
    }
    return out;
  }

  all(): ConnectionPool[] {
    const out = [...this.plain.values()];
    for (const m of this.byAlpn.values()) out.push(...m.values());
    return out;
  }

  clear(): void {
    this.plain.clear();
    this.byAlpn.clear();
  }
}

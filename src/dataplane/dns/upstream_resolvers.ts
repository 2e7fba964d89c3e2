// The resolvers a DNS proxy forwards to: the nameservers of /etc/resolv.conf, or the ones given.

import { readFileSync } from 'node:fs';
import { parseIpPort } from '../../config/address.js';

export interface Resolver {
  readonly address: string;
  readonly port: number;
}

/** "ip", "ip:port" or "[ipv6]:port" (port 53 when left out); undefined when it is none of those. */
export function parseResolver(spec: string): Resolver | undefined {
  return parseIpPort(spec, 53);
}

/** The `nameserver` lines of a resolv.conf, in order (scoped IPv6 addresses keep their zone). */
export function nameserversOf(text: string): Resolver[] {
  const out: Resolver[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const r = m && parseResolver(m[1]!.split('%')[0]!);
    if (r) out.push(r);
  }
  return out;
}

export function systemResolvers(path = '/etc/resolv.conf'): Resolver[] {
  try {
    return nameserversOf(readFileSync(path, 'utf8'));
  } catch {
    return [];
  }
}

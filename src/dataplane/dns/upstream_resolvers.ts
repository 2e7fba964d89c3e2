// The resolvers a DNS proxy forwards to: the nameservers of /etc/resolv.conf, or the ones given.

import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';

export interface Resolver {
  readonly address: string;
  readonly port: number;
}

/** "ip", "ip:port" or "[ipv6]:port"; undefined when it is none of those. */
export function parseResolver(spec: string): Resolver | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(spec);
  const v4 = /^([\d.]+)(?::(\d{1,5}))?$/.exec(spec);
  const m = bracketed ?? v4;
  const address = m ? m[1]! : spec;
  const port = m?.[2] === undefined ? 53 : Number(m[2]);
  if (isIP(address) === 0 || port < 1 || port > 65535) return undefined;
  return { address, port };
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

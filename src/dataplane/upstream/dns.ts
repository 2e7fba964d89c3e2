// STRICT_DNS resolution: every endpoint hostname resolved to all its addresses, filtered by dns_lookup_family.

import { isIP } from 'node:net';
import type { DnsLookupFamily } from '../../config/model.js';

export type Lookup = (hostname: string) => Promise<{ address: string; family: number }[]>;

/** The system resolver; node:dns is loaded at the first lookup, as most sidecars resolve no names. */
export const systemLookup: Lookup = async (hostname) => {
  const { lookup } = await import('node:dns/promises');
  return lookup(hostname, { all: true, verbatim: true });
};

/** Resolves one name; literal IPs resolve to themselves. Throws when nothing usable comes back. */
export async function resolveName(
  name: string,
  family: DnsLookupFamily,
  doLookup: Lookup,
): Promise<string[]> {
  if (isIP(name)) return [name];
  const all = await doLookup(name);
  const v4 = all.filter((a) => a.family === 4).map((a) => a.address);
  const v6 = all.filter((a) => a.family === 6).map((a) => a.address);
  let out: string[];
  switch (family) {
    case 'V4_ONLY':
      out = v4;
      break;
    case 'V6_ONLY':
      out = v6;
      break;
    case 'V4_PREFERRED':
      out = v4.length > 0 ? v4 : v6;
      break;
    case 'ALL':
      out = [...v4, ...v6];
      break;
    default: // AUTO: IPv6 first, IPv4 when there is none
      out = v6.length > 0 ? v6 : v4;
  }
  if (out.length === 0) throw new Error(`${name}: no ${family} address`);
  return [...new Set(out)];
}

// IP addresses as bytes and CIDR ranges (core.v3.CidrRange): parsed once at the edge, matched by the listener.

import { isIP } from 'node:net';

export interface IpBytes {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

/** The bytes of an IP literal (a zone such as `%eth0` is ignored); undefined when it is not one. */
export function parseIp(text: string): IpBytes | undefined {
  const family = isIP(text);
  if (family === 4) return { family: 4, bytes: ipv4Bytes(text) };
  if (family !== 6) return undefined;
  const bytes = ipv6Bytes(text);
  return bytes && { family: 6, bytes };
}

/**
 * An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, what a dual-stack socket reports for an IPv4 peer) as the IPv4
 * address, so that IPv4 ranges match it; any other address unchanged.
 */
export function unmapIpv4(ip: IpBytes): IpBytes {
  return ip.family === 6 && isV4Mapped(ip.bytes) ? { family: 4, bytes: ip.bytes.slice(12) } : ip;
}

function ipv4Bytes(text: string): Uint8Array {
  return Uint8Array.from(text.split('.'), (p) => Number(p));
}

function ipv6Bytes(text: string): Uint8Array | undefined {
  const zone = text.indexOf('%');
  const addr = zone >= 0 ? text.slice(0, zone) : text;
  const out = new Uint8Array(16);
  const halves = addr.split('::');
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length > 1 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const groups = (parts: string[]): number[] | undefined => {
    const words: number[] = [];
    for (const p of parts) {
      if (p.includes('.')) {
        const v4 = ipv4Bytes(p);
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else words.push(Number.parseInt(p, 16));
    }
    return words.some((w) => Number.isNaN(w)) ? undefined : words;
  };
  const h = groups(head);
  const t = groups(tail);
  if (h === undefined || t === undefined) return undefined;
  const words = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (words.length !== 8) return undefined;
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  return out;
}

export function isV4Mapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** A copy of `bytes` with every bit past the first `prefixLen` cleared. */
export function maskBytes(bytes: Uint8Array, prefixLen: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, prefixLen - i * 8));
    out[i] = out[i]! & ((0xff00 >> keep) & 0xff);
  }
  return out;
}

/** The text form of an address's bytes: dotted quad, or eight hex groups (not compressed: canonical enough). */
export function formatIp(ip: IpBytes): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  return groups.join(':');
}

/** True when the first `prefixLen` bits of `a` and `b` are equal (same family assumed). */
export function prefixMatches(a: Uint8Array, b: Uint8Array, prefixLen: number): boolean {
  let bits = prefixLen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff00 >> bits) & 0xff;
    if ((a[i]! & mask) !== (b[i]! & mask)) return false;
  }
  return true;
}

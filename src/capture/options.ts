// Flags of `remora iptables`, validated once: every bad value is reported with the flag that carried it.

import { maskBytes, parseIp } from '../config/cidr.js';
import type { ConfigError, ValidationResult } from '../config/result.js';

export const BACKENDS = ['iptables', 'iptables-legacy', 'nft'] as const;
export type BackendName = (typeof BACKENDS)[number];

/**
 * The proxy's own ports (admin, agent, health, Prometheus): inbound connections to them are never captured, whatever
 * --exclude-inbound-ports says, so that probes and scrapes reach the proxy itself.
 */
export const PROXY_OWN_PORTS: readonly number[] = [15000, 15020, 15021, 15090];

/** Where captured DNS (udp and tcp port 53) is sent. */
export const DNS_CAPTURE_PORT = 15053;

/** The flags as commander hands them over: strings, booleans, or undefined when not given. */
export interface CaptureFlags {
  readonly proxyUid?: string;
  readonly proxyGid?: string;
  readonly outboundPort?: string;
  readonly inboundPort?: string;
  readonly includeOutboundCidrs?: string;
  readonly excludeOutboundCidrs?: string;
  readonly excludeOutboundPorts?: string;
  readonly includeInboundPorts?: string;
  readonly excludeInboundPorts?: string;
  readonly captureDns?: boolean;
  readonly ipv6?: boolean;
  readonly backend?: string;
}

export interface Cidr {
  readonly family: 4 | 6;
  /** `address/prefix`, the address as the user wrote it. */
  readonly text: string;
}

export interface CaptureOptions {
  readonly proxyUid: number;
  readonly proxyGid: number;
  readonly outboundPort: number;
  readonly inboundPort: number;
  /** `*` captures every destination; a list captures only those. */
  readonly includeOutboundCidrs: '*' | readonly Cidr[];
  readonly excludeOutboundCidrs: readonly Cidr[];
  readonly excludeOutboundPorts: readonly number[];
  readonly includeInboundPorts: '*' | readonly number[];
  /** The user's list followed by PROXY_OWN_PORTS, without duplicates. */
  readonly excludeInboundPorts: readonly number[];
  readonly captureDns: boolean;
  /** 'auto': on when the network namespace has an IPv6 address. */
  readonly ipv6: boolean | 'auto';
  /** 'auto': whatever `iptables -V` says the system uses, or nft when only nft is installed. */
  readonly backend: BackendName | 'auto';
}

const MAX_ID = 4294967294; // (uid_t)-1 means "no change" to the kernel

export function parseCaptureFlags(flags: CaptureFlags): ValidationResult<CaptureOptions> {
  const errors: ConfigError[] = [];
  const bad = (flag: string, value: string, why: string): void => {
    errors.push({ path: `--${flag}`, message: `invalid value ${JSON.stringify(value)}: ${why}` });
  };

  const id = (flag: string, value: string | undefined): number => {
    if (value === undefined) return 1337;
    const n = /^\d{1,10}$/.test(value) ? Number(value) : Number.NaN;
    if (!(n >= 0 && n <= MAX_ID)) bad(flag, value, `expected a numeric id from 1 to ${MAX_ID}`);
    // Everything root owns would escape capture, the application too when it runs as root.
    else if (n === 0)
      bad(flag, value, 'the proxy must not run as root (0): no traffic of root would be captured');
    return n;
  };
  const port = (flag: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = parsePort(value);
    if (n === undefined) bad(flag, value, 'expected a port from 1 to 65535');
    return n ?? fallback;
  };
  const ports = (flag: string, value: string | undefined): number[] => {
    const out: number[] = [];
    for (const item of splitList(value ?? '')) {
      const n = parsePort(item);
      if (n === undefined) bad(flag, item, 'expected a comma-separated list of ports from 1 to 65535');
      else if (!out.includes(n)) out.push(n);
    }
    return out;
  };
  const cidrs = (flag: string, value: string | undefined): Cidr[] => {
    const out: Cidr[] = [];
    for (const item of splitList(value ?? '')) {
      const c = parseCidr(item);
      if (typeof c === 'string') bad(flag, item, c);
      else if (!out.some((o) => o.text === c.text)) out.push(c);
    }
    return out;
  };
  const star = <T>(flag: string, value: string | undefined, parse: (v: string) => T[]): '*' | T[] => {
    if (value === undefined || value.trim() === '*') return '*';
    if (splitList(value).includes('*')) {
      bad(flag, value, '"*" (everything) cannot be combined with other values');
      return [];
    }
    return parse(value);
  };

  const proxyUid = id('proxy-uid', flags.proxyUid);
  const proxyGid = id('proxy-gid', flags.proxyGid);
  const outboundPort = port('outbound-port', flags.outboundPort, 15001);
  const inboundPort = port('inbound-port', flags.inboundPort, 15006);
  const includeOutboundCidrs = star('include-outbound-cidrs', flags.includeOutboundCidrs, (v) =>
    cidrs('include-outbound-cidrs', v),
  );
  const excludeOutboundCidrs = cidrs('exclude-outbound-cidrs', flags.excludeOutboundCidrs);
  const excludeOutboundPorts = ports('exclude-outbound-ports', flags.excludeOutboundPorts);
  const includeInboundPorts = star('include-inbound-ports', flags.includeInboundPorts, (v) =>
    ports('include-inbound-ports', v),
  );
  const userExcluded = ports('exclude-inbound-ports', flags.excludeInboundPorts);
  const excludeInboundPorts = [...userExcluded, ...PROXY_OWN_PORTS.filter((p) => !userExcluded.includes(p))];
  const captureDns = flags.captureDns === true;

  let backend: BackendName | 'auto' = 'auto';
  if (flags.backend !== undefined) {
    if ((BACKENDS as readonly string[]).includes(flags.backend)) backend = flags.backend as BackendName;
    else bad('backend', flags.backend, `expected one of ${BACKENDS.join(', ')}`);
  }

  // Ports that would send the proxy's own traffic into a loop or hide it from itself.
  if (outboundPort === inboundPort) {
    const [flag, other] =
      flags.inboundPort !== undefined ? ['inbound-port', 'outbound'] : ['outbound-port', 'inbound'];
    bad(flag, String(outboundPort), `must differ from the ${other} port`);
  }
  for (const [flag, p] of [
    ['outbound-port', outboundPort],
    ['inbound-port', inboundPort],
  ] as const) {
    if (PROXY_OWN_PORTS.includes(p)) bad(flag, String(p), `${p} is one of the proxy's own ports`);
    if (captureDns && p === DNS_CAPTURE_PORT)
      bad(flag, String(p), `${p} receives captured DNS when --capture-dns is on`);
  }
  if (includeInboundPorts !== '*') {
    for (const p of includeInboundPorts.filter((p) => PROXY_OWN_PORTS.includes(p)))
      bad(
        'include-inbound-ports',
        String(p),
        `${p} is one of the proxy's own ports, which are never captured`,
      );
  }

  if (errors.length > 0) return { ok: false, errors };
  return {
    ok: true,
    value: {
      proxyUid,
      proxyGid,
      outboundPort,
      inboundPort,
      includeOutboundCidrs,
      excludeOutboundCidrs,
      excludeOutboundPorts,
      includeInboundPorts,
      excludeInboundPorts,
      captureDns,
      ipv6: flags.ipv6 ?? 'auto',
      backend,
    },
  };
}

/** Items of a comma-separated list, trimmed; "" is the empty list, but an empty item inside a list is kept. */
function splitList(value: string): string[] {
  if (value.trim() === '') return [];
  return value.split(',').map((s) => s.trim());
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** A CIDR range (`10.0.0.0/8`, `fd00::/8`) or a single address; a message saying what is wrong otherwise. */
export function parseCidr(text: string): Cidr | string {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = addr.includes('%') ? undefined : parseIp(addr);
  if (ip === undefined)
    return 'expected a comma-separated list of CIDR ranges such as 10.0.0.0/8 or fd00::/8';
  const max = ip.family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : text.slice(slash + 1);
  const len = /^\d{1,3}$/.test(lenText) ? Number(lenText) : Number.NaN;
  if (!(len >= 0 && len <= max)) return `prefix length must be from 0 to ${max}`;
  const masked = maskBytes(ip.bytes, len);
  if (masked.some((b, i) => b !== ip.bytes[i])) {
    return `address has bits set past the /${len} prefix (did you mean ${formatNetwork(ip.family, masked)}/${len}?)`;
  }
  return { family: ip.family, text: `${addr}/${len}` };
}

function formatNetwork(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Shorten the longest run of zero groups, as addresses are usually written.
  const text = groups.join(':');
  const runs = text.match(/(?:^|:)0(?::0)+(?::|$)/g);
  if (!runs) return text;
  const longest = runs.reduce((a, b) => (b.length > a.length ? b : a));
  return text.replace(longest, '::');
}

// FilterChainMatch: the connection properties that choose a listener's filter chain, and the checks across chains.

import { formatIp, isV4Mapped, maskBytes, parseIp } from './cidr.js';
import type {
  CidrRangeConfig,
  ConnectionSourceType,
  FilterChainConfig,
  FilterChainMatch,
  ListenerFilterConfig,
} from './model.js';
import { type Ctx, Fields, fieldPath, type Item, quote, relativePath, typeOf } from './reader.js';

/** The match of a chain without filter_chain_match: every connection. */
export const MATCH_ANY: FilterChainMatch = {
  destinationPort: undefined,
  prefixRanges: [],
  serverNames: [],
  transportProtocol: '',
  applicationProtocols: [],
  directSourcePrefixRanges: [],
  sourceType: 'ANY',
  sourcePrefixRanges: [],
  sourcePorts: [],
};

/** True when a match constrains nothing (`{}` or absent). */
export function matchesEverything(m: FilterChainMatch): boolean {
  return stageKeys(m).every((s) => s.keys.length === 1 && s.keys[0] === '');
}

/** The transport protocols a connection can have: tls_inspector detects tls, everything else is raw_buffer. */
const TRANSPORT_PROTOCOLS = ['raw_buffer', 'tls'];

/** Reads a filter_chain_match; MATCH_ANY when absent. */
export function filterChainMatch(m: Fields | undefined): FilterChainMatch {
  if (m === undefined) return MATCH_ANY;
  const destinationPort = m.int('destination_port', { min: 1, max: 65535 });
  const prefixRanges = cidrRanges(m, 'prefix_ranges');
  const serverNames = uniqueStrings(m, 'server_names', checkServerName).map((s) => s.toLowerCase());
  const transportProtocol = m.string('transport_protocol') ?? '';
  if (transportProtocol !== '' && !TRANSPORT_PROTOCOLS.includes(transportProtocol)) {
    m.error(
      'transport_protocol',
      `unsupported value ${quote(transportProtocol)}: a connection's transport protocol is "raw_buffer", or "tls" when the tls_inspector listener filter finds a ClientHello`,
    );
  }
  const applicationProtocols = uniqueStrings(m, 'application_protocols', () => undefined);
  const directSourcePrefixRanges = cidrRanges(m, 'direct_source_prefix_ranges');
  const sourceType =
    m.enumOf<ConnectionSourceType>('source_type', ['ANY', 'SAME_IP_OR_LOOPBACK', 'EXTERNAL']) ?? 'ANY';
  const sourcePrefixRanges = cidrRanges(m, 'source_prefix_ranges');
  const sourcePorts: number[] = [];
  const seenPorts = new Set<number>();
  for (const item of m.list('source_ports')) {
    const port =
      typeof item.value === 'string' && /^[0-9]{1,5}$/.test(item.value) ? Number(item.value) : item.value;
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
      m.ctx.error(item.path, `expected a port between 1 and 65535, got ${JSON.stringify(item.value)}`);
    } else if (seenPorts.has(port)) {
      m.ctx.error(item.path, `duplicate port ${port}`);
    } else {
      seenPorts.add(port);
      sourcePorts.push(port);
    }
  }
  // Envoy rejects these as unimplemented.
  m.unsupported(['address_suffix', 'suffix_len'], { address_suffix: '' });
  m.finish();
  return {
    destinationPort,
    prefixRanges,
    serverNames,
    transportProtocol,
    applicationProtocols,
    directSourcePrefixRanges,
    sourceType,
    sourcePrefixRanges,
    sourcePorts,
  };
}

/** Envoy: an exact name or `*.` and a suffix; `*` anywhere else (partial wildcards) is refused. */
function checkServerName(name: string): string | undefined {
  if (name.includes('*') && !(name.startsWith('*.') && name.length > 2 && !name.slice(1).includes('*'))) {
    return `invalid server name ${quote(name)}: the only wildcard form is "*." followed by a domain (partial wildcards are not supported)`;
  }
  if (/[\s\x00-\x1f\x7f]/.test(name))
    return `invalid server name ${quote(name)}: no spaces or control characters`;
  return undefined;
}

/** A repeated string field: non-empty items, no duplicates (case-insensitive), each passing `check`. */
function uniqueStrings(m: Fields, name: string, check: (s: string) => string | undefined): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const item of m.list(name)) {
    const s = item.value;
    if (typeof s !== 'string') {
      m.ctx.error(item.path, `expected a string, got ${typeOf(s)}`);
      continue;
    }
    const problem = s === '' ? 'must not be empty' : check(s);
    if (problem !== undefined) {
      m.ctx.error(item.path, problem);
      continue;
    }
    if (seen.has(s.toLowerCase())) {
      m.ctx.error(item.path, `duplicate value ${quote(s)}`);
      continue;
    }
    seen.add(s.toLowerCase());
    out.push(s);
  }
  return out;
}

function cidrRanges(m: Fields, name: string): CidrRangeConfig[] {
  const out: CidrRangeConfig[] = [];
  const seen = new Set<string>();
  for (const item of m.list(name)) {
    const range = cidrRange(m.ctx, item);
    if (range === undefined) continue;
    const key = `${range.addressPrefix}/${range.prefixLen}`;
    if (seen.has(key)) {
      m.ctx.error(item.path, `duplicate range ${key}`);
      continue;
    }
    seen.add(key);
    out.push(range);
  }
  return out;
}

/** A core.v3.CidrRange, made canonical: bits past the prefix cleared, IPv4-mapped IPv6 as IPv4. */
export function cidrRange(ctx: Ctx, item: Item): CidrRangeConfig | undefined {
  const f = Fields.of(ctx, item.value, item.path);
  if (f === undefined) return undefined;
  const address = f.string('address_prefix', { required: true });
  const len = f.int('prefix_len', { max: 128 }) ?? 0;
  f.finish();
  if (address === undefined) return undefined;
  const ip = parseIp(address);
  if (ip === undefined) {
    f.error('address_prefix', `must be an IP address, got ${quote(address)}`);
    return undefined;
  }
  if (ip.family === 4 && len > 32) {
    f.error('prefix_len', `must be at most 32 for an IPv4 address, got ${len}`);
    return undefined;
  }
  if (ip.family === 6 && isV4Mapped(ip.bytes) && len >= 96) {
    const v4 = { family: 4 as const, bytes: maskBytes(ip.bytes.slice(12), len - 96) };
    return { addressPrefix: formatIp(v4), prefixLen: len - 96 };
  }
  return { addressPrefix: formatIp({ family: ip.family, bytes: maskBytes(ip.bytes, len) }), prefixLen: len };
}

/** A chain and where it was written, for the checks across the chains of one listener. */
export interface PlacedChain {
  readonly chain: FilterChainConfig;
  readonly path: string;
}

/**
 * Checks the chains of one listener together: no two may match the same connection with the same specificity
 * (Envoy: "multiple filter chains with overlapping matching rules are defined"), and a chain may only ask for
 * what a listener filter can find out.
 */
export function checkFilterChains(
  ctx: Ctx,
  chains: readonly PlacedChain[],
  filters: readonly ListenerFilterConfig[],
): void {
  const keys = chains.map((c) => stageKeys(c.chain.match));
  chains.forEach((c, i) => {
    for (let j = 0; j < i; j++) {
      const overlap = overlapOf(keys[j]!, keys[i]!);
      if (overlap === undefined) continue;
      ctx.error(
        c.path,
        `filter chain matches the same connections as ${relativePath(chains[j]!.path, c.path)}: multiple filter chains with overlapping matching rules (${overlap})`,
      );
      break;
    }
    checkDetectable(ctx, c, filters);
  });
}

/** The match of one chain as a set of keys per stage, in Envoy's order; [''] means "not specified". */
function stageKeys(m: FilterChainMatch): { readonly stage: string; readonly keys: readonly string[] }[] {
  const cidrs = (rs: readonly CidrRangeConfig[]) => rs.map((r) => `${r.addressPrefix}/${r.prefixLen}`);
  const or = (list: readonly string[]) => (list.length === 0 ? [''] : list);
  return [
    { stage: 'destination_port', keys: [m.destinationPort === undefined ? '' : String(m.destinationPort)] },
    { stage: 'prefix_ranges', keys: or(cidrs(m.prefixRanges)) },
    { stage: 'server_names', keys: or(m.serverNames) },
    { stage: 'transport_protocol', keys: [m.transportProtocol] },
    { stage: 'application_protocols', keys: or(m.applicationProtocols) },
    { stage: 'direct_source_prefix_ranges', keys: or(cidrs(m.directSourcePrefixRanges)) },
    { stage: 'source_type', keys: [m.sourceType === 'ANY' ? '' : m.sourceType] },
    { stage: 'source_prefix_ranges', keys: or(cidrs(m.sourcePrefixRanges)) },
    { stage: 'source_ports', keys: or(m.sourcePorts.map(String)) },
  ];
}

/** Undefined when some stage tells the two apart; else a description of what both match. */
function overlapOf(a: ReturnType<typeof stageKeys>, b: ReturnType<typeof stageKeys>): string | undefined {
  const shared: string[] = [];
  for (let s = 0; s < a.length; s++) {
    const bs = new Set(b[s]!.keys);
    const common = a[s]!.keys.find((k) => bs.has(k));
    if (common === undefined) return undefined;
    if (common !== '') shared.push(`${a[s]!.stage} ${quote(common)}`);
  }
  return shared.length === 0 ? 'both match every connection' : `both match ${shared.join(', ')}`;
}

/** A chain that needs a property no configured listener filter finds could never be chosen. */
function checkDetectable(ctx: Ctx, c: PlacedChain, filters: readonly ListenerFilterConfig[]): void {
  const tls = filters.some((f) => f.kind === 'tls_inspector');
  const http = filters.some((f) => f.kind === 'http_inspector');
  const m = c.chain.match;
  const at = (field: string) => fieldPath(fieldPath(c.path, 'filter_chain_match'), field);
  if (m.serverNames.length > 0 && !tls) {
    ctx.error(
      at('server_names'),
      'needs the envoy.filters.listener.tls_inspector listener filter: without it no connection has a server name, so this chain could never be chosen',
    );
  }
  if (m.transportProtocol === 'tls' && !tls) {
    ctx.error(
      at('transport_protocol'),
      'needs the envoy.filters.listener.tls_inspector listener filter: without it every connection is raw_buffer, so this chain could never be chosen',
    );
  }
  if (m.applicationProtocols.length > 0 && !tls && !http) {
    ctx.error(
      at('application_protocols'),
      'needs the envoy.filters.listener.tls_inspector or envoy.filters.listener.http_inspector listener filter: without one no connection has an application protocol, so this chain could never be chosen',
    );
  }
}

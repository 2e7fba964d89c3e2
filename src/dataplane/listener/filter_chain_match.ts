// Envoy's filter chain selection: stage by stage, the chains that match a connection most specifically go on to the next stage.

import { type IpBytes, parseIp, prefixMatches, unmapIpv4 } from '../../config/cidr.js';
import type { CidrRangeConfig, FilterChainMatch } from '../../config/model.js';

/** What is known about a connection when its filter chain is chosen: its addresses and what listener filters found. */
export interface ConnectionFacts {
  readonly destinationIp: string;
  readonly destinationPort: number;
  readonly sourceIp: string;
  readonly sourcePort: number;
  /** SNI from tls_inspector, lower-cased; "" when none. */
  readonly serverName: string;
  /** "tls" when tls_inspector found a ClientHello, else "raw_buffer". */
  readonly transportProtocol: string;
  /** ALPN from tls_inspector, or the protocol http_inspector found; in preference order. */
  readonly applicationProtocols: readonly string[];
}

interface CompiledRange {
  readonly ip: IpBytes;
  readonly prefixLen: number;
}

interface Candidate<T> {
  readonly value: T;
  readonly m: FilterChainMatch;
  readonly destination: readonly CompiledRange[];
  readonly directSource: readonly CompiledRange[];
  readonly source: readonly CompiledRange[];
}

/** The stages some chain constrains: the others are skipped (and the connection facts they need never read). */
interface UsedStages {
  port: boolean;
  destination: boolean;
  serverName: boolean;
  transport: boolean;
  alpn: boolean;
  directSource: boolean;
  sourceType: boolean;
  source: boolean;
  sourcePort: boolean;
}

/**
 * Chooses among filter chains as Envoy's FilterChainManager does. In the order destination port, destination IP,
 * server name, transport protocol, application protocols, direct source IP, source type, source IP, source port,
 * each stage keeps the chains that match the connection most specifically (an exact port over no port; the
 * longest prefix; an exact server name over the longest `*.` suffix over no names; the first of the connection's
 * application protocols any chain lists; ...). A chain that does not constrain a stage matches it least
 * specifically. When a stage leaves no chain, nothing matches: there is no going back to a less specific branch.
 * Config validation guarantees that at most one chain survives every stage.
 */
export class FilterChainSelector<T> {
  private readonly candidates: readonly Candidate<T>[];
  private readonly used: UsedStages;

  constructor(chains: readonly { readonly match: FilterChainMatch; readonly value: T }[]) {
    this.candidates = chains.map((c) => ({
      value: c.value,
      m: c.match,
      destination: c.match.prefixRanges.map(compileRange),
      directSource: c.match.directSourcePrefixRanges.map(compileRange),
      source: c.match.sourcePrefixRanges.map(compileRange),
    }));
    const some = (p: (m: FilterChainMatch) => boolean) => chains.some((c) => p(c.match));
    this.used = {
      port: some((m) => m.destinationPort !== undefined),
      destination: some((m) => m.prefixRanges.length > 0),
      serverName: some((m) => m.serverNames.length > 0),
      transport: some((m) => m.transportProtocol !== ''),
      alpn: some((m) => m.applicationProtocols.length > 0),
      directSource: some((m) => m.directSourcePrefixRanges.length > 0),
      sourceType: some((m) => m.sourceType !== 'ANY'),
      source: some((m) => m.sourcePrefixRanges.length > 0),
      sourcePort: some((m) => m.sourcePorts.length > 0),
    };
  }

  /** The chain for a connection, or undefined when none matches (the listener then uses its default chain). */
  select(facts: ConnectionFacts): T | undefined {
    let c = this.candidates;
    const u = this.used;
    if (u.port) c = byPort(c, facts.destinationPort);
    if (u.destination && c.length > 0) c = byLongestPrefix(c, facts.destinationIp, (x) => x.destination);
    if (u.serverName && c.length > 0) c = byServerName(c, facts.serverName);
    if (u.transport && c.length > 0) c = byTransport(c, facts.transportProtocol);
    if (u.alpn && c.length > 0) c = byApplicationProtocol(c, facts.applicationProtocols);
    if (u.directSource && c.length > 0) c = byLongestPrefix(c, facts.sourceIp, (x) => x.directSource);
    if (u.sourceType && c.length > 0) c = bySourceType(c, facts);
    if (u.source && c.length > 0) c = byLongestPrefix(c, facts.sourceIp, (x) => x.source);
    if (u.sourcePort && c.length > 0) c = bySourcePort(c, facts.sourcePort);
    return c[0]?.value;
  }
}

function compileRange(r: CidrRangeConfig): CompiledRange {
  const ip = parseIp(r.addressPrefix);
  // Config validation produced the canonical text: it always parses.
  if (ip === undefined) throw new Error(`invalid CIDR range in a validated config: ${r.addressPrefix}`);
  return { ip, prefixLen: r.prefixLen };
}

/** The chains that pass `exact`, else those that leave the stage open. */
function exactOrOpen<T>(
  c: readonly Candidate<T>[],
  exact: (x: Candidate<T>) => boolean,
  open: (x: Candidate<T>) => boolean,
): readonly Candidate<T>[] {
  const hit = c.filter(exact);
  return hit.length > 0 ? hit : c.filter(open);
}

function byPort<T>(c: readonly Candidate<T>[], port: number): readonly Candidate<T>[] {
  return exactOrOpen(
    c,
    (x) => x.m.destinationPort === port,
    (x) => x.m.destinationPort === undefined,
  );
}

/** Keeps the chains whose best matching range is the longest; a chain without ranges matches below /0. */
function byLongestPrefix<T>(
  c: readonly Candidate<T>[],
  address: string,
  ranges: (x: Candidate<T>) => readonly CompiledRange[],
): readonly Candidate<T>[] {
  const parsed = parseIp(address);
  const ip = parsed && unmapIpv4(parsed);
  let best = -2;
  const scores = c.map((x) => {
    const rs = ranges(x);
    let score = rs.length === 0 ? -1 : -2;
    if (ip !== undefined) {
      for (const r of rs) {
        if (
          r.ip.family === ip.family &&
          r.prefixLen > score &&
          prefixMatches(r.ip.bytes, ip.bytes, r.prefixLen)
        )
          score = r.prefixLen;
      }
    }
    if (score > best) best = score;
    return score;
  });
  return best === -2 ? [] : c.filter((_, i) => scores[i] === best);
}

/** Exact name, then `*.` wildcards from the longest suffix to the shortest, then chains without names. */
function byServerName<T>(c: readonly Candidate<T>[], name: string): readonly Candidate<T>[] {
  if (name !== '') {
    const exact = c.filter((x) => x.m.serverNames.includes(name));
    if (exact.length > 0) return exact;
    for (
      let dot = name.indexOf('.', 1);
      dot >= 0 && dot < name.length - 1;
      dot = name.indexOf('.', dot + 1)
    ) {
      const wildcard = `*${name.slice(dot)}`;
      const hit = c.filter((x) => x.m.serverNames.includes(wildcard));
      if (hit.length > 0) return hit;
    }
  }
  return c.filter((x) => x.m.serverNames.length === 0);
}

function byTransport<T>(c: readonly Candidate<T>[], protocol: string): readonly Candidate<T>[] {
  return exactOrOpen(
    c,
    (x) => x.m.transportProtocol === protocol,
    (x) => x.m.transportProtocol === '',
  );
}

/** The first of the connection's protocols that some chain lists decides; else chains without protocols. */
function byApplicationProtocol<T>(
  c: readonly Candidate<T>[],
  protocols: readonly string[],
): readonly Candidate<T>[] {
  for (const p of protocols) {
    const hit = c.filter((x) => x.m.applicationProtocols.includes(p));
    if (hit.length > 0) return hit;
  }
  return c.filter((x) => x.m.applicationProtocols.length === 0);
}

function bySourceType<T>(c: readonly Candidate<T>[], facts: ConnectionFacts): readonly Candidate<T>[] {
  const type = isSameIpOrLoopback(facts.sourceIp, facts.destinationIp) ? 'SAME_IP_OR_LOOPBACK' : 'EXTERNAL';
  return exactOrOpen(
    c,
    (x) => x.m.sourceType === type,
    (x) => x.m.sourceType === 'ANY',
  );
}

function bySourcePort<T>(c: readonly Candidate<T>[], port: number): readonly Candidate<T>[] {
  return exactOrOpen(
    c,
    (x) => x.m.sourcePorts.includes(port),
    (x) => x.m.sourcePorts.length === 0,
  );
}

const LOOPBACK_V6 = new Uint8Array(16);
LOOPBACK_V6[15] = 1;

/** Envoy's SAME_IP_OR_LOOPBACK: the peer is a loopback address, or the connection's own address. */
export function isSameIpOrLoopback(sourceIp: string, destinationIp: string): boolean {
  const parsed = parseIp(sourceIp);
  if (parsed === undefined) return false;
  const src = unmapIpv4(parsed);
  if (src.family === 4 && src.bytes[0] === 127) return true;
  if (src.family === 6 && prefixMatches(src.bytes, LOOPBACK_V6, 128)) return true;
  const d = parseIp(destinationIp);
  const dst = d && unmapIpv4(d);
  return (
    dst !== undefined &&
    dst.family === src.family &&
    prefixMatches(src.bytes, dst.bytes, src.bytes.length * 8)
  );
}

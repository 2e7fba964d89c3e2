// The capture rule set (Istio's istio-iptables, nat table) as plain data, built by pure functions from the options.

import { type CaptureOptions, type Cidr, DNS_CAPTURE_PORT } from './options.js';

export type Family = 4 | 6;

export const CHAINS = {
  inbound: 'REMORA_INBOUND',
  inRedirect: 'REMORA_IN_REDIRECT',
  output: 'REMORA_OUTPUT',
  redirect: 'REMORA_REDIRECT',
  dns: 'REMORA_DNS',
  /** Empty: its presence records that `apply` added ::6 to lo, so that `clean` removes only what it added. */
  lo6Added: 'REMORA_LO6_ADDED',
} as const;

export type ChainName = (typeof CHAINS)[keyof typeof CHAINS];

/** Every name Remora gives a chain starts with this; `clean` removes exactly these chains and the jumps to them. */
export const CHAIN_PREFIX = 'REMORA_';

export type Target =
  | { readonly kind: 'return' }
  | { readonly kind: 'jump'; readonly chain: ChainName }
  | { readonly kind: 'redirect'; readonly port: number };

/** One rule: every match present must hold. Backends render it (`-p tcp --dport 53`, `tcp dport 53`). */
export interface Rule {
  /** Set when the rule matches addresses of one family: it exists only in that family's table. */
  readonly family?: Family;
  readonly protocol?: 'tcp' | 'udp';
  readonly outLoopback?: boolean;
  readonly saddr?: string;
  readonly daddr?: string;
  readonly notDaddr?: string;
  readonly dport?: number;
  readonly notDport?: number;
  readonly owner?: { readonly kind: 'uid' | 'gid'; readonly id: number; readonly negate?: boolean };
  readonly target: Target;
}

export interface Chain {
  readonly name: ChainName;
  /** Set when the chain exists only in one family's table. */
  readonly family?: Family;
  readonly rules: readonly Rule[];
}

export interface RuleSet {
  readonly families: readonly Family[];
  /** Jumps from the built-in nat chains (iptables PREROUTING and OUTPUT; the base chains of the nft table). */
  readonly prerouting: readonly Rule[];
  readonly output: readonly Rule[];
  readonly chains: readonly Chain[];
}

export interface RuleSetFacts {
  readonly ipv6: boolean;
  /** Whether the rules record that ::6 on lo is Remora's (it added it now, or it did before). */
  readonly ownsLo6: boolean;
}

/** The proxy's source address for inbound connections it passes on to the application (Envoy's passthrough). */
export const PASSTHROUGH_SOURCE: Record<Family, string> = { 4: '127.0.0.6/32', 6: '::6/128' };
const LOOPBACK: Record<Family, string> = { 4: '127.0.0.1/32', 6: '::1/128' };

const RETURN: Target = { kind: 'return' };
const jump = (chain: ChainName): Target => ({ kind: 'jump', chain });
const redirect = (port: number): Target => ({ kind: 'redirect', port });

export function buildRuleSet(opts: CaptureOptions, facts: RuleSetFacts): RuleSet {
  const families: Family[] = facts.ipv6 ? [4, 6] : [4];
  const chains: Chain[] = [
    { name: CHAINS.inbound, rules: inboundRules(opts) },
    { name: CHAINS.inRedirect, rules: [{ protocol: 'tcp', target: redirect(opts.inboundPort) }] },
    { name: CHAINS.output, rules: outputRules(opts, families) },
    { name: CHAINS.redirect, rules: [{ protocol: 'tcp', target: redirect(opts.outboundPort) }] },
  ];
  const output: Rule[] = [{ protocol: 'tcp', target: jump(CHAINS.output) }];
  if (opts.captureDns) {
    // UDP DNS takes its own short path: it must not meet the loopback rules of REMORA_OUTPUT, so that queries
    // to a resolver on 127.0.0.53 are captured too.
    output.push({ protocol: 'udp', dport: 53, target: jump(CHAINS.dns) });
    chains.push({ name: CHAINS.dns, rules: dnsRules(opts) });
  }
  if (facts.ipv6 && facts.ownsLo6) chains.push({ name: CHAINS.lo6Added, family: 6, rules: [] });
  return { families, prerouting: [{ protocol: 'tcp', target: jump(CHAINS.inbound) }], output, chains };
}

function inboundRules(opts: CaptureOptions): Rule[] {
  const rules: Rule[] = opts.excludeInboundPorts.map((p) => ({ protocol: 'tcp', dport: p, target: RETURN }));
  if (opts.includeInboundPorts === '*') rules.push({ protocol: 'tcp', target: jump(CHAINS.inRedirect) });
  else
    for (const p of opts.includeInboundPorts)
      rules.push({ protocol: 'tcp', dport: p, target: jump(CHAINS.inRedirect) });
  return rules;
}

/**
 * REMORA_OUTPUT, in Istio's order: the first rule that matches decides. A rule that matches addresses is written
 * once per family, in place; the others once, without a `family`, so that a table holding both families (nft inet)
 * has them once and each family's table (iptables, ip6tables) sees the same order.
 */
function outputRules(opts: CaptureOptions, families: readonly Family[]): Rule[] {
  const rules: Rule[] = [];
  const once = (rule: Rule): void => {
    rules.push(rule);
  };
  const each = (make: (f: Family) => Rule[]): void => {
    for (const f of families) for (const r of make(f)) rules.push({ family: f, ...r });
  };
  // Excluded ports first: no rule below may capture them, not even the loopback ones.
  for (const p of opts.excludeOutboundPorts) once({ protocol: 'tcp', dport: p, target: RETURN });
  // The proxy passing an inbound connection on to the application, from its passthrough address.
  each((f) => [{ outLoopback: true, saddr: PASSTHROUGH_SOURCE[f], target: RETURN }]);
  // With DNS captured, TCP DNS to a local resolver is left to the DNS rule below rather than sent back inbound.
  const notDns: Partial<Rule> = opts.captureDns ? { protocol: 'tcp', notDport: 53 } : {};
  for (const owner of [
    { kind: 'uid', id: opts.proxyUid },
    { kind: 'gid', id: opts.proxyGid },
  ] as const) {
    // The proxy calling this pod's own address over lo (app -> outbound proxy -> pod IP): through the inbound
    // proxy, so that inbound policy applies when a pod calls itself.
    each((f) => [
      { outLoopback: true, notDaddr: LOOPBACK[f], ...notDns, owner, target: jump(CHAINS.inRedirect) },
    ]);
    // The application calling itself over lo: not captured.
    once({ outLoopback: true, ...notDns, owner: { ...owner, negate: true }, target: RETURN });
    // Anything else the proxy sends goes out as it is: capturing it would loop.
    once({ owner, target: RETURN });
  }
  if (opts.captureDns) once({ protocol: 'tcp', dport: 53, target: redirect(DNS_CAPTURE_PORT) });
  // Applications that talk to the proxy (or to each other) on localhost on purpose.
  each((f) => [{ daddr: LOOPBACK[f], target: RETURN }]);
  each((f) => ofFamily(opts.excludeOutboundCidrs, f).map((c) => ({ daddr: c, target: RETURN })));
  const include = opts.includeOutboundCidrs;
  if (include === '*') once({ target: jump(CHAINS.redirect) });
  else each((f) => ofFamily(include, f).map((c) => ({ daddr: c, target: jump(CHAINS.redirect) })));
  return rules;
}

function dnsRules(opts: CaptureOptions): Rule[] {
  return [
    { owner: { kind: 'uid', id: opts.proxyUid }, target: RETURN },
    { owner: { kind: 'gid', id: opts.proxyGid }, target: RETURN },
    { protocol: 'udp', target: redirect(DNS_CAPTURE_PORT) },
  ];
}

function ofFamily(cidrs: readonly Cidr[], family: Family): string[] {
  return cidrs.filter((c) => c.family === family).map((c) => c.text);
}

/** The rules of `chain` (or of a hook's list) that belong in `family`'s table. */
export function rulesFor(rules: readonly Rule[], family: Family): Rule[] {
  return rules.filter((r) => r.family === undefined || r.family === family);
}

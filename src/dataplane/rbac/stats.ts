// The counters of one RBAC filter, named as Envoy names them (its statPrefixJoin rules, per-policy counters).

import type { Counter, ScopeTag, StatsStore } from '../observe/stats.js';

/** Envoy's statPrefixJoin: a "." between the two unless the prefix is empty or already ends in one. */
export function statPrefixJoin(prefix: string, token: string): string {
  if (prefix === '') return token;
  return prefix.endsWith('.') ? prefix + token : `${prefix}.${token}`;
}

/**
 * allowed / denied under `<base>rbac.<rules_prefix>`, shadow_allowed / shadow_denied under that and the shadow
 * rules prefix; with per-policy tracking, `...policy.<name>.allowed` and the like, made when first counted.
 * `tag` is the Prometheus scope the base belongs to (the HCM's), whose prefix the stat names start with.
 */
export class RbacStats {
  readonly allowed: Counter;
  readonly denied: Counter;
  readonly shadowAllowed: Counter;
  readonly shadowDenied: Counter;
  private readonly rules: string;
  private readonly shadow: string;
  private readonly perPolicy = new Map<string, Counter>();

  constructor(
    private readonly store: StatsStore,
    private readonly tag: ScopeTag | undefined,
    base: string,
    rulesPrefix: string,
    shadowRulesPrefix: string,
    private readonly trackPerPolicy: boolean,
  ) {
    this.rules = statPrefixJoin(`${base}rbac.`, rulesPrefix);
    this.shadow = statPrefixJoin(this.rules, shadowRulesPrefix);
    this.allowed = this.counter(statPrefixJoin(this.rules, 'allowed'));
    this.denied = this.counter(statPrefixJoin(this.rules, 'denied'));
    this.shadowAllowed = this.counter(statPrefixJoin(this.shadow, 'shadow_allowed'));
    this.shadowDenied = this.counter(statPrefixJoin(this.shadow, 'shadow_denied'));
  }

  /** Counts one decision: `shadow` rules or enforced ones, and the policy that made it when tracked per policy. */
  count(shadow: boolean, allowed: boolean, policy: string | undefined): void {
    if (shadow) (allowed ? this.shadowAllowed : this.shadowDenied).inc();
    else (allowed ? this.allowed : this.denied).inc();
    // As Envoy: only a decision a named policy made is counted per policy.
    if (!this.trackPerPolicy || policy === undefined || policy === '') return;
    const suffix = shadow ? (allowed ? 'shadow_allowed' : 'shadow_denied') : allowed ? 'allowed' : 'denied';
    const name = `${statPrefixJoin(shadow ? this.shadow : this.rules, 'policy.')}${policy}.${suffix}`;
    let c = this.perPolicy.get(name);
    if (c === undefined) {
      c = this.counter(name);
      this.perPolicy.set(name, c);
    }
    c.inc();
  }

  private counter(name: string): Counter {
    const tag = this.tag;
    const statName = tag !== undefined && name.startsWith(tag.prefix) ? name.slice(tag.prefix.length) : name;
    return this.store.counter(name, statName === name ? undefined : tag, statName);
  }
}

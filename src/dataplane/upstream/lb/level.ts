// What every policy builds: a balancer over the hosts of one priority level, and the random source it draws from.

import type { ClusterConfig } from '../../../config/model.js';
import type { LbHost, LoadBalancer } from './types.js';

/** A uniform draw in [0, 1), like Math.random; tests pass a seeded generator. */
export type Random = () => number;

/**
 * Builds the balancer of one priority level. `hosts` are the candidates already filtered by health (all hosts when
 * the level is in panic), never empty. Built once per host-set snapshot, so the constructor precomputes; chooseHost
 * is O(1) or O(log n) and allocates nothing.
 */
export type LevelBalancerFactory = <H extends LbHost>(
  hosts: readonly H[],
  config: ClusterConfig,
  random: Random,
) => LoadBalancer<H>;

/** The host's load_balancing_weight as an integer in [1, 2^32 - 1]; anything else counts as 1. */
export function lbWeight(host: LbHost): number {
  const w = host.weight;
  if (!(w >= 1)) return 1;
  return w >= 0xffffffff ? 0xffffffff : Math.floor(w);
}

/** True when every host has the same weight (policies then use their unweighted fast path). */
export function allWeightsEqual(hosts: readonly LbHost[]): boolean {
  const first = hosts.length > 0 ? lbWeight(hosts[0]!) : 1;
  for (const h of hosts) if (lbWeight(h) !== first) return false;
  return true;
}

/** A uniform integer in [0, n). */
export function randomIndex(random: Random, n: number): number {
  const i = Math.floor(random() * n);
  // Guards against generators that can return exactly 1.
  return i < n ? i : n - 1;
}

// Priority levels as Envoy splits traffic among them: overprovisioned health, spill-over, and panic per level.

import { mod64, toWords } from './hash.js';
import { type Random, randomIndex } from './level.js';
import type { LbContext, LbHost, LoadBalancer } from './types.js';

/** Envoy's default overprovisioning_factor (1.4), in percent. */
export const OVERPROVISIONING_FACTOR_PERCENT = 140;
/** Envoy's default healthy_panic_threshold. */
export const PANIC_THRESHOLD_PERCENT = 50;

export interface PriorityLevelCounts {
  readonly healthy: number;
  readonly total: number;
}

export interface PriorityPlan {
  /** Percent of requests sent to each level; sums to 100, or is all zeros when the cluster has no host. */
  readonly load: readonly number[];
  /** Levels that balance across all their hosts, healthy or not. */
  readonly panic: readonly boolean[];
}

/**
 * Envoy's LoadBalancerBase::recalculatePerPriorityState and recalculatePerPriorityPanic (no degraded hosts):
 * - health_p = min(100, floor(140 * healthy_p / total_p)), 0 for an empty level;
 * - total = min(100, sum of health_p); level p takes min(remaining, floor(health_p * 100 / total)) in priority
 *   order and the rounding remainder goes to the first level with health;
 * - when no level has health, everything goes to priority 0 (here: the first level that has hosts);
 * - a level is in panic when the levels together fall short of 100 and its healthy share is below 50%.
 */
export function planPriorities(levels: readonly PriorityLevelCounts[]): PriorityPlan {
  const n = levels.length;
  const load = new Array<number>(n).fill(0);
  const health = levels.map(({ healthy, total }) =>
    total > 0 ? Math.min(100, Math.floor((OVERPROVISIONING_FACTOR_PERCENT * healthy) / total)) : 0,
  );
  const totalHealth = Math.min(
    100,
    health.reduce((a, b) => a + b, 0),
  );
  const panic = levels.map(
    ({ healthy, total }) =>
      totalHealth < 100 && (total > 0 ? Math.floor((100 * healthy) / total) : 0) < PANIC_THRESHOLD_PERCENT,
  );
  if (totalHealth === 0) {
    const first = levels.findIndex((l) => l.total > 0);
    if (first >= 0) load[first] = 100;
    return { load, panic };
  }
  let remaining = 100;
  for (let p = 0; p < n; p++) {
    load[p] = Math.min(remaining, Math.floor((health[p]! * 100) / totalHealth));
    remaining -= load[p]!;
  }
  if (remaining > 0) {
    const first = health.findIndex((h) => h > 0);
    load[first] = load[first]! + remaining;
  }
  return { load, panic };
}

/**
 * Picks a level by its load, then lets the level's balancer pick the host. The level draw is random, except for
 * consistent-hashing policies given a hash: then it is hash mod 100 (as Envoy's hashing balancers do), so a key keeps
 * its level and its host while traffic spills over.
 */
class PriorityLoadBalancer<H extends LbHost> implements LoadBalancer<H> {
  private readonly key = new Uint32Array(2);

  constructor(
    /** Balancers of the levels with load, in priority order. */
    private readonly levels: readonly LoadBalancer<H>[],
    /** cumulativeLoad[i]: total percent of levels 0..i. */
    private readonly cumulativeLoad: Int32Array,
    private readonly drawFromHash: boolean,
    private readonly random: Random,
  ) {}

  chooseHost(ctx: LbContext): H | undefined {
    const levels = this.levels;
    let draw: number;
    if (this.drawFromHash && ctx.hashKey !== undefined) {
      toWords(ctx.hashKey, this.key);
      draw = mod64(this.key[0]!, this.key[1]!, 100);
    } else {
      draw = randomIndex(this.random, 100);
    }
    for (let i = 0; i < levels.length; i++) {
      if (draw < this.cumulativeLoad[i]!) return levels[i]!.chooseHost(ctx);
    }
    return undefined;
  }
}

/** Always answers "no host" (a cluster with no endpoints). */
const NO_HOST: LoadBalancer<never> = { chooseHost: () => undefined };

export interface PriorityOptions {
  /** Use the request hash, when present, to pick the level (RING_HASH, MAGLEV). */
  readonly drawFromHash: boolean;
  readonly random: Random;
}

/**
 * Plans the levels, builds a balancer for each level that receives load (over its healthy hosts, or over all of
 * them in panic) and returns the combined balancer. With a single loaded level no level draw is made.
 */
export function createPriorityLoadBalancer<H extends LbHost>(
  priorities: readonly (readonly H[])[],
  buildLevel: (hosts: readonly H[]) => LoadBalancer<H>,
  options: PriorityOptions,
): LoadBalancer<H> {
  const plan = planPriorities(
    priorities.map((hosts) => {
      let healthy = 0;
      for (const h of hosts) if (h.healthy) healthy++;
      return { healthy, total: hosts.length };
    }),
  );
  const levels: LoadBalancer<H>[] = [];
  const cumulative: number[] = [];
  let sum = 0;
  for (let p = 0; p < priorities.length; p++) {
    if (plan.load[p] === 0) continue;
    const all = priorities[p]!;
    const candidates = plan.panic[p] ? all : all.filter((h) => h.healthy);
    sum += plan.load[p]!;
    levels.push(buildLevel(candidates));
    cumulative.push(sum);
  }
  if (levels.length === 0) return NO_HOST;
  if (levels.length === 1) return levels[0]!;
  return new PriorityLoadBalancer(levels, Int32Array.from(cumulative), options.drawFromHash, options.random);
}

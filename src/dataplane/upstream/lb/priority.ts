// Priority levels as Envoy splits traffic among them: healthy load, then degraded load, and panic per level.

import { mod64, toWords } from './hash.js';
import { lbWeight, type Random, randomIndex } from './level.js';
import { computePriorityLoad, type LevelHealth } from './priority_load.js';
import type { LbContext, LbHost, LoadBalancer } from './types.js';

/**
 * Picks a share (a level's healthy, degraded or all hosts) by its load, then lets its balancer pick the host. The
 * draw is random, except for consistent-hashing policies given a hash: then it is hash mod 100 (as Envoy's hashing
 * balancers do), so a key keeps its level and its host while traffic spills over.
 */
class PriorityLoadBalancer<H extends LbHost> implements LoadBalancer<H> {
  private readonly key = new Uint32Array(2);

  constructor(
    /** Balancers of the shares with load, in draw order. */
    private readonly levels: readonly LoadBalancer<H>[],
    /** cumulativeLoad[i]: total percent of shares 0..i. */
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
  /** overprovisioning_factor of the host set's ClusterLoadAssignment, in percent. */
  readonly overprovisioningFactor: number;
  /** weighted_priority_health of the same. */
  readonly weightedPriorityHealth: boolean;
  /** Called for each pick from a level in panic (the cluster's lb_healthy_panic). */
  readonly onPanicPick?: () => void;
}

/**
 * Computes the priority load, builds a balancer for each share that receives load — a level's healthy hosts, its
 * degraded hosts, or all its hosts in panic (one balancer for both shares of such a level) — and returns the
 * combined balancer. Shares are drawn in Envoy's order: every level's healthy share, then every degraded share.
 * With a single share no draw is made.
 */
export function createPriorityLoadBalancer<H extends LbHost>(
  priorities: readonly (readonly H[])[],
  buildLevel: (hosts: readonly H[]) => LoadBalancer<H>,
  options: PriorityOptions,
): LoadBalancer<H> {
  const load = computePriorityLoad(priorities.map(levelHealth), {
    overprovisioningFactor: options.overprovisioningFactor,
    weighted: options.weightedPriorityHealth,
  });
  const build = (hosts: readonly H[]): LoadBalancer<H> => (hosts.length === 0 ? NO_HOST : buildLevel(hosts));
  const inPanic: LoadBalancer<H>[] = [];
  const panicLevel = (p: number): LoadBalancer<H> => {
    let lb = inPanic[p];
    if (lb === undefined) {
      lb = build(priorities[p]!);
      const onPanic = options.onPanicPick;
      if (onPanic !== undefined) {
        const inner = lb;
        lb = {
          chooseHost: (ctx) => {
            onPanic();
            return inner.chooseHost(ctx);
          },
        };
      }
      inPanic[p] = lb;
    }
    return lb;
  };
  const shares: LoadBalancer<H>[] = [];
  const cumulative: number[] = [];
  let sum = 0;
  const add = (p: number, percent: number, pick: (h: H) => boolean): void => {
    if (percent === 0) return;
    shares.push(load.panic[p] ? panicLevel(p) : build(priorities[p]!.filter(pick)));
    sum += percent;
    cumulative.push(sum);
  };
  for (let p = 0; p < priorities.length; p++) add(p, load.healthy[p]!, isHealthy);
  for (let p = 0; p < priorities.length; p++) add(p, load.degraded[p]!, isDegraded);
  if (shares.length === 0) return NO_HOST;
  if (shares.length === 1) return shares[0]!;
  return new PriorityLoadBalancer(shares, Int32Array.from(cumulative), options.drawFromHash, options.random);
}

const isHealthy = (h: LbHost): boolean => h.healthy;
const isDegraded = (h: LbHost): boolean => h.degraded;

function levelHealth(hosts: readonly LbHost[]): LevelHealth {
  let healthy = 0;
  let degraded = 0;
  let healthyWeight = 0;
  let degradedWeight = 0;
  let totalWeight = 0;
  for (const h of hosts) {
    const w = lbWeight(h);
    totalWeight += w;
    if (h.healthy) {
      healthy++;
      healthyWeight += w;
    } else if (h.degraded) {
      degraded++;
      degradedWeight += w;
    }
  }
  return {
    healthy,
    degraded,
    total: hosts.length,
    weights: { healthy: healthyWeight, degraded: degradedWeight, total: totalWeight },
  };
}

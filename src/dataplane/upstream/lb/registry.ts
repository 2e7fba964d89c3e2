// The load-balancing policies by name, and createLoadBalancer: priority planning plus the policy's level balancer.

import type { ClusterConfig, LbPolicy, LoadAssignmentPolicy } from '../../../config/model.js';
import { createLeastRequestLevel } from './least_request.js';
import type { LevelBalancerFactory, Random } from './level.js';
import { createMaglevLevel } from './maglev.js';
import { createPriorityLoadBalancer } from './priority.js';
import { createRandomLevel } from './random.js';
import { createRingHashLevel } from './ring_hash.js';
import { createRoundRobinLevel } from './round_robin.js';
import type { LbHost, LoadBalancer } from './types.js';

export interface LbPolicyEntry {
  /** Builds the balancer of one priority level. */
  readonly createLevel: LevelBalancerFactory;
  /** Consistent-hashing policies also pick the priority level from the request hash. */
  readonly consistentHashing: boolean;
}

/**
 * The built-in policies. A constant map rather than a registration call: the names are the closed LbPolicy union
 * that config translation validates, `satisfies` makes the compiler insist on an entry for each, and there is no
 * mutable global state or start-up call to forget.
 */
const BUILTIN = {
  ROUND_ROBIN: { createLevel: createRoundRobinLevel, consistentHashing: false },
  LEAST_REQUEST: { createLevel: createLeastRequestLevel, consistentHashing: false },
  RANDOM: { createLevel: createRandomLevel, consistentHashing: false },
  RING_HASH: { createLevel: createRingHashLevel, consistentHashing: true },
  MAGLEV: { createLevel: createMaglevLevel, consistentHashing: true },
} as const satisfies Record<LbPolicy, LbPolicyEntry>;

export const LB_POLICIES: ReadonlyMap<string, LbPolicyEntry> = new Map(Object.entries(BUILTIN));

/** What the host set's ClusterLoadAssignment adds to the cluster's config, and a hook for panic picks. */
export interface HostSetOptions {
  readonly policy: LoadAssignmentPolicy;
  /** Counts lb_healthy_panic. */
  readonly onPanicPick?: () => void;
}

/**
 * A LoadBalancerFactory (see types.ts) for every built-in policy. `random` defaults to Math.random; tests pass a
 * seeded generator. `hostSet` defaults to the cluster's own load_assignment policy. Throws on a policy name that is
 * not registered (translation only lets known names through).
 */
export function createLoadBalancer<H extends LbHost>(
  priorities: readonly (readonly H[])[],
  config: ClusterConfig,
  random: Random = Math.random,
  hostSet: HostSetOptions = { policy: config.loadAssignmentPolicy },
): LoadBalancer<H> {
  const policy = LB_POLICIES.get(config.lbPolicy);
  if (policy === undefined) throw new Error(`cluster ${config.name}: unknown lb_policy ${config.lbPolicy}`);
  return createPriorityLoadBalancer(priorities, (hosts) => policy.createLevel(hosts, config, random), {
    drawFromHash: policy.consistentHashing,
    random,
    overprovisioningFactor: hostSet.policy.overprovisioningFactor,
    weightedPriorityHealth: hostSet.policy.weightedPriorityHealth,
    onPanicPick: hostSet.onPanicPick,
  });
}

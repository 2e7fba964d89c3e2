// The load-balancer plug-in contract: a policy turns a priority-grouped host set into a chooser.

import type { ClusterConfig } from '../../../config/model.js';

/** What a load balancer needs of a host. */
export interface LbHost {
  /** "ip:port" (IPv6 in brackets); the identity hashed onto rings and tables. */
  readonly key: string;
  /** load_balancing_weight, >= 1. */
  readonly weight: number;
  /** Requests in flight to this host right now (read by LEAST_REQUEST). */
  readonly activeRequests: number;
  /**
   * HEALTHY (or UNKNOWN). Neither healthy nor degraded: unhealthy, chosen only when its priority level is in panic.
   */
  readonly healthy: boolean;
  /** DEGRADED: chosen only when the healthy hosts cannot carry the load (Envoy's degraded load). */
  readonly degraded: boolean;
}

/** Per-request input to a pick. */
export interface LbContext {
  /** The 64-bit hash of the request from the route's hash_policy, or undefined (then a random pick). */
  readonly hashKey: bigint | undefined;
}

export interface LoadBalancer<H extends LbHost> {
  /** A host, or undefined when the cluster has no host to offer (the caller answers 503 UH). */
  chooseHost(ctx: LbContext): H | undefined;
}

/**
 * Builds a balancer for one snapshot of the cluster's hosts. `priorities[p]` holds the hosts of priority p.
 * Rebuilt whenever membership or health changes; the snapshot is never mutated in place.
 */
export type LoadBalancerFactory = <H extends LbHost>(
  priorities: readonly (readonly H[])[],
  config: ClusterConfig,
) => LoadBalancer<H>;

// Whether a request may go to a cluster now, and to which host: circuit breakers first, then the load balancer.

import { type FailureKind, Failures } from '../errors.js';
import type { Cluster } from '../upstream/cluster.js';
import { Host } from '../upstream/host.js';

/** Why a request cannot be sent, as the local reply will say it. */
export interface Refusal {
  readonly kind: FailureKind;
  readonly message: string;
}

/**
 * The host for a request, or why there is none (counted in the cluster's stats). `ownConnection`: the request
 * needs a connection of its own (an upgrade), so max_connections must leave room for one.
 */
export function chooseUpstream(
  cluster: Cluster,
  hashKey: bigint | undefined,
  ownConnection = false,
): Host | Refusal {
  const { stats, breaker } = cluster;
  const name = cluster.config.name;
  if (!breaker.canSendRequest() || !breaker.canQueue()) {
    stats.upstream_rq_pending_overflow.inc();
    return {
      kind: Failures.overflow,
      message: `upstream overflow: cluster "${name}" is at its circuit-breaker limit (max_requests ${breaker.limits.maxRequests}, max_pending_requests ${breaker.limits.maxPendingRequests})`,
    };
  }
  if (ownConnection && breaker.connections >= breaker.limits.maxConnections) {
    stats.upstream_cx_overflow.inc();
    return {
      kind: Failures.overflow,
      message: `upstream overflow: cluster "${name}" is at max_connections ${breaker.limits.maxConnections}, and an upgrade needs a connection of its own`,
    };
  }
  const host = cluster.chooseHost({ hashKey });
  if (!host) {
    stats.upstream_cx_none_healthy.inc();
    return {
      kind: Failures.noHealthyUpstream,
      message: `no healthy upstream: cluster "${name}" has no host to send to`,
    };
  }
  return host;
}

export function isRefusal(r: Host | Refusal): r is Refusal {
  return !(r instanceof Host);
}

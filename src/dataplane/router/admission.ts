// Whether a request may go to a cluster now, and to which host: circuit breakers first, then the load balancer.

import { type FailureKind, Failures } from '../errors.js';
import { type HeaderList, headerGet } from '../http/header_list.js';
import type { DownstreamStream } from '../http/stream.js';
import type { Cluster, HostSelection } from '../upstream/cluster.js';
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
  selection: HostSelection,
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
  const host = cluster.chooseHost(selection);
  if (!host) {
    stats.upstream_cx_none_healthy.inc();
    return {
      kind: Failures.noHealthyUpstream,
      message: cluster.config.originalDst
        ? `no healthy upstream: cluster "${name}" is ORIGINAL_DST and this connection has no original destination (it was not redirected to the proxy)`
        : cluster.endpointsStale
          ? `no healthy upstream: cluster "${name}" has no host to send to: its endpoints went stale (no ClusterLoadAssignment within endpoint_stale_after)`
          : `no healthy upstream: cluster "${name}" has no host to send to`,
    };
  }
  return host;
}

/**
 * policy.drop_overloads: whether the request is refused before a host is chosen (counted in the cluster's
 * upstream_rq_drop_overload). Envoy's router decides once per request, so retries never draw again.
 */
export function dropOverload(cluster: Cluster): Refusal | undefined {
  if (!cluster.dropsOverload()) return undefined;
  cluster.stats.upstream_rq_drop_overload.inc();
  return { kind: Failures.dropOverload, message: cluster.dropOverloadReason() };
}

/** The host selection for an HTTP request: the hash, and for ORIGINAL_DST clusters the connection and headers. */
export function requestSelection(
  cluster: Cluster,
  hashKey: bigint | undefined,
  stream: DownstreamStream,
  headers: HeaderList,
): HostSelection {
  if (cluster.config.originalDst === undefined) return { hashKey };
  return {
    hashKey,
    originalDestination: stream.connection.originalDestination,
    header: (name) => headerGet(headers, name),
  };
}

export function isRefusal(r: Host | Refusal): r is Refusal {
  return !(r instanceof Host);
}

// Every way a request can fail inside the proxy: a stable code, the Envoy response flag, status and details.

import type { ResponseFlag } from './observe/stream_info.js';

export interface FailureKind {
  /** Stable error code, also sent as the x-remora-error header on local replies. */
  readonly code: string;
  readonly status: number;
  readonly flag: ResponseFlag | undefined;
  /** Envoy's %RESPONSE_CODE_DETAILS% value. */
  readonly details: string;
  /** gRPC status for gRPC requests (14 UNAVAILABLE, 4 DEADLINE_EXCEEDED, 12 UNIMPLEMENTED ...). */
  readonly grpcStatus: number;
  /** Headers Envoy adds to this local reply (flat name, value pairs). */
  readonly replyHeaders?: readonly string[];
}

function kind(
  code: string,
  status: number,
  flag: ResponseFlag | undefined,
  details: string,
  grpc: number,
  replyHeaders?: readonly string[],
): FailureKind {
  return replyHeaders === undefined
    ? { code, status, flag, details, grpcStatus: grpc }
    : { code, status, flag, details, grpcStatus: grpc, replyHeaders };
}

/** The one table of local failures; responses are built from it in http/local_reply.ts. */
export const Failures = {
  noRoute: kind('REMORA_ERR_NO_ROUTE', 404, 'NR', 'route_not_found', 12),
  noCluster: kind('REMORA_ERR_CLUSTER_NOT_FOUND', 503, 'NR', 'cluster_not_found', 14),
  noHealthyUpstream: kind('REMORA_ERR_NO_HEALTHY_UPSTREAM', 503, 'UH', 'no_healthy_upstream', 14),
  /** The cluster's ClusterLoadAssignment drops this share of requests (policy.drop_overloads). */
  dropOverload: kind('REMORA_ERR_DROP_OVERLOAD', 503, 'DO', 'drop_overload', 14, [
    'x-envoy-drop-overload',
    'true',
  ]),
  connectFailure: kind(
    'REMORA_ERR_UPSTREAM_CONNECT',
    503,
    'UF',
    'upstream_reset_before_response_started{connection_failure}',
    14,
  ),
  upstreamReset: kind(
    'REMORA_ERR_UPSTREAM_RESET',
    503,
    'UR',
    'upstream_reset_before_response_started{remote_reset}',
    14,
  ),
  upstreamProtocolError: kind(
    'REMORA_ERR_UPSTREAM_PROTOCOL',
    502,
    'UPE',
    'upstream_reset_before_response_started{protocol_error}',
    14,
  ),
  upstreamTimeout: kind('REMORA_ERR_UPSTREAM_TIMEOUT', 504, 'UT', 'upstream_response_timeout', 4),
  overflow: kind('REMORA_ERR_OVERFLOW', 503, 'UO', 'upstream_reset_before_response_started{overflow}', 14),
  requestHeadersTooLarge: kind(
    'REMORA_ERR_HEADERS_TOO_LARGE',
    431,
    undefined,
    'request_headers_too_large',
    8,
  ),
  streamIdleTimeout: kind('REMORA_ERR_STREAM_IDLE_TIMEOUT', 408, undefined, 'stream_idle_timeout', 4),
  requestTimeout: kind('REMORA_ERR_REQUEST_TIMEOUT', 408, undefined, 'request_overall_timeout', 4),
  draining: kind('REMORA_ERR_DRAINING', 503, undefined, 'draining', 14),
  /**
   * An RBAC filter denied the request. Envoy sets no response flag for it: its details name the policy,
   * `rbac_access_denied_matched_policy[<name>]` (set by the filter); gRPC gets PERMISSION_DENIED.
   */
  rbacDenied: kind('REMORA_ERR_RBAC_DENIED', 403, undefined, 'rbac_access_denied_matched_policy[none]', 7),
  /** An Upgrade (WebSocket ...) that upgrade_configs do not enable for the route. */
  upgradeRefused: kind('REMORA_ERR_UPGRADE_REFUSED', 403, undefined, 'upgrade_failed', 7),
} as const;

export type FailureName = keyof typeof Failures;

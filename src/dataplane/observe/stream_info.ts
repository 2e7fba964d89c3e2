// What happened to one request or TCP connection: the facts access logs and stats are written from.

import { monotonicMs } from '../clock.js';

/** Envoy response flags (short form as printed by %RESPONSE_FLAGS%). */
export type ResponseFlag =
  | 'UPE'
  | 'UH'
  | 'DO'
  | 'UF'
  | 'UO'
  | 'NR'
  | 'URX'
  | 'UT'
  | 'DC'
  | 'LR'
  | 'UC'
  | 'UR'
  | 'DPE'
  | 'SI'
  | 'DI'
  | 'FI'
  | 'RL';

/** The verified certificate a downstream TLS peer presented, as RBAC principals and access logs read it. */
export interface PeerCertificate {
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  /** The subject in RFC 2253 form (`CN=web,O=example`), as Envoy prints it; "" when empty. */
  readonly subject: string;
}

export interface StreamInfo {
  /** Wall-clock start, ms since epoch. */
  startTime: number;
  /** monotonicMs() at start, for durations. */
  startMonotonic: number;
  /** Total duration in ms, set when the stream ends. */
  durationMs: number | undefined;
  /** Time to the first upstream response byte, ms from start. */
  responseStartMs: number | undefined;
  protocol: string; // "HTTP/1.1", "HTTP/1.0", "TCP"
  method: string | undefined;
  /** Original path as received (before rewrites). */
  path: string | undefined;
  authority: string | undefined;
  requestHeaders: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** Flat [name, value, ...] as sent downstream. */
  responseHeaders: readonly string[] | undefined;
  responseCode: number;
  /** Envoy's %RESPONSE_CODE_DETAILS%, e.g. "via_upstream", "route_not_found". */
  responseCodeDetails: string;
  responseFlags: ResponseFlag[];
  bytesReceived: number;
  bytesSent: number;
  downstreamRemoteAddress: string;
  downstreamLocalAddress: string;
  upstreamHost: string | undefined;
  upstreamCluster: string | undefined;
  upstreamLocalAddress: string | undefined;
  upstreamTransportFailureReason: string | undefined;
  routeName: string | undefined;
  requestId: string | undefined;
  /** Attempts made to the upstream (1 + retries). */
  attemptCount: number;
  connectionTerminationDetails: string | undefined;
  /** The gRPC status of a gRPC call (from grpc-status, or of a local reply); undefined otherwise. */
  grpcStatus: number | undefined;
  /** The downstream's verified TLS certificate; set only when an access log or istio.stats reads it. */
  downstreamPeer: PeerCertificate | undefined;
}

export function newStreamInfo(protocol: string, remote: string, local: string): StreamInfo {
  return {
    startTime: Date.now(),
    startMonotonic: monotonicMs(),
    durationMs: undefined,
    responseStartMs: undefined,
    protocol,
    method: undefined,
    path: undefined,
    authority: undefined,
    requestHeaders: undefined,
    responseHeaders: undefined,
    responseCode: 0,
    responseCodeDetails: '',
    responseFlags: [],
    bytesReceived: 0,
    bytesSent: 0,
    downstreamRemoteAddress: remote,
    downstreamLocalAddress: local,
    upstreamHost: undefined,
    upstreamCluster: undefined,
    upstreamLocalAddress: undefined,
    upstreamTransportFailureReason: undefined,
    routeName: undefined,
    requestId: undefined,
    attemptCount: 0,
    connectionTerminationDetails: undefined,
    grpcStatus: undefined,
    downstreamPeer: undefined,
  };
}

/** Renders "host:port" with IPv6 brackets, as Envoy prints addresses. */
/**
 * An IPv4 peer of a dual-stack (ipv4_compat) socket, which Node reports as ::ffff:a.b.c.d, in its IPv4 form, as
 * Envoy reports it.
 */
export function plainIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function formatAddress(ip: string | undefined, port: number | undefined): string {
  if (!ip) return '-';
  const plain = plainIp(ip);
  const host = plain.includes(':') ? `[${plain}]` : plain;
  return port === undefined ? host : `${host}:${port}`;
}

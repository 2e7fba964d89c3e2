// The values of Istio's standard labels for one request or connection, as Istio's stats filter fills them in for
// each reporter, from what Remora knows without Istio's metadata exchange.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isTlsSocket } from '../../lazy_builtins.js';
import { connectionFacts } from '../rbac/connection_facts.js';
import { parseSubjectAltNames } from '../tls/san_match.js';
import type { LabelValues } from './series.js';
import {
  type DestinationService,
  type LocalWorkload,
  namespaceOfPrincipal,
  type Reporter,
  UNKNOWN,
} from './workload.js';

/** The identities of a connection: the peer's certificate and this proxy's, read once per connection. */
export interface ConnectionIdentity {
  /** The first URI SAN (the SPIFFE ID) of the peer's verified certificate; '' when none. */
  readonly peerPrincipal: string;
  /** The namespace in the peer's SPIFFE ID; ''. */
  readonly peerNamespace: string;
  /** The first URI SAN of the certificate this proxy presented; ''. */
  readonly localPrincipal: string;
  /** The peer presented a certificate that was verified: the connection is mutual TLS. */
  readonly mutualTls: boolean;
}

/** A connection that was not TLS, or whose sides are not known (an outbound request's upstream). */
export const NO_IDENTITY: ConnectionIdentity = {
  peerPrincipal: '',
  peerNamespace: '',
  localPrincipal: '',
  mutualTls: false,
};

const identities = new WeakMap<Socket, ConnectionIdentity>();

/** The identities of a downstream connection (the TLS socket when TLS was terminated on it). */
export function downstreamIdentity(
  socket: Socket | undefined,
  peerUriSans?: readonly string[] | undefined,
): ConnectionIdentity {
  if (!isTlsSocket(socket)) return NO_IDENTITY;
  let id = identities.get(socket);
  if (id === undefined) {
    const peer = peerUriSans ?? connectionFacts(socket).peer?.uriSans;
    const mutualTls = peer !== undefined;
    const peerPrincipal = peer?.[0] ?? '';
    id = {
      peerPrincipal,
      peerNamespace: namespaceOfPrincipal(peerPrincipal),
      localPrincipal: localPrincipal(socket),
      mutualTls,
    };
    identities.set(socket, id);
  }
  return id;
}

/** The first URI SAN of the certificate the proxy presented on `socket`. */
function localPrincipal(socket: TLSSocket): string {
  const cert = socket.getX509Certificate();
  if (cert === undefined) return '';
  for (const san of parseSubjectAltNames(cert.subjectAltName)) if (san.type === 'URI') return san.value;
  return '';
}

/** What varies per request (or connection) beyond the connection's identities. */
export interface TrafficFacts {
  readonly service: DestinationService;
  /** http, grpc or tcp. */
  readonly protocol: string;
  /** The response code as text; '0' when there was none (and for TCP, where Istio leaves it unset too). */
  readonly responseCode: string;
  /** The gRPC status as text; '' when not a gRPC call. */
  readonly grpcStatus: string;
  /** Envoy's short response flags, comma-separated; '-' when none. */
  readonly responseFlags: string;
}

/** A key equal for two requests exactly when their label values are equal (given the reporter and workload). */
export function labelKey(id: ConnectionIdentity, t: TrafficFacts): string {
  return `${id.peerPrincipal}\u0001${id.localPrincipal}\u0001${id.mutualTls ? 1 : 0}\u0001${t.service.host}\u0001${t.service.name}\u0001${t.service.namespace}\u0001${t.protocol}\u0001${t.responseCode}\u0001${t.grpcStatus}\u0001${t.responseFlags}`;
}

/**
 * The label values in ISTIO_LABELS order. The peer's workload, app, version and cluster come, in Istio, from its
 * metadata exchange, which Remora does not do: `unknown` (its canonical revision: `latest`, Istio's default).
 */
export function labelValues(
  reporter: Reporter,
  local: LocalWorkload,
  id: ConnectionIdentity,
  t: TrafficFacts,
): LabelValues {
  const peerPrincipal = id.peerPrincipal || UNKNOWN;
  const peerNamespace = id.peerNamespace || UNKNOWN;
  const tail = [t.protocol, t.responseCode, t.grpcStatus, t.responseFlags];
  if (reporter === 'source') {
    return [
      reporter,
      local.workload,
      local.canonicalService,
      local.canonicalRevision,
      local.namespace,
      id.localPrincipal || UNKNOWN,
      local.app,
      local.version,
      local.cluster,
      UNKNOWN,
      peerNamespace,
      peerPrincipal,
      UNKNOWN,
      UNKNOWN,
      t.service.host || UNKNOWN,
      UNKNOWN,
      'latest',
      t.service.name || UNKNOWN,
      id.peerNamespace || t.service.namespace || UNKNOWN,
      UNKNOWN,
      ...tail,
      // Istio reports the client side's policy as unknown: it is the server's to say.
      UNKNOWN,
    ];
  }
  const policy = id.mutualTls ? 'mutual_tls' : 'none';
  const source = [
    reporter,
    UNKNOWN,
    UNKNOWN,
    'latest',
    peerNamespace,
    peerPrincipal,
    UNKNOWN,
    UNKNOWN,
    UNKNOWN,
  ];
  if (reporter === 'waypoint') {
    // A gateway serves many workloads: the destination workload is the endpoint's, known only by metadata exchange.
    return [
      ...source,
      UNKNOWN,
      UNKNOWN,
      UNKNOWN,
      UNKNOWN,
      UNKNOWN,
      t.service.host || UNKNOWN,
      UNKNOWN,
      UNKNOWN,
      t.service.name || UNKNOWN,
      local.namespace,
      local.cluster,
      ...tail,
      policy,
    ];
  }
  return [
    ...source,
    local.workload,
    local.namespace,
    id.localPrincipal || UNKNOWN,
    local.app,
    local.version,
    t.service.host || local.canonicalService,
    local.canonicalService,
    local.canonicalRevision,
    t.service.name || local.canonicalService,
    local.namespace,
    local.cluster,
    ...tail,
    policy,
  ];
}

/** Envoy's %RESPONSE_FLAGS% as Istio's label takes it: '-' when there are none. */
export function responseFlagsLabel(flags: readonly string[]): string {
  return flags.length === 0 ? '-' : flags.join(',');
}

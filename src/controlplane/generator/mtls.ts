// Automatic mTLS: which services' workloads speak it and as whom, and the transport sockets and filters that carry
// it (Istio's shapes: transport_socket_matches on outbound clusters, ALPN-told TLS chains on inbound listeners).

import { DEFAULT_TRUST_DOMAIN } from '../../identity/spiffe.js';
import { selects } from '../model/objects.js';
import type { MeshSnapshot, Service, Workload } from '../model/snapshot.js';
import { adsConfigSource, type Json, TYPES } from './names.js';

/** Istio's label of a workload whose sidecar has a mesh identity: its endpoints are sent mTLS. */
export const TLS_MODE_LABEL = 'security.istio.io/tlsMode';
const TLS_MODE_ISTIO = 'istio';

/** The LbEndpoint metadata of an endpoint that speaks mTLS (what `tlsMode-istio` matches). */
export const MTLS_ENDPOINT_METADATA: Json = Object.freeze({
  filter_metadata: Object.freeze({
    'envoy.transport_socket_match': Object.freeze({ tlsMode: TLS_MODE_ISTIO }),
  }),
});

/** The ALPN a sidecar offers inside mTLS, by what it carries (istio.alpn for HTTP, the TLS context's for TCP). */
export const MTLS_HTTP_ALPN = ['istio-http/1.0', 'istio-http/1.1', 'istio-h2'];
export const MTLS_TCP_ALPN = ['istio-peer-exchange', 'istio'];

/** Istio's SDS names: the workload's certificate and key, and the trust bundle. */
const CERT_SECRET = 'default';
const ROOT_SECRET = 'ROOTCA';

export function speaksMtls(labels: Readonly<Record<string, string>>): boolean {
  return labels[TLS_MODE_LABEL] === TLS_MODE_ISTIO;
}

/** Of a service: whether any of its workloads speaks mTLS, and the service accounts its workloads run as. */
export interface ServiceIdentities {
  readonly mtls: boolean;
  /** `<namespace>/<service account>`, sorted; a workload without one runs as `default`, as a Pod does. */
  readonly accounts: readonly string[];
}

const NONE: ServiceIdentities = Object.freeze({ mtls: false, accounts: Object.freeze([]) });

interface MeshIdentities {
  readonly byHost: ReadonlyMap<string, ServiceIdentities>;
  /** Changes exactly when some service's identities do: part of a plan's cache key. */
  readonly digest: string;
}

const computed = new WeakMap<MeshSnapshot, MeshIdentities>();

/**
 * The identities of every service that selects workloads, from the workloads (never the endpoints, so an
 * endpoint-only change plans nothing again). A service without a selector (ServiceEntry endpoints, Consul) has
 * none and is sent plaintext.
 */
function meshIdentities(snapshot: MeshSnapshot): MeshIdentities {
  let m = computed.get(snapshot);
  if (m !== undefined) return m;
  const byNamespace = new Map<string, Workload[]>();
  for (const w of snapshot.workloads) {
    const list = byNamespace.get(w.namespace);
    if (list === undefined) byNamespace.set(w.namespace, [w]);
    else list.push(w);
  }
  const byHost = new Map<string, ServiceIdentities>();
  const parts: string[] = [];
  for (const s of snapshot.services) {
    if (s.selector === undefined || byHost.has(s.hostname)) continue;
    let mtls = false;
    const accounts = new Set<string>();
    for (const w of byNamespace.get(s.namespace) ?? []) {
      if (!selects(s.selector, w.labels)) continue;
      mtls ||= speaksMtls(w.labels);
      accounts.add(`${w.namespace}/${w.serviceAccount ?? 'default'}`);
    }
    const ids: ServiceIdentities = { mtls, accounts: [...accounts].sort() };
    byHost.set(s.hostname, ids);
    parts.push(`${s.hostname}${mtls ? '+' : '='}${ids.accounts.join(',')}`);
  }
  m = { byHost, digest: parts.join(';') };
  computed.set(snapshot, m);
  return m;
}

export function serviceIdentities(snapshot: MeshSnapshot, service: Service): ServiceIdentities {
  return meshIdentities(snapshot).byHost.get(service.hostname) ?? NONE;
}

/** What of the mesh's workloads the mTLS settings of any plan depend on. */
export function identitiesDigest(snapshot: MeshSnapshot): string {
  return meshIdentities(snapshot).digest;
}

function sdsSecret(name: string): Json {
  return { name, sds_config: adsConfigSource() };
}

function tlsSocket(typeUrl: string, context: Json): Json {
  return { name: 'envoy.transport_sockets.tls', typed_config: { '@type': typeUrl, ...context } };
}

/**
 * Istio's `transport_socket_matches` of an outbound cluster: mTLS with the workload certificate to endpoints that
 * speak it, verifying the peer is one of the service's identities, and plaintext to the rest.
 */
export function outboundTransportSocketMatches(
  ids: ServiceIdentities,
  sni: string,
  trustDomain = DEFAULT_TRUST_DOMAIN,
): Json[] {
  return [
    {
      name: 'tlsMode-istio',
      match: { tlsMode: TLS_MODE_ISTIO },
      transport_socket: istioMutualSocket(identitySans(ids, trustDomain), sni),
    },
    {
      name: 'tlsMode-disabled',
      match: {},
      transport_socket: {
        name: 'envoy.transport_sockets.raw_buffer',
        typed_config: { '@type': TYPES.rawBuffer },
      },
    },
  ];
}

/** The SPIFFE IDs a service's workloads run as. */
export function identitySans(ids: ServiceIdentities, trustDomain = DEFAULT_TRUST_DOMAIN): string[] {
  return ids.accounts.map((a) => {
    const [ns, sa] = a.split('/');
    return `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
  });
}

/**
 * The mesh's mTLS toward an endpoint: the workload certificate, the trust bundle, and the peer's URI SAN one of
 * `sans` (any certificate of the mesh when empty).
 */
export function istioMutualSocket(sans: readonly string[], sni: string): Json {
  const matchers = sans.map((exact) => ({ san_type: 'URI', matcher: { exact } }));
  return tlsSocket(TYPES.upstreamTls, {
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
      alpn_protocols: MTLS_TCP_ALPN,
      tls_certificate_sds_secret_configs: [sdsSecret(CERT_SECRET)],
      combined_validation_context: {
        default_validation_context: matchers.length === 0 ? {} : { match_typed_subject_alt_names: matchers },
        validation_context_sds_secret_config: sdsSecret(ROOT_SECRET),
      },
    },
    sni,
  });
}

/** Istio's SNI of an outbound cluster, `outbound_.<port>_.<subset>_.<host>`. */
export function outboundSni(port: number, subset: string | undefined, host: string): string {
  return `outbound_.${port}_.${subset ?? ''}_.${host}`;
}

/**
 * The TLS an inbound chain terminates: the workload certificate, a client certificate from the mesh required. No
 * ALPN is selected: the client's `istio-*` names only pick the chain, and the connection manager tells HTTP/2 from
 * HTTP/1.1 by the preface.
 */
export function inboundMtlsSocket(): Json {
  return tlsSocket(TYPES.downstreamTls, {
    common_tls_context: {
      tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
      tls_certificate_sds_secret_configs: [sdsSecret(CERT_SECRET)],
      validation_context_sds_secret_config: sdsSecret(ROOT_SECRET),
    },
    require_client_certificate: true,
  });
}

/**
 * Istio's istio.alpn filter: the ALPN an HTTP request's mTLS connection offers names the HTTP version, so the
 * receiving sidecar sends it through its HTTP chain rather than as opaque TCP.
 */
export function alpnFilter(): Json {
  return {
    name: 'istio.alpn',
    typed_config: {
      '@type': TYPES.alpn,
      alpn_override: [
        // HTTP10 is the enum's zero: left unwritten, as protobuf's JSON writes it.
        { alpn_override: ['istio-http/1.0', 'istio'] },
        { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio'] },
        { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio'] },
      ],
    },
  };
}

// The validated mesh objects every source produces (Kubernetes and Istio kinds), the inputs of a MeshSnapshot.

export type Labels = Readonly<Record<string, string>>;

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Labels;
}

/** Where an object came from, for messages only: never part of a snapshot's version. */
export interface Origin {
  /** The source's name (`files`, `dns`, ...). */
  readonly source: string;
  /** A file (files source), or another locator the source understands. */
  readonly file?: string;
}

export type PortProtocol = 'TCP' | 'UDP' | 'SCTP';

/** How the mesh treats a port's traffic: from `appProtocol`, else from the port name's prefix (Istio's rules). */
export type MeshProtocol = 'HTTP' | 'HTTP2' | 'GRPC' | 'TLS' | 'TCP' | 'UNKNOWN';

export interface ServicePort {
  /** "" only for the single unnamed port of a Service. */
  readonly name: string;
  readonly port: number;
  readonly protocol: PortProtocol;
  readonly appProtocol: string | undefined;
  /** The endpoints' port: a number, or the name of a container port (resolved per endpoint). */
  readonly targetPort: number | string;
  readonly meshProtocol: MeshProtocol;
}

export interface NamespaceObject {
  readonly kind: 'Namespace';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
}

export interface ServiceObject {
  readonly kind: 'Service';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  readonly type: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** Empty for a headless Service (`clusterIP: None`) or when no address was given. */
  readonly clusterIPs: readonly string[];
  readonly headless: boolean;
  readonly ports: readonly ServicePort[];
  /** Undefined: the Service selects nothing (its endpoints come from EndpointSlices only). */
  readonly selector: Labels | undefined;
  readonly publishNotReadyAddresses: boolean;
}

export interface SlicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: PortProtocol;
  readonly appProtocol: string | undefined;
}

export interface SliceEndpoint {
  /** Kubernetes uses the first address only; so does Remora. */
  readonly address: string;
  /** `conditions.ready`; absent means ready. */
  readonly ready: boolean;
  readonly hostname: string | undefined;
  readonly zone: string | undefined;
  readonly nodeName: string | undefined;
  /** The Pod (or other object) behind the endpoint, as `kind/namespace/name`. */
  readonly targetRef: string | undefined;
  /** The Pod's labels and service account, when the source knows the Pod (the Kubernetes source joins them). */
  readonly labels?: Labels;
  readonly serviceAccount?: string;
}

export interface EndpointSliceObject {
  readonly kind: 'EndpointSlice';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** The `kubernetes.io/service-name` label: the Service (same namespace) these endpoints belong to. */
  readonly serviceName: string;
  readonly addressType: 'IPv4' | 'IPv6';
  readonly endpoints: readonly SliceEndpoint[];
  readonly ports: readonly SlicePort[];
}

export interface WorkloadEntryObject {
  readonly kind: 'WorkloadEntry';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  readonly address: string;
  /** Service port name -> this workload's port. */
  readonly ports: Readonly<Record<string, number>>;
  /** The workload's labels (`spec.labels`), matched by Service selectors and DestinationRule subsets. */
  readonly labels: Labels;
  readonly serviceAccount: string | undefined;
  readonly network: string | undefined;
  readonly locality: string | undefined;
  readonly weight: number | undefined;
  readonly priority: number | undefined;
}

/** A named port of one of a Pod's containers: what a Service's `targetPort` of that name resolves to. */
export interface ContainerPort {
  readonly name: string;
  readonly port: number;
  readonly protocol: PortProtocol;
}

/**
 * A Kubernetes Pod, as the Kubernetes source reads it: a workload of the mesh. Never an endpoint by itself: a
 * Service's endpoints come from its EndpointSlices (as in Kubernetes and Istio), onto which the source joins the
 * Pod's labels and service account.
 */
export interface PodObject {
  readonly kind: 'Pod';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** `status.podIPs` (the primary first); empty until the Pod has one, and for a Pod on the host network. */
  readonly addresses: readonly string[];
  /** `spec.hostNetwork`: the Pod shares its node's network, so its IP is the node's and names no Pod. */
  readonly hostNetwork: boolean;
  readonly serviceAccount: string | undefined;
  /**
   * The named ports of its containers, then of its sidecar containers (init containers with `restartPolicy:
   * Always`): the order in which Kubernetes looks a named `targetPort` up.
   */
  readonly ports: readonly ContainerPort[];
}

export interface ServiceEntryPort {
  readonly name: string;
  readonly number: number;
  readonly protocol: string | undefined;
  readonly targetPort: number | undefined;
  readonly meshProtocol: MeshProtocol;
}

/** A service outside Kubernetes resolved through DNS by the control plane (`resolution: DNS`). */
export interface ServiceEntryObject {
  readonly kind: 'ServiceEntry';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** One fully qualified name: the service's hostname and the name resolved. */
  readonly host: string;
  readonly ports: readonly ServiceEntryPort[];
  readonly resolution: 'DNS';
  readonly location: 'MESH_EXTERNAL' | 'MESH_INTERNAL';
  readonly exportTo: readonly string[] | undefined;
  /** Resolve `_<port name>._tcp.<host>` SRV records for the ports (annotation `remora.io/dns-srv: "true"`). */
  readonly srv: boolean;
}

/** What the DNS source resolved for one ServiceEntry: not written by users. */
export interface DnsEndpointsObject {
  readonly kind: 'DnsEndpoints';
  /** Same name and namespace as the ServiceEntry. */
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  readonly host: string;
  readonly endpoints: readonly {
    readonly address: string;
    readonly ports: Readonly<Record<string, number>>;
  }[];
}

export interface StringMatch {
  readonly kind: 'exact' | 'prefix' | 'regex';
  readonly value: string;
}

export interface HeaderMatch {
  readonly name: string;
  /** Undefined: the header (or query parameter) must be present, with any value. */
  readonly match: StringMatch | undefined;
}

export interface HttpMatch {
  readonly name: string | undefined;
  readonly uri: StringMatch | undefined;
  readonly method: StringMatch | undefined;
  readonly authority: StringMatch | undefined;
  readonly headers: readonly HeaderMatch[];
  readonly queryParams: readonly HeaderMatch[];
  readonly ignoreUriCase: boolean;
  /** The service port the request arrived on. */
  readonly port: number | undefined;
}

export interface Destination {
  /** As written in the manifest. */
  readonly host: string;
  /** Fully qualified (short names resolved in the policy's namespace). */
  readonly fqdn: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
}

export interface RouteDestination {
  readonly destination: Destination;
  /** Relative weight; undefined when the route has a single destination and gave none. */
  readonly weight: number | undefined;
}

export interface HttpRetry {
  /** 0 turns retries off. */
  readonly attempts: number;
  readonly perTryTimeoutMs: number | undefined;
  /** Envoy retry conditions from `retryOn`; undefined when not given (the generator applies Istio's default). */
  readonly retryOn: readonly string[] | undefined;
  /** HTTP status codes listed in `retryOn` (Envoy's `retriable-status-codes`). */
  readonly retriableStatusCodes: readonly number[];
  readonly backoffMs: number | undefined;
}

export interface HttpRewrite {
  readonly uri: string | undefined;
  readonly authority: string | undefined;
}

export interface HttpRoute {
  readonly name: string | undefined;
  /** Empty: matches every request. */
  readonly match: readonly HttpMatch[];
  readonly route: readonly RouteDestination[];
  readonly retries: HttpRetry | undefined;
  readonly timeoutMs: number | undefined;
  readonly rewrite: HttpRewrite | undefined;
}

export interface VirtualServiceObject {
  readonly kind: 'VirtualService';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  readonly hosts: readonly { readonly host: string; readonly fqdn: string }[];
  readonly exportTo: readonly string[] | undefined;
  readonly http: readonly HttpRoute[];
}

export type LoadBalancer =
  | { readonly kind: 'simple'; readonly simple: 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' }
  | {
      readonly kind: 'consistentHash';
      readonly hash:
        | { readonly kind: 'httpHeaderName'; readonly name: string }
        | {
            readonly kind: 'httpCookie';
            readonly name: string;
            readonly path: string | undefined;
            readonly ttlMs: number | undefined;
          }
        | { readonly kind: 'useSourceIp' };
      /** RING_HASH unless `maglev` was given. */
      readonly algorithm:
        | { readonly kind: 'ringHash'; readonly minimumRingSize: number | undefined }
        | { readonly kind: 'maglev'; readonly tableSize: number | undefined };
    };

export interface ConnectionPool {
  readonly tcp:
    | { readonly maxConnections: number | undefined; readonly connectTimeoutMs: number | undefined }
    | undefined;
  readonly http:
    | {
        readonly http1MaxPendingRequests: number | undefined;
        readonly http2MaxRequests: number | undefined;
        readonly maxRequestsPerConnection: number | undefined;
        readonly maxRetries: number | undefined;
      }
    | undefined;
}

export interface TrafficPolicy {
  readonly loadBalancer: LoadBalancer | undefined;
  readonly connectionPool: ConnectionPool | undefined;
  /** Unset: automatic mTLS (to the endpoints that speak it). */
  readonly tls?: TrafficTls;
}

/** A DestinationRule's `tls`: plaintext, or the mesh's mTLS to every endpoint. */
export interface TrafficTls {
  readonly mode: 'DISABLE' | 'ISTIO_MUTUAL';
  /** ISTIO_MUTUAL: the SNI to send instead of Istio's `outbound_.<port>_.<subset>_.<host>`. */
  readonly sni?: string;
  /** ISTIO_MUTUAL: the identities the peer may have, instead of the service's workloads'. */
  readonly subjectAltNames?: readonly string[];
}

export interface Subset {
  readonly name: string;
  readonly labels: Labels;
  readonly trafficPolicy: TrafficPolicy | undefined;
}

export interface DestinationRuleObject {
  readonly kind: 'DestinationRule';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  readonly host: string;
  readonly fqdn: string;
  readonly trafficPolicy: TrafficPolicy | undefined;
  readonly subsets: readonly Subset[];
  readonly exportTo: readonly string[] | undefined;
}

/** One `namespace/host` entry of a Sidecar's egress: namespace `*` (any), `~` (none) or a name (`.` resolved). */
export interface EgressHost {
  readonly namespace: string;
  /** `*`, `*.suffix` or a host name. */
  readonly host: string;
  readonly raw: string;
}

export interface SidecarObject {
  readonly kind: 'Sidecar';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** Undefined: the namespace-wide default Sidecar. */
  readonly workloadSelector: Labels | undefined;
  readonly egress: readonly { readonly hosts: readonly EgressHost[] }[];
  readonly outboundTrafficPolicy: 'REGISTRY_ONLY' | 'ALLOW_ANY' | undefined;
}

/** PeerAuthentication's mTLS mode; UNSET inherits from the parent (port -> workload -> namespace -> mesh). */
export type MtlsMode = 'UNSET' | 'DISABLE' | 'PERMISSIVE' | 'STRICT';

export interface PeerAuthenticationObject {
  readonly kind: 'PeerAuthentication';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** `selector.matchLabels`; undefined: the whole namespace (the mesh, in the root namespace). */
  readonly selector: Labels | undefined;
  readonly mode: MtlsMode;
  /** `portLevelMtls`, by the workload's port number. */
  readonly portLevel: Readonly<Record<number, MtlsMode>>;
}

/**
 * One `from.source` of an AuthorizationPolicy rule: every field given must match (AND), any value of a field may
 * (OR); undefined fields do not constrain. Principals, namespaces, hosts and paths are exact, `prefix*`, `*suffix`
 * or `*`.
 */
export interface AuthzSource {
  readonly principals?: readonly string[];
  readonly notPrincipals?: readonly string[];
  readonly namespaces?: readonly string[];
  readonly notNamespaces?: readonly string[];
  readonly ipBlocks?: readonly string[];
  readonly notIpBlocks?: readonly string[];
  readonly remoteIpBlocks?: readonly string[];
  readonly notRemoteIpBlocks?: readonly string[];
}

/** One `to.operation`; ports as Istio writes them, strings. */
export interface AuthzOperation {
  readonly hosts?: readonly string[];
  readonly notHosts?: readonly string[];
  readonly ports?: readonly string[];
  readonly notPorts?: readonly string[];
  readonly methods?: readonly string[];
  readonly notMethods?: readonly string[];
  readonly paths?: readonly string[];
  readonly notPaths?: readonly string[];
}

export interface AuthzCondition {
  /** `request.headers[<name>]`, `source.ip`, `source.namespace`, `source.principal`, `destination.port`, ... */
  readonly key: string;
  readonly values?: readonly string[];
  readonly notValues?: readonly string[];
}

/** A rule matches when one of `from` (or none given), one of `to` (or none given) and every `when` match. */
export interface AuthzRule {
  readonly from: readonly AuthzSource[];
  readonly to: readonly AuthzOperation[];
  readonly when: readonly AuthzCondition[];
}

export interface AuthorizationPolicyObject {
  readonly kind: 'AuthorizationPolicy';
  readonly meta: ObjectMeta;
  readonly origin: Origin;
  /** `selector.matchLabels`; undefined: every workload of the namespace (of the mesh, in the root namespace). */
  readonly selector: Labels | undefined;
  readonly action: 'ALLOW' | 'DENY';
  /** No rules: an ALLOW policy matches nothing (deny all); `rules: [{}]` matches everything (allow all). */
  readonly rules: readonly AuthzRule[];
}

export type MeshObject =
  | NamespaceObject
  | ServiceObject
  | EndpointSliceObject
  | WorkloadEntryObject
  | PodObject
  | ServiceEntryObject
  | DnsEndpointsObject
  | VirtualServiceObject
  | DestinationRuleObject
  | SidecarObject
  | PeerAuthenticationObject
  | AuthorizationPolicyObject;

export type MeshKind = MeshObject['kind'];

/** `Kind/namespace/name`: two objects with the same key are the same object (the later one replaces). */
export function objectKey(o: { readonly kind: string; readonly meta: ObjectMeta }): string {
  return `${o.kind}/${o.meta.namespace}/${o.meta.name}`;
}

/** `VirtualService default/reviews`, as messages name an object. */
export function describeObject(o: { readonly kind: string; readonly meta: ObjectMeta }): string {
  return `${o.kind} ${o.meta.namespace}/${o.meta.name}`;
}

/** True when every label of `selector` is on `labels` with the same value (an empty selector selects all). */
export function selects(selector: Labels, labels: Labels): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

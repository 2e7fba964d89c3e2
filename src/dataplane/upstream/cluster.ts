// A cluster: its hosts (static or resolved by DNS), the load balancer over them, limits, pools and stats.

import type {
  ClusterConfig,
  ClusterLoadAssignmentConfig,
  EndpointHealth,
  FilterMetadata,
  LoadAssignmentPolicy,
  LocalityEndpointsConfig,
} from '../../config/model.js';
import { MILLION } from '../../config/percent.js';
import { HTTP2_CODEC_STATS, type Http2CodecStats } from '../http/stats.js';
import type { DownstreamProtocol } from '../http/stream.js';
import { Logger } from '../observe/log.js';
import { type StatsStore, scopes } from '../observe/stats.js';
import type { SecretManager } from '../tls/secret_manager.js';
import { CircuitBreaker } from './circuit_breaker.js';
import { type Lookup, resolveName, systemLookup } from './dns.js';
import { NativeHttp2Pool } from './h2_native/pool.js';
import { Host } from './host.js';
import { type AlpnOverride, HostPools } from './host_pools.js';
import { Http1Pool } from './http1_pool.js';
import { createLoadBalancer } from './lb/registry.js';
import type { LbContext, LoadBalancer } from './lb/types.js';
import { OriginalDstHosts, type OriginalDstSelection } from './original_dst_hosts.js';
import { CLUSTER_STATS, type ClusterStats } from './stats.js';
import { jsonEqual, TransportSockets } from './transport_sockets.js';
import type { ConnectionPool } from './upstream_request.js';

/**
 * REMORA_H2_CODEC=node keeps node:http2 for upstream HTTP/2 too (to compare); the default is the native codec.
 * node:http2 is loaded only then: it costs a sidecar 1.6 MiB of memory.
 */
const Http2Pool =
  process.env.REMORA_H2_CODEC === 'node' ? (await import('./h2_pool.js')).Http2Pool : NativeHttp2Pool;

const NO_HOSTS: LoadBalancer<Host> = { chooseHost: () => undefined };

/** What a cluster looks at to choose a host for a request or a connection. */
export type HostSelection = LbContext & OriginalDstSelection;

interface HostSpec {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly priority: number;
  readonly hostname: string | undefined;
  readonly health: EndpointHealth;
  readonly metadata: FilterMetadata | undefined;
  readonly localityMetadata: FilterMetadata | undefined;
}

export class Cluster {
  readonly stats: ClusterStats;
  readonly breaker: CircuitBreaker;
  /**
   * TLS origination: the cluster's transport_socket and its transport_socket_matches. Each host connects with the
   * one its metadata selects (`host.tls`).
   */
  readonly transportSockets: TransportSockets;
  /**
   * Resolves once the first host set is known: at once for STATIC, after the first DNS answer for STRICT_DNS, with
   * the first ClusterLoadAssignment for EDS.
   */
  readonly ready: Promise<void>;
  private markReady: () => void = () => undefined;
  private assigned = false;
  private hosts: Host[] = [];
  private lb: LoadBalancer<Host>;
  /** The policy of the current host set: the cluster's own load_assignment's, or the last EDS assignment's. */
  private policy: LoadAssignmentPolicy;
  /** drop_overloads as a probability in [0, 1]; 0 when there is none. */
  private dropFraction = 0;
  /** EDS: endpoint_stale_after passed without a new assignment, and the hosts were removed. */
  private stale = false;
  private readonly countPanic = (): void => this.stats.lb_healthy_panic.inc();
  private readonly pools = new HostPools();
  private readonly h2Pools = new HostPools();
  private readonly h2Stats: Http2CodecStats;
  private dnsTimer: NodeJS.Timeout | undefined;
  /** ORIGINAL_DST: the hosts come from connections, not from config or DNS. */
  private readonly originalDst: OriginalDstHosts | undefined;
  private closed = false;

  constructor(
    readonly config: ClusterConfig,
    store: StatsStore,
    private readonly lookup: Lookup = systemLookup,
    logger: Logger = new Logger(),
    secrets?: SecretManager,
  ) {
    this.stats = store.scope(scopes.cluster(config.name), CLUSTER_STATS);
    this.h2Stats = store.scope(scopes.cluster(config.name), HTTP2_CODEC_STATS);
    // First, before DNS starts: certificate files that cannot be used stop the cluster from being built.
    this.transportSockets = new TransportSockets(config, { store, logger, secrets });
    this.breaker = new CircuitBreaker(config.circuitBreakers, this.stats);
    this.policy = config.loadAssignmentPolicy;
    this.dropFraction = dropFractionOf(this.policy);
    // An ORIGINAL_DST cluster is its own load balancer (CLUSTER_PROVIDED).
    this.lb = config.originalDst ? NO_HOSTS : createLoadBalancer<Host>([], config);
    if (config.originalDst) {
      this.originalDst = new OriginalDstHosts(
        config.originalDst,
        (removed) => this.originalDstChanged(removed),
        // A connection's original destination has no metadata: only a match without labels applies.
        (host) => {
          host.tls = this.transportSockets.resolve(undefined, undefined);
        },
      );
      this.ready = Promise.resolve();
    } else if (config.type === 'STATIC') {
      this.setHosts(specsOf(config.localities));
      this.ready = Promise.resolve();
    } else if (config.type === 'EDS') {
      this.ready = new Promise((resolve) => {
        this.markReady = resolve;
      });
    } else {
      this.ready = this.refreshDns();
    }
  }

  /** EDS: a new ClusterLoadAssignment (endpoints and policy); hosts that stay keep their pools and counters. */
  setAssignment(assignment: ClusterLoadAssignmentConfig): void {
    if (this.closed) return;
    this.stats.update_attempt.inc();
    this.stats.update_success.inc();
    const { localities, policy } = assignment;
    if (localities.every((l) => l.endpoints.length === 0)) this.stats.update_empty.inc();
    if (policy.endpointStaleAfterMs !== undefined) this.stats.assignment_timeout_received.inc();
    this.policy = policy;
    this.dropFraction = dropFractionOf(policy);
    this.stale = false;
    this.setHosts(specsOf(localities));
    this.assigned = true;
    this.markReady();
  }

  /**
   * EDS: the assignment's endpoint_stale_after passed with no new one. As Envoy does (it applies an empty
   * assignment), the hosts are removed; requests get 503 no healthy upstream until the next assignment.
   */
  expireAssignment(): void {
    if (this.closed) return;
    this.stats.assignment_stale.inc();
    this.stale = true;
    this.setHosts([]);
  }

  /** Whether the hosts were removed because the last EDS assignment went stale. */
  get endpointsStale(): boolean {
    return this.stale;
  }

  /**
   * drop_overloads: whether to refuse this request (or connection) before a host is chosen, with the category's
   * probability. A single compare when the cluster has none.
   */
  dropsOverload(): boolean {
    const f = this.dropFraction;
    return f > 0 && (f >= 1 || Math.random() < f);
  }

  /** Why a request or connection was dropped, for its local reply or access log. */
  dropOverloadReason(): string {
    const d = this.policy.dropOverload;
    const share = d === undefined ? '' : ` ${d.perMillion / 10_000}% of`;
    return `drop overload: cluster ${JSON.stringify(this.config.name)} drops${share} requests (drop_overloads category ${JSON.stringify(d?.category ?? '')})`;
  }

  /** EDS: whether a ClusterLoadAssignment has arrived (a warming cluster waits for one). */
  get hasAssignment(): boolean {
    return this.assigned;
  }

  chooseHost(ctx: HostSelection): Host | undefined {
    return this.originalDst ? this.originalDst.choose(ctx) : this.lb.chooseHost(ctx);
  }

  /**
   * The pool for `host`; `downstream` is the request's protocol, which use_downstream_protocol_config follows.
   * `alpn` (istio.alpn's choice for the request) applies to a host connecting over TLS, and has pools of its own.
   */
  pool(host: Host, downstream: DownstreamProtocol, alpn?: AlpnOverride): ConnectionPool {
    const h2 = this.speaksHttp2(downstream);
    const pools = h2 ? this.h2Pools : this.pools;
    const tls = host.tls;
    const override = tls === undefined ? undefined : alpn;
    let p = pools.get(host, override);
    if (!p) {
      const protocols = override?.protocols;
      p = h2
        ? new Http2Pool(host, this.config, this.stats, this.h2Stats, this.breaker, tls, protocols)
        : new Http1Pool(host, this.config, this.stats, this.breaker, tls, protocols);
      pools.set(host, override, p);
      // A cluster replaced or removed by CDS still serves its requests in flight (a retry may need a new pool):
      // such a pool takes no new keep-alive connections and is destroyed with the cluster.
      if (this.closed) void p.close();
    }
    return p;
  }

  /** Whether a request that arrived over `downstream` goes to the hosts over HTTP/2. */
  speaksHttp2(downstream: DownstreamProtocol): boolean {
    const mode = this.config.upstreamProtocol;
    return mode === 'HTTP2' || (mode === 'DOWNSTREAM' && downstream === 'HTTP/2');
  }

  allHosts(): readonly Host[] {
    return this.originalDst ? this.originalDst.all() : this.hosts;
  }

  /** An ORIGINAL_DST host was added, or unused ones swept: their pools go with them. */
  private originalDstChanged(removed: readonly Host[]): void {
    for (const gone of removed) this.dropPools(gone);
    this.stats.membership_total.set(this.originalDst!.all().length);
    this.stats.membership_healthy.set(this.originalDst!.all().length);
  }

  /** Idle connections close now, busy ones once their requests end; the next request gets a new pool. */
  private dropPools(host: Host): void {
    for (const pools of [this.pools, this.h2Pools]) {
      for (const p of pools.take(host)) void p.close();
    }
  }

  /**
   * Swaps in a new host set; hosts that stay keep their pools and counters. A host whose metadata changes takes the
   * transport socket the new metadata selects; when that is another one, its pools are dropped, so no request goes
   * on a connection of the old socket.
   */
  private setHosts(specs: readonly HostSpec[]): void {
    const old = new Map(this.hosts.map((h) => [`${h.key}/${h.priority}`, h]));
    const next: Host[] = [];
    for (const s of specs) {
      const id = `${s.address.includes(':') ? `[${s.address}]` : s.address}:${s.port}/${s.priority}`;
      const existing = old.get(id);
      const host =
        existing && existing.weight === s.weight
          ? existing
          : new Host(s.address, s.port, s.weight, s.priority, s.hostname);
      if (host === existing) old.delete(id);
      host.healthy = s.health === 'HEALTHY';
      host.degraded = s.health === 'DEGRADED';
      if (host !== existing || !sameMetadata(host, s)) {
        host.metadata = s.metadata;
        host.localityMetadata = s.localityMetadata;
        const tls = this.transportSockets.resolve(s.metadata, s.localityMetadata);
        if (host === existing && tls !== host.tls) this.dropPools(host);
        host.tls = tls;
      }
      next.push(host);
    }
    for (const gone of old.values()) this.dropPools(gone);
    this.hosts = next;
    const levels: Host[][] = [];
    for (const h of next) {
      const level = levels[h.priority] ?? [];
      levels[h.priority] = level;
      level.push(h);
    }
    for (let i = 0; i < levels.length; i++) levels[i] ??= [];
    this.lb = createLoadBalancer<Host>(levels, this.config, Math.random, {
      policy: this.policy,
      onPanicPick: this.countPanic,
    });
    this.stats.membership_total.set(next.length);
    this.stats.membership_healthy.set(next.filter((h) => h.healthy).length);
    this.stats.membership_degraded.set(next.filter((h) => h.degraded).length);
    this.stats.max_host_weight.set(next.reduce((m, h) => Math.max(m, h.weight), 0));
  }

  private async refreshDns(): Promise<void> {
    if (this.closed) return;
    this.stats.update_attempt.inc();
    const specs: HostSpec[] = [];
    let failed = false;
    for (const loc of this.config.localities) {
      for (const ep of loc.endpoints) {
        try {
          const addrs = await resolveName(ep.address.address, this.config.dnsLookupFamily, this.lookup);
          for (const a of addrs) {
            specs.push({
              address: a,
              port: ep.address.port,
              weight: ep.weight,
              priority: loc.priority,
              hostname: ep.hostname ?? ep.address.address,
              health: ep.health,
              metadata: ep.metadata,
              localityMetadata: loc.metadata,
            });
          }
        } catch {
          failed = true;
        }
      }
    }
    if (this.closed) return;
    if (failed) {
      this.stats.update_failure.inc();
      // Envoy keeps the last good hosts of a name that fails to resolve; with none yet, take what resolved.
      if (this.hosts.length === 0) this.setHosts(specs);
    } else {
      this.stats.update_success.inc();
      if (specs.length === 0) this.stats.update_empty.inc();
      this.setHosts(specs);
    }
    this.dnsTimer = setTimeout(() => void this.refreshDns(), this.config.dnsRefreshRateMs);
    this.dnsTimer.unref();
  }

  /**
   * Replaced or removed by CDS: no new host sets, idle connections close now, busy ones when their exchange
   * ends. The pools are kept for `destroy()`, which ends whatever is still open.
   */
  drain(): void {
    this.closed = true;
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    this.originalDst?.close();
    for (const p of [...this.pools.all(), ...this.h2Pools.all()]) void p.close();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    this.originalDst?.close();
    this.transportSockets.close();
    await Promise.all([...this.pools.all(), ...this.h2Pools.all()].map((p) => p.close()));
    this.pools.clear();
    this.h2Pools.clear();
  }

  async destroy(): Promise<void> {
    this.closed = true;
    if (this.dnsTimer) clearTimeout(this.dnsTimer);
    this.originalDst?.close();
    this.transportSockets.close();
    await Promise.all([...this.pools.all(), ...this.h2Pools.all()].map((p) => p.destroy()));
    this.pools.clear();
    this.h2Pools.clear();
  }
}

function specsOf(localities: readonly LocalityEndpointsConfig[]): HostSpec[] {
  const out: HostSpec[] = [];
  for (const loc of localities) {
    for (const ep of loc.endpoints) {
      out.push({
        address: ep.address.address,
        port: ep.address.port,
        weight: ep.weight,
        priority: loc.priority,
        hostname: ep.hostname,
        health: ep.health,
        metadata: ep.metadata,
        localityMetadata: loc.metadata,
      });
    }
  }
  return out;
}

function sameMetadata(host: Host, s: HostSpec): boolean {
  return jsonEqual(host.metadata, s.metadata) && jsonEqual(host.localityMetadata, s.localityMetadata);
}

function dropFractionOf(policy: LoadAssignmentPolicy): number {
  return (policy.dropOverload?.perMillion ?? 0) / MILLION;
}

// The sidecar driven by xDS: connects the ADS client to the running proxy (clusters, endpoints, listeners,
// routes, secrets), keeps the last good config on disk, and tells when the first config has been applied.

import type {
  Bootstrap,
  ClusterConfig,
  ClusterLoadAssignmentConfig,
  ListenerConfig,
  RouteConfig,
} from '../../config/model.js';
import type { NodeJson } from '../../xds/protos.js';
import type { ListenerManager } from '../listener/listener_manager.js';
import type { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import type { RouteConfigs } from '../router/route_configs.js';
import type { SecretReadiness } from '../tls/reloading_context.js';
import type { TlsSecret } from '../tls/secret.js';
import type { SecretManager } from '../tls/secret_manager.js';
import type { ClusterManager } from '../upstream/cluster_manager.js';
import { hostKey } from '../upstream/host.js';
import { AdsClient, type AdsTarget } from './ads_client.js';
import { cacheDirFor, XdsDiskCache } from './disk_cache.js';
import { CDS, EDS, LDS, RDS, RESOURCE_TYPES, SDS, type XdsResourceType } from './resource_types.js';
import type { HeldResource, ResourceFailure, TypeChanges, TypeState } from './type_state.js';

export interface DynamicConfigDeps {
  readonly bootstrap: Bootstrap;
  readonly clusters: ClusterManager;
  readonly listeners: ListenerManager;
  readonly routes: RouteConfigs;
  /** SDS feeds its secrets; the TLS contexts subscribing to them say which names to ask for. */
  readonly secrets: SecretManager;
  readonly store: StatsStore;
  readonly logger: Logger;
  /** The base directory of the disk cache (a directory per node id below it); undefined: no cache. */
  readonly cacheBase: string | undefined;
  /** The first config (from the control plane or the cache) is applied and warm. */
  readonly onInitialized: () => void;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
}

/** One dynamic resource as /config_dump shows it. */
export interface DumpedResource {
  readonly name: string;
  readonly version: string;
  readonly json: Record<string, unknown>;
  readonly lastUpdated: Date;
  readonly warming: boolean;
}

export interface DumpedType {
  /** The version_info last accepted. */
  readonly version: string;
  readonly resources: readonly DumpedResource[];
  /** Versions refused (NACKed) of resources, by name: Envoy's error_state. */
  readonly failures: ReadonlyMap<string, ResourceFailure>;
  /** Names subscribed to that have not arrived (SDS: Envoy's dynamic_warming_secrets). */
  readonly waiting?: readonly string[];
}

/** The dynamic part of /config_dump, by type short name (CDS, EDS, LDS, RDS, SDS). */
export type DynamicDump = Readonly<Record<'CDS' | 'EDS' | 'LDS' | 'RDS' | 'SDS', DumpedType>>;

export class DynamicConfig {
  readonly client: AdsClient;
  private readonly cache: XdsDiskCache | undefined;
  private readonly cancels: (() => void)[] = [];
  private initialized = false;
  private checkingInit = false;
  private closed = false;

  constructor(private readonly deps: DynamicConfigDeps) {
    const dr = deps.bootstrap.dynamicResources;
    const ads = dr?.ads;
    if (ads === undefined) throw new Error('dynamic_resources.ads_config is required for xDS');
    const node = nodeJson(deps.bootstrap);
    this.cache =
      deps.cacheBase === undefined
        ? undefined
        : new XdsDiskCache(cacheDirFor(deps.cacheBase, node.id ?? ''), node.id ?? '', deps.logger);
    const wildcards = [...(dr?.cds ? [CDS] : []), ...(dr?.lds ? [LDS] : [])];
    this.client = new AdsClient({
      targets: adsTargets(deps.bootstrap, deps.clusters),
      node,
      delta: ads.apiType === 'DELTA_GRPC',
      wildcards,
      apply: (changes) => this.apply(changes),
      onProcessed: (state) => this.processed(state),
      logger: deps.logger,
      store: deps.store,
      backoff: deps.backoff,
    });
    const sds = deps.secrets.sds;
    this.cancels.push(
      deps.clusters.onChange(() => void this.client.setNames(EDS, deps.clusters.edsServiceNames())),
      deps.routes.onNamesChanged(() => void this.client.setNames(RDS, deps.routes.watchedNames())),
      sds.onNamesChanged(() => void this.client.setNames(SDS, sds.names())),
    );
  }

  /** Where the cache of this node is, when there is one. */
  get cacheDir(): string | undefined {
    return this.cache?.dir;
  }

  /**
   * Applies what the disk cache holds (CDS, EDS, LDS, RDS in turn, so nothing refers to what is not there yet),
   * then opens the stream to the control plane.
   */
  async start(): Promise<void> {
    // Names the static listeners' RDS connection managers already watch, and the secrets static contexts take.
    void this.client.setNames(RDS, this.deps.routes.watchedNames());
    void this.client.setNames(SDS, this.deps.secrets.sds.names());
    if (this.cache !== undefined) {
      let loaded = 0;
      for (const type of RESOURCE_TYPES) {
        if (!this.client.state(type).wildcard && type.fullState) continue;
        const cached = await this.cache.load(type);
        if (cached === undefined || this.closed) continue;
        await this.client.loadCached(type, cached.version, cached.resources);
        loaded++;
      }
      if (loaded > 0) this.deps.logger.info('applied the xDS config cached on disk', { dir: this.cache.dir });
    }
    if (!this.closed) this.client.start();
    this.checkInit();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.cancels.splice(0)) c();
    await this.client.close();
    await this.cache?.flush();
  }

  /** The dynamic resources, for /config_dump. */
  dump(): DynamicDump {
    const of = (type: XdsResourceType, warming: (name: string) => boolean): DumpedType => {
      const state = this.client.state(type);
      return {
        version: state.versionInfo,
        resources: [...state.held.values()].map((r) => ({
          name: r.name,
          version: r.version,
          json: r.json,
          lastUpdated: r.lastUpdated,
          warming: warming(r.name),
        })),
        failures: state.failures,
      };
    };
    const never = () => false;
    const sds = this.client.state(SDS);
    return {
      CDS: of(CDS, (n) => this.deps.clusters.isWarming(n)),
      EDS: of(EDS, never),
      LDS: of(LDS, (n) => this.deps.listeners.isWarming(n)),
      RDS: of(RDS, never),
      SDS: { ...of(SDS, never), waiting: [...sds.names].filter((n) => !sds.held.has(n)).sort() },
    };
  }

  /** Applies one type's changes in the order that drops nothing. */
  private async apply(changes: TypeChanges): Promise<ReadonlyMap<string, string>> {
    const refused = new Map<string, string>();
    const { clusters, listeners, routes } = this.deps;
    switch (changes.type) {
      case CDS:
        // New and changed clusters first; stale ones go last, once nothing new can need them.
        for (const r of changes.upserted) {
          const why = clusters.upsert(r.value as ClusterConfig);
          if (why !== undefined) refused.set(r.name, why);
        }
        for (const name of changes.removed) clusters.remove(name);
        break;
      case EDS:
        for (const r of changes.upserted)
          clusters.setAssignment(r.name, r.value as ClusterLoadAssignmentConfig);
        // An assignment sent again unchanged still counts as received for endpoint_stale_after.
        for (const r of changes.resent)
          clusters.assignmentResent(r.name, r.value as ClusterLoadAssignmentConfig);
        for (const name of changes.removed) clusters.deleteAssignment(name);
        break;
      case LDS:
        // Removed listeners first: a new one may take over their address.
        for (const name of changes.removed) listeners.remove(name);
        for (const r of changes.upserted) {
          const why = await listeners.upsert(r.value as ListenerConfig);
          if (why !== undefined) refused.set(r.name, why);
        }
        break;
      case RDS:
        for (const r of changes.upserted) routes.set(r.name, r.value as RouteConfig);
        for (const name of changes.removed) routes.delete(name);
        break;
      case SDS:
        // A version a context cannot use is refused (NACK): every context keeps the version it has.
        for (const r of changes.upserted) {
          const why = this.deps.secrets.sds.update(r.value as TlsSecret);
          if (why !== undefined) refused.set(r.name, why);
        }
        for (const name of changes.removed) this.deps.secrets.sds.remove(name);
        break;
    }
    return refused;
  }

  private processed(state: TypeState): void {
    if (this.cache !== undefined && state.received) {
      const held: HeldResource[] = [...state.held.values()];
      this.cache.save(
        state.type,
        state.versionInfo,
        held.map((r) => r.any),
      );
    }
    this.checkInit();
  }

  private staticSecretsSettled(): Promise<void> {
    const { listeners, clusters } = this.deps;
    return settled([
      ...listeners
        .listeners()
        .filter((l) => listeners.isStatic(l.config.name))
        .flatMap((l) => l.allChains.map((c) => c.tls?.readiness)),
      ...[...clusters.all()]
        .filter((c) => clusters.isStatic(c.config.name))
        .flatMap((c) => c.transportSockets.contexts().map((t) => t.readiness)),
    ]);
  }

  /** Initialized once every wildcard type has its first state and nothing is warming. */
  private checkInit(): void {
    if (this.initialized || this.checkingInit || this.closed) return;
    for (const type of [CDS, LDS]) {
      const s = this.client.state(type);
      if (s.wildcard && !s.received) return;
    }
    this.checkingInit = true;
    void Promise.all([
      this.deps.clusters.whenWarm(),
      this.deps.listeners.whenWarm(),
      this.staticSecretsSettled(),
    ]).then(() => {
      this.checkingInit = false;
      if (this.initialized || this.closed) return;
      this.initialized = true;
      this.deps.onInitialized();
    });
  }
}

/**
 * Resolves once the TLS contexts of the bootstrap's own listeners and clusters have their SDS secrets, or their
 * initial fetch timeouts have passed: as Envoy's init manager, the proxy is not LIVE before.
 */
function settled(contexts: readonly (SecretReadiness | undefined)[]): Promise<void> {
  const waits = contexts.flatMap((t) => {
    if (t === undefined || t.ready) return [];
    const ms = t.initialFetchTimeoutMs;
    if (ms === 0) return [t.whenReady()];
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });
    return [Promise.race([t.whenReady(), bound]).finally(() => clearTimeout(timer))];
  });
  return Promise.all(waits).then(() => undefined);
}

/** The node as the first request of each stream carries it. */
export function nodeJson(b: Bootstrap): NodeJson {
  return {
    id: b.node.id,
    cluster: b.node.cluster,
    metadata: { ...b.node.metadata },
    user_agent_name: 'remora',
  };
}

/**
 * The gRPC targets of ads_config, in order: each endpoint of an envoy_grpc cluster (two endpoints, two
 * control-plane replicas to fail over between), with that cluster's TLS when it has a transport_socket; or a
 * google_grpc target URI as written (plaintext).
 */
export function adsTargets(b: Bootstrap, clusters: Pick<ClusterManager, 'get'>): AdsTarget[] {
  const out: AdsTarget[] = [];
  for (const s of b.dynamicResources?.ads?.servers ?? []) {
    if (s.kind === 'google_grpc') {
      out.push({ uri: s.targetUri });
      continue;
    }
    const c = b.clusters.find((x) => x.name === s.clusterName);
    const sockets = clusters.get(s.clusterName)?.transportSockets;
    for (const loc of c?.localities ?? [])
      for (const ep of loc.endpoints) {
        const tls = sockets?.peek(ep.metadata, loc.metadata);
        out.push({ uri: hostKey(ep.address.address, ep.address.port), ...(tls !== undefined && { tls }) });
      }
  }
  return out;
}

// Assembles a running sidecar from a validated bootstrap — listeners, filter chains, clusters, admin — and runs its lifecycle.

import type { Bootstrap, FilterChainConfig, ListenerConfig } from '../config/model.js';
import { formatErrors } from '../config/result.js';
import { AdminServer } from './admin/server.js';
import type { AdminTarget, ClusterStatus, ListenerStatus, ServerState } from './admin/target.js';
import { originalDestinationSupport } from './capture/original_destination.js';
import { ConnectionManager } from './http/connection_manager.js';
import { WORKLOAD_SECRET_NAMES } from './identity/secret_names.js';
import type { WorkloadIdentityConfig, WorkloadIdentitySource } from './identity/workload_identity.js';
import { withNetworkFilters } from './istio_stats/network_filter.js';
import type { IstioStatsEnv } from './istio_stats/workload.js';
import { type BoundChain, type Listener, type NetworkFilter, statAddress } from './listener/listener.js';
import { type BuiltChains, ListenerManager } from './listener/listener_manager.js';
import { MemoryRelease, type MemoryReleaseOptions } from './memory_release.js';
import { addonFunction } from './native/addon.js';
import { TcpProxy } from './network/tcp_proxy.js';
import { Logger } from './observe/log.js';
import { declareStats, type StatsOf, StatsStore, scopes } from './observe/stats.js';
import { RouteConfigs } from './router/route_configs.js';
import { DownstreamTls } from './tls/downstream.js';
import { checkTlsMaterial } from './tls/material.js';
import type { ContextCertificates } from './tls/reloading_context.js';
import { type LocalSecrets, SecretManager } from './tls/secret_manager.js';
import { ClusterManager } from './upstream/cluster_manager.js';
import type { Lookup } from './upstream/dns.js';
import type { DynamicConfig, DynamicDump } from './xds/dynamic_config.js';

export const SERVER_STATS = declareStats({
  counters: [
    'server.envoy_bug_failures',
    'server.debug_assertion_failures',
    'server.memory_release_total',
  ] as const,
  gauges: [
    'server.live',
    'server.state',
    'server.uptime',
    'server.memory_allocated',
    'server.memory_heap_size',
    'server.memory_physical_size',
    'server.total_connections',
    'server.concurrency',
    'server.days_until_first_cert_expiring',
  ] as const,
  histograms: ['server.initialization_time_ms'] as const,
});

export interface ProxyOptions {
  /** How long a graceful shutdown waits for in-flight requests (--drain-time-s). */
  readonly drainTimeMs: number;
  readonly logger?: Logger;
  readonly rawBootstrap?: unknown;
  /** DNS lookup for STRICT_DNS clusters (tests inject one). */
  readonly lookup?: Lookup;
  /** Longest wait for clusters' first DNS answers before going LIVE. */
  readonly initTimeoutMs?: number;
  /**
   * xDS: the base directory of the last good config cached on disk (a directory per node id below it);
   * undefined: no cache.
   */
  readonly xdsCacheDir?: string;
  /** xDS: the reconnection back-off (tests shorten it). */
  readonly xdsBackoff?: { readonly baseMs: number; readonly maxMs: number };
  /** Secrets the sidecar supplies itself under their names (its workload identity: `default`, `ROOTCA`). */
  readonly localSecrets?: LocalSecrets;
  /**
   * The sidecar's own certificate from the control plane's CA, served as `default` and `ROOTCA` (in place of
   * `localSecrets`); the proxy is not LIVE before it has one.
   */
  readonly workloadIdentity?: WorkloadIdentityConfig;
  /** Give memory back to the system when LIVE and when idle (`remora proxy` does; tests in one process do not). */
  readonly memoryRelease?: MemoryReleaseOptions;
}

const STATE_CODE: Record<ServerState, number> = {
  LIVE: 0,
  DRAINING: 1,
  PRE_INITIALIZING: 2,
  INITIALIZING: 3,
};

export class ProxyServer implements AdminTarget {
  readonly stats = new StatsStore();
  readonly startTime = Date.now();
  readonly logger: Logger;
  readonly clusterManager: ClusterManager;
  readonly listenerManager: ListenerManager;
  /** RDS route tables, for connection managers whose HCM names one. */
  readonly routeConfigs = new RouteConfigs();
  /** Where TLS contexts get the secrets they name: static ones, SDS, a local provider. */
  readonly secrets: SecretManager;
  /** The workload certificate, with `--ca-address`. */
  readonly identity: WorkloadIdentitySource | undefined;
  /** The ADS side, when the bootstrap has dynamic_resources. */
  private dynamic: DynamicConfig | undefined;
  private admin: AdminServer | undefined;
  private currentState: ServerState = 'PRE_INITIALIZING';
  private hcFailed = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly serverStats: StatsOf<typeof SERVER_STATS>;
  private readonly gaugeTimer: NodeJS.Timeout;
  private memoryRelease: MemoryRelease | undefined;
  private exitResolve!: () => void;
  /** Resolves once a shutdown (SIGTERM, /quitquitquit, close()) has finished. */
  readonly exited = new Promise<void>((r) => {
    this.exitResolve = r;
  });
  private liveResolve!: () => void;
  /** Resolves when the proxy goes LIVE: at start, or with xDS once its first config (or the cached one) is applied. */
  readonly live = new Promise<void>((r) => {
    this.liveResolve = r;
  });

  private constructor(
    private readonly config: Bootstrap,
    private readonly opts: ProxyOptions,
    Identity: typeof WorkloadIdentitySource | undefined,
  ) {
    this.logger = opts.logger ?? new Logger();
    this.serverStats = this.stats.scope(undefined, SERVER_STATS);
    this.identity =
      opts.workloadIdentity &&
      Identity &&
      new Identity(opts.workloadIdentity, { logger: this.logger, store: this.stats });
    const local = this.identity
      ? { names: WORKLOAD_SECRET_NAMES, provider: this.identity }
      : opts.localSecrets;
    this.secrets = new SecretManager(config.secrets ?? [], { logger: this.logger, local });
    this.clusterManager = new ClusterManager(config.clusters, this.stats, {
      lookup: opts.lookup,
      logger: this.logger,
      retireAfterMs: opts.drainTimeMs,
      secrets: this.secrets,
    });
    this.listenerManager = new ListenerManager({
      store: this.stats,
      build: (l) => this.buildChains(l),
      routeConfigs: this.routeConfigs,
      clusters: this.clusterManager,
      drainTimeMs: opts.drainTimeMs,
      logger: this.logger,
    });
    for (const l of config.listeners) this.listenerManager.addStatic(l);
    this.gaugeTimer = setInterval(() => this.updateServerGauges(), 1000);
    this.gaugeTimer.unref();
  }

  /** Builds, binds and starts everything; the proxy is LIVE when this resolves. */
  static async start(config: Bootstrap, opts: ProxyOptions): Promise<ProxyServer> {
    // Certificate files are checked before anything is built, as Envoy refuses to load a context it cannot read.
    const tlsErrors = checkTlsMaterial(config);
    if (tlsErrors.length > 0) throw new Error(`TLS files cannot be used:\n${formatErrors(tlsErrors)}`);
    checkCaptureSupport(config);
    // The CA client (gRPC, X.509) and the ADS client are loaded only by a proxy that uses them: a static bootstrap
    // keeps them out of its memory.
    const Identity =
      opts.workloadIdentity && (await import('./identity/workload_identity.js')).WorkloadIdentitySource;
    const p = new ProxyServer(config, opts, Identity);
    try {
      p.currentState = 'INITIALIZING';
      p.admin = await AdminServer.start(config.admin.address, p, {
        accessLogPath: config.admin.accessLogPath,
      });
      p.identity?.start();
      await p.clusterManager.ready(opts.initTimeoutMs ?? 10_000);
      await p.listenerManager.startStatic();
      if (config.dynamicResources?.ads !== undefined) {
        // LIVE (and /ready 200) once the first config — from the control plane or the disk cache — is applied.
        const { DynamicConfig } = await import('./xds/dynamic_config.js');
        p.dynamic = new DynamicConfig({
          bootstrap: config,
          clusters: p.clusterManager,
          listeners: p.listenerManager,
          routes: p.routeConfigs,
          secrets: p.secrets,
          store: p.stats,
          logger: p.logger,
          cacheBase: opts.xdsCacheDir,
          backoff: opts.xdsBackoff,
          onInitialized: () => p.goLiveWithIdentity(),
        });
        await p.dynamic.start();
      } else p.goLiveWithIdentity();
      return p;
    } catch (err) {
      await p.close();
      throw err;
    }
  }

  /** LIVE once the workload certificate (if any) is in place too. */
  private goLiveWithIdentity(): void {
    if (this.identity === undefined) this.goLive();
    else void this.identity.ready.then(() => this.goLive());
  }

  private goLive(): void {
    if (this.currentState !== 'INITIALIZING') return;
    this.currentState = 'LIVE';
    this.startMemoryRelease();
    this.updateServerGauges();
    this.logger.info('remora is live', {
      admin: this.admin && `${this.admin.address.address}:${this.admin.address.port}`,
      listeners: this.activeListeners.map((l) => `${l.config.name}=${l.address.address}:${l.address.port}`),
    });
    this.liveResolve();
  }

  /** With the addon's release: now (start-up is over), then whenever the proxy is idle after its memory grew. */
  private startMemoryRelease(): void {
    if (this.opts.memoryRelease === undefined) return;
    const release = addonFunction('releaseMemory');
    if (typeof release === 'string') {
      this.logger.debug('memory is left to V8 alone', { reason: release });
      return;
    }
    this.memoryRelease = new MemoryRelease(release, this.opts.memoryRelease, (r) => {
      this.serverStats['server.memory_release_total'].inc();
      this.logger.debug('memory released', {
        rss_before_mib: +(r.rssBefore / 1048576).toFixed(1),
        rss_after_mib: +(r.rssAfter / 1048576).toFixed(1),
        ms: +r.ms.toFixed(1),
      });
    });
    this.memoryRelease.releaseNow();
  }

  /**
   * The stack of one listener version: each filter chain ends in an HTTP connection manager or a TCP proxy.
   * Throws (having closed what it built) when the chains cannot be built, e.g. unreadable certificate files.
   */
  private buildChains(l: ListenerConfig): BuiltChains {
    if (l.originalDst) {
      const support = originalDestinationSupport();
      if (!support.ok)
        throw new Error(
          `listener ${JSON.stringify(l.name)} uses original_dst, which cannot work here: ${support.reason}`,
        );
    }
    // TLS stats live under the listener's scope, which names the port it is bound to (known once started).
    const scope = () =>
      scopes.listener(
        statAddress(l.address.address, this.listenerManager.get(l.name)?.address.port ?? l.address.port),
      );
    const built: BoundChain[] = [];
    const bind = (fc: FilterChainConfig): BoundChain => {
      const filter = this.buildFilter(fc, l);
      let tls: DownstreamTls | undefined;
      try {
        tls =
          fc.tls &&
          new DownstreamTls(fc.tls, {
            store: this.stats,
            scope,
            logger: this.logger,
            name: `listener ${JSON.stringify(l.name)} filter chain ${JSON.stringify(fc.name)}`,
            secrets: this.secrets,
          });
      } catch (err) {
        void filter.close();
        throw err;
      }
      const chain = { name: fc.name, match: fc.match, filter, tls };
      built.push(chain);
      return chain;
    };
    try {
      const chains = l.filterChains.map(bind);
      const defaultChain = l.defaultFilterChain && bind(l.defaultFilterChain);
      return { chains, defaultChain };
    } catch (err) {
      for (const c of built) {
        void c.filter.close();
        c.tls?.close();
      }
      throw err;
    }
  }

  /** The chain's network filters: its RBAC and istio.stats filters in order, then the terminal one. */
  private buildFilter(fc: FilterChainConfig, l: ListenerConfig): NetworkFilter {
    return withNetworkFilters(this.buildTerminalFilter(fc, l), fc, this.istioEnv(l), this.logger);
  }

  /** What istio.stats filters of `l` need: the node they report for and the listener's direction. */
  private istioEnv(l: ListenerConfig): IstioStatsEnv {
    return { store: this.stats, node: this.config.node, trafficDirection: l.trafficDirection };
  }

  private buildTerminalFilter(fc: FilterChainConfig, l: ListenerConfig): NetworkFilter {
    const f = fc.filter;
    switch (f.kind) {
      case 'http_connection_manager':
        return new ConnectionManager(f.hcm, {
          clusters: this.clusterManager,
          routeConfigs: this.routeConfigs,
          store: this.stats,
          retryBufferLimit: l.perConnectionBufferLimitBytes,
          logger: this.logger,
          istio: this.istioEnv(l),
        });
      case 'tcp_proxy':
        return new TcpProxy(f.tcpProxy, this.clusterManager, this.stats, fc.istioStats !== undefined);
    }
  }

  get adminAddress(): { address: string; port: number } | undefined {
    return this.admin?.address;
  }

  /** The listeners taking connections, static ones first. */
  get activeListeners(): Listener[] {
    return this.listenerManager.listeners();
  }

  listenerAddress(name: string): { address: string; port: number } | undefined {
    return this.listenerManager.get(name)?.address;
  }

  // ---- AdminTarget

  state(): ServerState {
    return this.currentState;
  }
  bootstrap(): Bootstrap {
    return this.config;
  }
  rawBootstrap(): unknown {
    return this.opts.rawBootstrap ?? {};
  }
  dynamicResources(): DynamicDump | undefined {
    return this.dynamic?.dump();
  }
  certificates(): readonly ContextCertificates[] {
    return this.secrets.certificates();
  }
  clusters(): readonly ClusterStatus[] {
    const out: ClusterStatus[] = [];
    for (const c of this.clusterManager.all()) {
      out.push({
        name: c.config.name,
        type: c.config.type,
        lbPolicy: c.config.lbPolicy,
        circuitBreakers: c.config.circuitBreakers,
        hosts: c.allHosts().map((h) => ({
          address: h.key,
          weight: h.weight,
          priority: h.priority,
          // Remora has no active health checking: a host is unhealthy because its control plane said so.
          healthFlags: h.healthy ? 'healthy' : h.degraded ? '/degraded_eds_health' : '/failed_eds_health',
          healthy: h.healthy,
          activeRequests: h.activeRequests,
          activeConnections: h.counters.cxActive,
          totalRequests: h.counters.rqTotal,
          errorRequests: h.counters.rqError,
          successRequests: h.counters.rqSuccess,
          connectFailures: h.counters.cxConnectFail,
        })),
      });
    }
    return out;
  }

  listeners(): readonly ListenerStatus[] {
    return this.activeListeners.map((l) => ({
      name: l.config.name,
      address: `${l.address.address}:${l.address.port}`,
    }));
  }

  drainListeners(opts: { graceful: boolean; inboundOnly: boolean }): void {
    // Drained listeners stay drained: LDS no longer adds or changes any.
    if (!opts.inboundOnly) this.listenerManager.freeze();
    for (const l of this.activeListeners) {
      if (opts.inboundOnly && !isInbound(l)) continue;
      l.stopAccepting();
      l.drainFilters();
    }
    if (!opts.inboundOnly) this.currentState = 'DRAINING';
  }

  setHealthcheckFailed(failed: boolean): void {
    this.hcFailed = failed;
  }
  healthcheckFailed(): boolean {
    return this.hcFailed;
  }
  setLogLevel(level: string): boolean {
    return this.logger.setLevel(level);
  }
  logLevel(): string {
    return this.logger.level;
  }
  quit(): void {
    void this.shutdown();
  }

  // ---- lifecycle

  /**
   * Graceful shutdown: stop accepting, let in-flight requests finish (responses carry connection: close),
   * then close everything — at the latest after the drain time.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= (async () => {
      this.logger.info('draining', { drain_time_ms: this.opts.drainTimeMs });
      this.drainListeners({ graceful: true, inboundOnly: false });
      const idle = Promise.all(this.activeListeners.map((l) => l.whenIdle()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => {
        timer = setTimeout(r, this.opts.drainTimeMs);
      });
      await Promise.race([idle, deadline]);
      clearTimeout(timer);
      await this.close();
    })();
    return this.shutdownPromise;
  }

  /** Closes everything now: listeners, connections, pools, admin. */
  async close(): Promise<void> {
    clearInterval(this.gaugeTimer);
    this.memoryRelease?.close();
    await this.dynamic?.close();
    await this.listenerManager.close();
    await this.clusterManager.destroy();
    this.secrets.close();
    await this.admin?.close();
    this.exitResolve();
  }

  private updateServerGauges(): void {
    const s = this.serverStats;
    const mem = process.memoryUsage();
    s['server.live'].set(this.currentState === 'LIVE' ? 1 : 0);
    s['server.state'].set(STATE_CODE[this.currentState]);
    s['server.uptime'].set(Math.floor((Date.now() - this.startTime) / 1000));
    s['server.memory_allocated'].set(mem.heapUsed);
    s['server.memory_heap_size'].set(mem.heapTotal);
    s['server.memory_physical_size'].set(mem.rss);
    s['server.concurrency'].set(1);
    s['server.total_connections'].set(this.activeListeners.reduce((n, l) => n + l.openConnections, 0));
    const days = this.secrets.daysUntilFirstCertExpiring();
    if (days !== undefined) s['server.days_until_first_cert_expiring'].set(days);
  }
}

/** Listeners that restore original destinations need the native addon: without it they could only misroute. */
function checkCaptureSupport(config: Bootstrap): void {
  const needs = config.listeners.filter((l) => l.originalDst);
  if (needs.length === 0) return;
  const support = originalDestinationSupport();
  if (!support.ok) {
    const names = needs.map((l) => JSON.stringify(l.name)).join(', ');
    throw new Error(
      `listener ${names} uses original_dst / use_original_dst (transparent capture), which cannot work here: ${support.reason}`,
    );
  }
}

/** Istio's convention: the inbound listener is named "virtualInbound" or bound on 15006. */
function isInbound(l: Listener): boolean {
  return (
    l.config.name === 'virtualInbound' ||
    l.config.name.startsWith('inbound') ||
    l.config.address.port === 15006
  );
}

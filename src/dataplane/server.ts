// Assembles a running sidecar from a validated bootstrap — listeners, filter chains, clusters, admin — and runs its lifecycle.

import type { Bootstrap, FilterChainConfig, ListenerConfig } from '../config/model.js';
import { formatErrors } from '../config/result.js';
import { AdminServer } from './admin/server.js';
import type { AdminTarget, ClusterStatus, ListenerStatus, ServerState } from './admin/target.js';
import { originalDestinationSupport } from './capture/original_destination.js';
import { ConnectionManager } from './http/connection_manager.js';
import {
  type BoundChain,
  Listener,
  type ListenerLookup,
  type NetworkFilter,
  statAddress,
} from './listener/listener.js';
import { TcpProxy } from './network/tcp_proxy.js';
import { Logger } from './observe/log.js';
import { declareStats, type StatsOf, StatsStore, scopes } from './observe/stats.js';
import { DownstreamTls } from './tls/downstream.js';
import { checkTlsMaterial } from './tls/material.js';
import { ClusterManager } from './upstream/cluster_manager.js';
import type { Lookup } from './upstream/dns.js';
import { hostKey } from './upstream/host.js';

export const SERVER_STATS = declareStats({
  counters: ['server.envoy_bug_failures', 'server.debug_assertion_failures'] as const,
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
  readonly activeListeners: Listener[] = [];
  private admin: AdminServer | undefined;
  private currentState: ServerState = 'PRE_INITIALIZING';
  private hcFailed = false;
  private shutdownPromise: Promise<void> | undefined;
  private readonly serverStats: StatsOf<typeof SERVER_STATS>;
  private readonly gaugeTimer: NodeJS.Timeout;
  private exitResolve!: () => void;
  /** Resolves once a shutdown (SIGTERM, /quitquitquit, close()) has finished. */
  readonly exited = new Promise<void>((r) => {
    this.exitResolve = r;
  });

  private constructor(
    private readonly config: Bootstrap,
    private readonly opts: ProxyOptions,
  ) {
    this.logger = opts.logger ?? new Logger();
    this.serverStats = this.stats.scope(undefined, SERVER_STATS);
    this.clusterManager = new ClusterManager(config.clusters, this.stats, opts.lookup, this.logger);
    for (const l of config.listeners) this.activeListeners.push(this.buildListener(l));
    const lookup = listenerLookup(this.activeListeners);
    for (const l of this.activeListeners) if (l.config.useOriginalDst) l.setListenerLookup(lookup);
    this.gaugeTimer = setInterval(() => this.updateServerGauges(), 1000);
    this.gaugeTimer.unref();
  }

  /** Builds, binds and starts everything; the proxy is LIVE when this resolves. */
  static async start(config: Bootstrap, opts: ProxyOptions): Promise<ProxyServer> {
    // Certificate files are checked before anything is built, as Envoy refuses to load a context it cannot read.
    const tlsErrors = checkTlsMaterial(config);
    if (tlsErrors.length > 0) throw new Error(`TLS files cannot be used:\n${formatErrors(tlsErrors)}`);
    checkCaptureSupport(config);
    const p = new ProxyServer(config, opts);
    try {
      p.currentState = 'INITIALIZING';
      p.admin = await AdminServer.start(config.admin.address, p, {
        accessLogPath: config.admin.accessLogPath,
      });
      await p.clusterManager.ready(opts.initTimeoutMs ?? 10_000);
      for (const l of p.activeListeners) await l.start();
      p.currentState = 'LIVE';
      p.updateServerGauges();
      p.logger.info('remora is live', {
        admin: `${p.admin.address.address}:${p.admin.address.port}`,
        listeners: p.activeListeners.map((l) => `${l.config.name}=${l.address.address}:${l.address.port}`),
      });
      return p;
    } catch (err) {
      await p.close();
      throw err;
    }
  }

  /** The stack of one listener: each filter chain ends in an HTTP connection manager or a TCP proxy. */
  private buildListener(l: ListenerConfig): Listener {
    let listener: Listener | undefined;
    // TLS stats live under the listener's scope, which names the port it is bound to (known once started).
    const scope = () =>
      scopes.listener(statAddress(l.address.address, listener?.address.port ?? l.address.port));
    const bind = (fc: FilterChainConfig): BoundChain => ({
      name: fc.name,
      match: fc.match,
      filter: this.buildFilter(fc, l),
      tls:
        fc.tls &&
        new DownstreamTls(fc.tls, {
          store: this.stats,
          scope,
          logger: this.logger,
          name: `listener ${JSON.stringify(l.name)} filter chain ${JSON.stringify(fc.name)}`,
        }),
    });
    const defaultChain = l.defaultFilterChain && bind(l.defaultFilterChain);
    listener = new Listener(l, l.filterChains.map(bind), this.stats, defaultChain);
    return listener;
  }

  private buildFilter(fc: FilterChainConfig, l: ListenerConfig): NetworkFilter {
    const f = fc.filter;
    switch (f.kind) {
      case 'http_connection_manager':
        return new ConnectionManager(f.hcm, {
          clusters: this.clusterManager,
          store: this.stats,
          retryBufferLimit: l.perConnectionBufferLimitBytes,
        });
      case 'tcp_proxy':
        return new TcpProxy(f.tcpProxy, this.clusterManager, this.stats);
    }
  }

  get adminAddress(): { address: string; port: number } | undefined {
    return this.admin?.address;
  }

  listenerAddress(name: string): { address: string; port: number } | undefined {
    return this.activeListeners.find((l) => l.config.name === name)?.address;
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
          healthFlags: h.healthy ? 'healthy' : '/failed_active_hc',
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
    await Promise.all(this.activeListeners.map((l) => l.close()));
    for (const l of this.activeListeners) for (const c of l.allChains) c.tls?.close();
    await this.clusterManager.destroy();
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

/**
 * use_original_dst's hand-off, as Envoy finds the listener for a restored destination: the listener bound to that
 * exact address and port, else the wildcard one on that port (0.0.0.0 for IPv4, :: for IPv6, or :: with
 * ipv4_compat for either).
 */
function listenerLookup(listeners: readonly Listener[]): ListenerLookup {
  const exact = new Map<string, Listener>();
  const any4 = new Map<number, Listener>();
  const any6 = new Map<number, Listener>();
  const anyCompat = new Map<number, Listener>();
  for (const l of listeners) {
    const { address, port, ipv4Compat } = l.config.address;
    if (address === '0.0.0.0') any4.set(port, l);
    else if (address === '::') {
      any6.set(port, l);
      if (ipv4Compat) anyCompat.set(port, l);
    } else exact.set(hostKey(address, port), l);
  }
  return (d) =>
    exact.get(hostKey(d.address, d.port)) ??
    (d.address.includes(':') ? any6.get(d.port) : (any4.get(d.port) ?? anyCompat.get(d.port)));
}

/** Istio's convention: the inbound listener is named "virtualInbound" or bound on 15006. */
function isInbound(l: Listener): boolean {
  return (
    l.config.name === 'virtualInbound' ||
    l.config.name.startsWith('inbound') ||
    l.config.address.port === 15006
  );
}

// Owns every cluster by name — the static ones and those CDS adds, changes and removes at run time; the router
// and tcp_proxy look clusters up here for each request.

import type { ClusterConfig, ClusterLoadAssignmentConfig } from '../../config/model.js';
import { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import type { SecretManager } from '../tls/secret_manager.js';
import { Cluster } from './cluster.js';
import type { Lookup } from './dns.js';

/** How long a cluster other than EDS may warm (its first DNS answer) before it serves anyway: Envoy's 15 s. */
const DEFAULT_WARMING_TIMEOUT_MS = 15_000;
/** How long a replaced or removed cluster keeps serving its requests in flight, unless set. */
const DEFAULT_RETIRE_MS = 600_000;

export interface ClusterManagerOptions {
  readonly lookup?: Lookup;
  readonly logger?: Logger;
  /** How long a replaced or removed cluster keeps its busy connections before they are cut (the drain time). */
  readonly retireAfterMs?: number;
  /** Where the secrets of clusters' TLS contexts come from (static, SDS). */
  readonly secrets?: SecretManager;
}

/** The longest initial fetch timeout of what a cluster waits for (hosts, SDS secrets); 0 = for ever. */
function warmingTimeoutMs(cluster: Cluster): number {
  const c = cluster.config;
  const waits: number[] = [];
  if (c.type !== 'STATIC' && c.type !== 'ORIGINAL_DST' && !cluster.hasAssignment)
    waits.push(c.eds?.configSource.initialFetchTimeoutMs ?? DEFAULT_WARMING_TIMEOUT_MS);
  const sockets = cluster.transportSockets;
  if (!sockets.ready) waits.push(sockets.initialFetchTimeoutMs);
  return waits.includes(0) ? 0 : Math.max(...waits);
}

interface Warming {
  readonly cluster: Cluster;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * Clusters by name. A cluster from CDS warms before it serves — until its first ClusterLoadAssignment (EDS) or
 * DNS answer (STRICT_DNS), at most its initial fetch timeout — while the version it replaces keeps serving. A
 * replaced or removed cluster drains: new requests no longer find it, requests in flight finish on its pools.
 */
export class ClusterManager {
  private readonly active = new Map<string, Cluster>();
  private readonly warming = new Map<string, Warming>();
  private readonly staticNames = new Set<string>();
  private readonly retired = new Map<Cluster, NodeJS.Timeout>();
  /** EDS assignments by service name: a cluster re-created by CDS warms at once with what is known. */
  private readonly assignments = new Map<string, ClusterLoadAssignmentConfig>();
  /** endpoint_stale_after timers by service name: each new assignment re-arms (or clears) its service's. */
  private readonly staleTimers = new Map<string, NodeJS.Timeout>();
  /** Services whose endpoints went stale (removed) and have had no assignment since. */
  private readonly staleServices = new Set<string>();
  private readonly listeners = new Set<() => void>();
  private warmWaiters: (() => void)[] = [];
  private readonly logger: Logger;
  private destroyed = false;
  private closing = false;

  constructor(
    configs: readonly ClusterConfig[],
    private readonly store: StatsStore,
    private readonly opts: ClusterManagerOptions = {},
  ) {
    this.logger = opts.logger ?? new Logger();
    for (const c of configs) {
      this.active.set(c.name, new Cluster(c, store, opts.lookup, this.logger, opts.secrets));
      this.staticNames.add(c.name);
    }
  }

  /** The serving cluster of that name (a warming one is not found until it is warm). */
  get(name: string): Cluster | undefined {
    return this.active.get(name);
  }

  /** The serving clusters. */
  all(): Iterable<Cluster> {
    return this.active.values();
  }

  isStatic(name: string): boolean {
    return this.staticNames.has(name);
  }

  isWarming(name: string): boolean {
    return this.warming.has(name);
  }

  warmingClusters(): Cluster[] {
    return [...this.warming.values()].map((w) => w.cluster);
  }

  /** Waits for every static cluster's first host set, at most `timeoutMs` (Envoy's init manager with a bound). */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all([...this.active.values()].map((c) => c.ready)), bound]);
    clearTimeout(timer);
  }

  /**
   * Adds or replaces a dynamic cluster. Returns why it cannot be (a static cluster's name, TLS files that cannot
   * be used), or undefined. The new cluster serves once warm; the one it replaces serves until then.
   */
  upsert(config: ClusterConfig): string | undefined {
    if (this.destroyed) return 'the proxy is shutting down';
    if (this.staticNames.has(config.name))
      return `cluster ${JSON.stringify(config.name)} is a static cluster of the bootstrap; CDS cannot change it`;
    let cluster: Cluster;
    try {
      cluster = new Cluster(config, this.store, this.opts.lookup, this.logger, this.opts.secrets);
    } catch (err) {
      return (err as Error).message;
    }
    this.cancelWarming(config.name);
    const eds = config.eds;
    if (eds !== undefined) {
      const known = this.assignments.get(eds.serviceName);
      if (known !== undefined) cluster.setAssignment(known);
    }
    // A cluster whose TLS secrets (SDS) have not arrived warms until they do, as in Envoy: those of its
    // transport_socket and of every transport_socket_matches entry.
    const tlsReady = cluster.transportSockets.ready;
    const warm =
      tlsReady && (config.type === 'STATIC' || config.type === 'ORIGINAL_DST' || cluster.hasAssignment);
    if (warm) {
      this.promote(cluster);
      return undefined;
    }
    const timeoutMs = warmingTimeoutMs(cluster);
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            this.logger.warn('cluster warming timed out: it serves with the hosts it has', {
              cluster: config.name,
              timeout_ms: timeoutMs,
            });
            this.finishWarming(cluster);
          }, timeoutMs)
        : undefined;
    this.warming.set(config.name, { cluster, timer });
    void Promise.all([cluster.ready, cluster.transportSockets.whenReady()]).then(() =>
      this.finishWarming(cluster),
    );
    this.changed();
    return undefined;
  }

  /** Removes a dynamic cluster: it drains. */
  remove(name: string): void {
    if (this.staticNames.has(name)) return;
    this.cancelWarming(name);
    const c = this.active.get(name);
    if (c !== undefined) {
      this.active.delete(name);
      this.retire(c);
    }
    this.changed();
  }

  /**
   * The endpoints of an EDS service, for every cluster (serving or warming) that takes them. With
   * endpoint_stale_after, they are removed unless another assignment for the service comes within that time.
   */
  setAssignment(serviceName: string, assignment: ClusterLoadAssignmentConfig): void {
    if (this.destroyed) return;
    this.assignments.set(serviceName, assignment);
    this.staleServices.delete(serviceName);
    this.armStaleTimer(serviceName, assignment.policy.endpointStaleAfterMs);
    for (const c of this.edsClusters(serviceName)) c.setAssignment(assignment);
  }

  /**
   * EDS carried a service's assignment again, unchanged. With endpoint_stale_after that is what keeps the endpoints
   * alive (a control plane refreshes them so): the timer restarts, and endpoints that went stale come back.
   */
  assignmentResent(serviceName: string, assignment: ClusterLoadAssignmentConfig): void {
    const ms = assignment.policy.endpointStaleAfterMs;
    if (ms === undefined || this.destroyed) return;
    if (this.staleServices.has(serviceName)) return this.setAssignment(serviceName, assignment);
    this.armStaleTimer(serviceName, ms);
    for (const c of this.edsClusters(serviceName)) c.stats.assignment_timeout_received.inc();
  }

  /** Forgets the endpoints of a service no cluster subscribes to any more (clusters keep their hosts). */
  deleteAssignment(serviceName: string): void {
    this.assignments.delete(serviceName);
    this.staleServices.delete(serviceName);
    this.armStaleTimer(serviceName, undefined);
  }

  private edsClusters(serviceName: string): Cluster[] {
    return [...this.active.values(), ...this.warmingClusters()].filter(
      (c) => c.config.eds?.serviceName === serviceName,
    );
  }

  private armStaleTimer(serviceName: string, ms: number | undefined): void {
    const old = this.staleTimers.get(serviceName);
    if (old !== undefined) clearTimeout(old);
    this.staleTimers.delete(serviceName);
    if (ms === undefined || this.closing || this.destroyed) return;
    const timer = setTimeout(() => this.assignmentStale(serviceName, ms), ms);
    timer.unref?.();
    this.staleTimers.set(serviceName, timer);
  }

  /** Envoy's EdsClusterImpl::onAssignmentTimeout: the endpoints can no longer be trusted, so they go. */
  private assignmentStale(serviceName: string, ms: number): void {
    this.staleTimers.delete(serviceName);
    const known = this.assignments.get(serviceName);
    if (known === undefined) return;
    this.logger.warn('endpoints went stale: no new ClusterLoadAssignment within endpoint_stale_after', {
      service: serviceName,
      endpoint_stale_after_ms: ms,
    });
    // A cluster CDS creates from now on starts empty too; the policy (drop_overloads) stays, as in Envoy.
    this.staleServices.add(serviceName);
    this.assignments.set(serviceName, {
      ...known,
      localities: [],
      policy: { ...known.policy, endpointStaleAfterMs: undefined },
    });
    for (const c of this.edsClusters(serviceName)) c.expireAssignment();
  }

  /** The EDS service names the clusters (serving or warming) need: what the EDS subscription asks for. */
  edsServiceNames(): Set<string> {
    const out = new Set<string>();
    for (const c of [...this.active.values(), ...this.warmingClusters()]) {
      if (c.config.eds !== undefined) out.add(c.config.eds.serviceName);
    }
    return out;
  }

  /** Calls `listener` after clusters were added, replaced, removed or finished warming; returns its cancel. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once no cluster is warming. */
  whenWarm(): Promise<void> {
    if (this.warming.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.warmWaiters.push(resolve));
  }

  private finishWarming(cluster: Cluster): void {
    const w = this.warming.get(cluster.config.name);
    if (w?.cluster !== cluster) return;
    if (w.timer) clearTimeout(w.timer);
    this.warming.delete(cluster.config.name);
    this.promote(cluster);
  }

  private promote(cluster: Cluster): void {
    const name = cluster.config.name;
    const old = this.active.get(name);
    this.active.set(name, cluster);
    if (old !== undefined) this.retire(old);
    this.changed();
  }

  private cancelWarming(name: string): void {
    const w = this.warming.get(name);
    if (w === undefined) return;
    if (w.timer) clearTimeout(w.timer);
    this.warming.delete(name);
    void w.cluster.destroy();
  }

  private retire(c: Cluster): void {
    c.drain();
    const timer = setTimeout(() => {
      this.retired.delete(c);
      void c.destroy();
    }, this.opts.retireAfterMs ?? DEFAULT_RETIRE_MS);
    timer.unref();
    this.retired.set(c, timer);
  }

  private changed(): void {
    if (this.warming.size === 0 && this.warmWaiters.length > 0) {
      const waiters = this.warmWaiters;
      this.warmWaiters = [];
      for (const w of waiters) w();
    }
    for (const l of [...this.listeners]) l();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.clearStaleTimers();
    await Promise.all([...this.active.values()].map((c) => c.close()));
  }

  private clearStaleTimers(): void {
    for (const t of this.staleTimers.values()) clearTimeout(t);
    this.staleTimers.clear();
  }

  /** Ends every cluster now: serving, warming and draining ones. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    this.clearStaleTimers();
    const all = [...this.active.values(), ...this.warmingClusters(), ...this.retired.keys()];
    for (const w of this.warming.values()) if (w.timer) clearTimeout(w.timer);
    for (const t of this.retired.values()) clearTimeout(t);
    this.warming.clear();
    this.retired.clear();
    this.active.clear();
    for (const w of this.warmWaiters.splice(0)) w();
    await Promise.all(all.map((c) => c.destroy()));
  }
}

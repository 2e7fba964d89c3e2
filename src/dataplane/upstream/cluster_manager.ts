// Owns every cluster by name — the static ones and those CDS adds, changes and removes at run time; the router
// and tcp_proxy look clusters up here for each request.

import type { ClusterConfig, LocalityEndpointsConfig } from '../../config/model.js';
import { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
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
  private readonly assignments = new Map<string, readonly LocalityEndpointsConfig[]>();
  private readonly listeners = new Set<() => void>();
  private warmWaiters: (() => void)[] = [];
  private readonly logger: Logger;
  private destroyed = false;

  constructor(
    configs: readonly ClusterConfig[],
    private readonly store: StatsStore,
    private readonly opts: ClusterManagerOptions = {},
  ) {
    this.logger = opts.logger ?? new Logger();
    for (const c of configs) {
      this.active.set(c.name, new Cluster(c, store, opts.lookup, this.logger));
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
      cluster = new Cluster(config, this.store, this.opts.lookup, this.logger);
    } catch (err) {
      return (err as Error).message;
    }
    this.cancelWarming(config.name);
    const eds = config.eds;
    if (eds !== undefined) {
      const known = this.assignments.get(eds.serviceName);
      if (known !== undefined) cluster.setLocalities(known);
    }
    const warm = config.type === 'STATIC' || config.type === 'ORIGINAL_DST' || cluster.hasAssignment;
    if (warm) {
      this.promote(cluster);
      return undefined;
    }
    const timeoutMs = eds?.configSource.initialFetchTimeoutMs ?? DEFAULT_WARMING_TIMEOUT_MS;
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
    void cluster.ready.then(() => this.finishWarming(cluster));
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

  /** The endpoints of an EDS service, for every cluster (serving or warming) that takes them. */
  setAssignment(serviceName: string, localities: readonly LocalityEndpointsConfig[]): void {
    this.assignments.set(serviceName, localities);
    for (const c of [...this.active.values(), ...this.warmingClusters()]) {
      if (c.config.eds?.serviceName === serviceName) c.setLocalities(localities);
    }
  }

  /** Forgets the endpoints of a service no cluster subscribes to any more (clusters keep their hosts). */
  deleteAssignment(serviceName: string): void {
    this.assignments.delete(serviceName);
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
    await Promise.all([...this.active.values()].map((c) => c.close()));
  }

  /** Ends every cluster now: serving, warming and draining ones. */
  async destroy(): Promise<void> {
    this.destroyed = true;
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

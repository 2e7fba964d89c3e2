// Owns every cluster of a config by name; the router and tcp_proxy look clusters up here.

import type { ClusterConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import { Cluster } from './cluster.js';
import type { Lookup } from './dns.js';

export class ClusterManager {
  private readonly clusters = new Map<string, Cluster>();

  constructor(configs: readonly ClusterConfig[], store: StatsStore, lookup?: Lookup, logger?: Logger) {
    for (const c of configs) this.clusters.set(c.name, new Cluster(c, store, lookup, logger));
  }

  get(name: string): Cluster | undefined {
    return this.clusters.get(name);
  }

  all(): Iterable<Cluster> {
    return this.clusters.values();
  }

  /** Waits for every cluster's first host set, at most `timeoutMs` (Envoy's init manager with a bound). */
  async ready(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all([...this.clusters.values()].map((c) => c.ready)), bound]);
    clearTimeout(timer);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.close()));
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.destroy()));
  }
}

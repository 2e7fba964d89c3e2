// RDS route tables by name: the current RouteConfiguration of each, and the connection managers watching it.

import { NO_HEADER_MUTATIONS } from '../../config/headers.js';
import type { RouteConfig } from '../../config/model.js';

export type RouteConfigWatcher = (config: RouteConfig) => void;

interface Entry {
  config: RouteConfig | undefined;
  readonly watchers: Set<RouteConfigWatcher>;
}

/**
 * The route tables that came by RDS. A connection manager whose HCM names one (`rds.route_config_name`) watches
 * it: it gets each new version as it is set, and uses the empty table until the first arrives.
 */
export class RouteConfigs {
  private readonly entries = new Map<string, Entry>();
  private readonly namesChanged = new Set<() => void>();
  private readonly setListeners = new Set<(name: string) => void>();

  /** The current table of `name`; undefined until RDS has delivered it. */
  get(name: string): RouteConfig | undefined {
    return this.entries.get(name)?.config;
  }

  /** Whether RDS has delivered `name`. */
  has(name: string): boolean {
    return this.entries.get(name)?.config !== undefined;
  }

  /** Replaces the table of `name`; its watchers switch to it for new requests. */
  set(name: string, config: RouteConfig): void {
    const e = this.entry(name);
    e.config = config;
    for (const w of [...e.watchers]) w(config);
    for (const l of [...this.setListeners]) l(name);
  }

  /** Calls `listener` after each `set` (a warming listener waits for its tables); returns the cancel function. */
  onSet(listener: (name: string) => void): () => void {
    this.setListeners.add(listener);
    return () => this.setListeners.delete(listener);
  }

  /** Forgets the table of `name` (no longer subscribed); watchers keep the last one they got. */
  delete(name: string): void {
    const e = this.entries.get(name);
    if (e === undefined) return;
    e.config = undefined;
    if (e.watchers.size === 0) this.entries.delete(name);
  }

  /** Calls `watcher` with every new version of `name`; returns the cancel function. */
  watch(name: string, watcher: RouteConfigWatcher): () => void {
    const e = this.entry(name);
    const added = e.watchers.size === 0;
    e.watchers.add(watcher);
    if (added) this.notifyNames();
    return () => {
      e.watchers.delete(watcher);
      if (e.watchers.size > 0) return;
      if (e.config === undefined) this.entries.delete(name);
      this.notifyNames();
    };
  }

  /** The names some connection manager watches: what the RDS subscription asks for. */
  watchedNames(): string[] {
    return [...this.entries].filter(([, e]) => e.watchers.size > 0).map(([n]) => n);
  }

  /** Calls `listener` when the set of watched names may have changed; returns the cancel function. */
  onNamesChanged(listener: () => void): () => void {
    this.namesChanged.add(listener);
    return () => this.namesChanged.delete(listener);
  }

  private entry(name: string): Entry {
    let e = this.entries.get(name);
    if (e === undefined) {
      e = { config: undefined, watchers: new Set() };
      this.entries.set(name, e);
    }
    return e;
  }

  private notifyNames(): void {
    for (const l of [...this.namesChanged]) l();
  }
}

/** The table an RDS connection manager serves until its route configuration arrives: no route (404, NR). */
export function emptyRouteConfig(name: string): RouteConfig {
  return { name, virtualHosts: [], ...NO_HEADER_MUTATIONS };
}

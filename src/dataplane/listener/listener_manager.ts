// Owns the listeners by name — the static ones and those LDS adds, changes and removes at run time — and retires
// old versions without refusing or dropping a connection.

import { createServer } from 'node:net';
import type { ListenerConfig, SocketAddress } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import type { RouteConfigs } from '../router/route_configs.js';
import { hostKey } from '../upstream/host.js';
import { type BoundChain, Listener, type ListenerLookup } from './listener.js';

/** The filter chains of one listener version, built by the server (they hold its connection managers). */
export interface BuiltChains {
  readonly chains: BoundChain[];
  readonly defaultChain: BoundChain | undefined;
}

export type ChainBuilder = (config: ListenerConfig) => BuiltChains;

export interface ListenerManagerOptions {
  readonly store: StatsStore;
  readonly build: ChainBuilder;
  readonly routeConfigs: RouteConfigs;
  /** How long an old version keeps its connections before they are closed. */
  readonly drainTimeMs: number;
  readonly logger: Logger;
}

/** A listener version waiting for its RDS route tables before it takes connections. */
interface Warming {
  readonly config: ListenerConfig;
  readonly built: BuiltChains;
  readonly timer: NodeJS.Timeout | undefined;
  readonly token: object;
}

/**
 * Listeners by name. A new or changed listener warms until the route tables its connection managers name have
 * arrived by RDS (at most their initial fetch timeout). A changed listener on the same address keeps its socket
 * and swaps its filter chains in place, since Node cannot hand a bound socket to a new server: no connection is
 * refused. One on another address binds its new socket before the old one stops accepting. Old filter chains
 * drain: their connections finish (HTTP/1.1 responses say `connection: close`, HTTP/2 gets GOAWAY) and are
 * closed after the drain time at the latest.
 */
export class ListenerManager {
  private readonly active = new Map<string, Listener>();
  private readonly warming = new Map<string, Warming>();
  private readonly staticNames = new Set<string>();
  /** Old versions draining: closed when their connections are done, or at the drain time, or on close(). */
  private readonly retiring = new Set<{ close(): Promise<void> }>();
  private readonly cancelRouteWatch: () => void;
  /** The latest change asked for each name: an activation that finds a newer one gives way. */
  private readonly latest = new Map<string, object>();
  private warmWaiters: (() => void)[] = [];
  private frozen = false;

  constructor(private readonly opts: ListenerManagerOptions) {
    this.cancelRouteWatch = opts.routeConfigs.onSet(() => this.checkWarming());
  }

  /** A listener of the bootstrap; started with `startStatic()`. */
  addStatic(config: ListenerConfig): Listener {
    const built = this.opts.build(config);
    const l = new Listener(config, built.chains, this.opts.store, built.defaultChain);
    this.active.set(config.name, l);
    this.staticNames.add(config.name);
    return l;
  }

  /** Binds the static listeners (in order) and sets up the use_original_dst hand-off. */
  async startStatic(): Promise<void> {
    for (const name of this.staticNames) await this.active.get(name)!.start();
    this.refreshLookup();
  }

  /** The listeners taking connections, static ones first. */
  listeners(): Listener[] {
    return [...this.active.values()];
  }

  get(name: string): Listener | undefined {
    return this.active.get(name);
  }

  isStatic(name: string): boolean {
    return this.staticNames.has(name);
  }

  isWarming(name: string): boolean {
    return this.warming.has(name);
  }

  /**
   * Adds or replaces a dynamic listener. Resolves with why it cannot be (a static listener's name, an address
   * that cannot be bound), or undefined. A listener that must warm resolves at once and takes connections once
   * its route tables are there.
   */
  async upsert(config: ListenerConfig): Promise<string | undefined> {
    if (this.frozen) return 'the proxy is draining its listeners';
    if (this.staticNames.has(config.name))
      return `listener ${JSON.stringify(config.name)} is a static listener of the bootstrap; LDS cannot change it`;
    let built: BuiltChains;
    try {
      built = this.opts.build(config);
    } catch (err) {
      return (err as Error).message;
    }
    this.cancelWarming(config.name);
    const token = {};
    this.latest.set(config.name, token);
    const timeoutMs = warmingTimeoutMs(config);
    if (this.missingRoutes(config).length === 0) return this.activate(config, built, token);
    // As Envoy binds a listener when it is added, before it warms: an address it cannot have is refused now (a
    // NACK), not found out once its routes arrive, when the update has long been ACKed.
    const refused = await this.bindRefusal(config);
    if (refused !== undefined) {
      await closeChains(built.defaultChain ? [...built.chains, built.defaultChain] : built.chains);
      return refused;
    }
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            this.opts.logger.warn('listener warming timed out: it serves without the missing route tables', {
              listener: config.name,
              missing: this.missingRoutes(config),
            });
            this.finishWarming(config.name);
          }, timeoutMs)
        : undefined;
    this.warming.set(config.name, { config, built, timer, token });
    return undefined;
  }

  /** Removes a dynamic listener: it stops accepting and its connections drain. */
  remove(name: string): void {
    if (this.staticNames.has(name)) return;
    this.cancelWarming(name);
    this.latest.delete(name);
    const l = this.active.get(name);
    if (l === undefined) return;
    this.active.delete(name);
    this.retireListener(l);
    this.refreshLookup();
    this.notifyWarm();
  }

  /** Resolves once no listener is warming. */
  whenWarm(): Promise<void> {
    if (this.warming.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.warmWaiters.push(resolve));
  }

  /** Stops every listener accepting (shutdown, /drain_listeners); LDS changes are refused from then on. */
  freeze(): void {
    this.frozen = true;
    for (const name of [...this.warming.keys()]) this.cancelWarming(name);
  }

  /** Closes every listener, connection and draining old version now. */
  async close(): Promise<void> {
    this.frozen = true;
    this.cancelRouteWatch();
    for (const name of [...this.warming.keys()]) this.cancelWarming(name);
    const listeners = [...this.active.values()];
    await Promise.all(listeners.map((l) => l.close()));
    for (const l of listeners) for (const c of l.allChains) c.tls?.close();
    await Promise.all([...this.retiring].map((r) => r.close()));
    this.retiring.clear();
    this.notifyWarm();
  }

  /** Why a warming listener could not bind its address; undefined when it could, or binds nothing new. */
  private async bindRefusal(config: ListenerConfig): Promise<string | undefined> {
    const { address, port, ipv4Compat } = config.address;
    if (!config.bindToPort || port === 0) return undefined;
    const existing = this.active.get(config.name);
    // The current version holds the address and hands it over.
    if (existing !== undefined && sameAddress(existing.config.address, config.address)) return undefined;
    const probe = createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        probe.once('error', reject);
        probe.listen(
          { host: address, port, ipv6Only: address.includes(':') && ipv4Compat !== true },
          resolve,
        );
      });
      return undefined;
    } catch (err) {
      return `cannot listen on ${hostKey(address, port)}: ${(err as Error).message}`;
    } finally {
      await new Promise<void>((r) => (probe.listening ? probe.close(() => r()) : r()));
    }
  }

  private missingRoutes(config: ListenerConfig): string[] {
    return rdsNamesOf(config).filter((n) => !this.opts.routeConfigs.has(n));
  }

  private checkWarming(): void {
    for (const [name, w] of [...this.warming]) {
      if (this.missingRoutes(w.config).length === 0) this.finishWarming(name);
    }
  }

  private finishWarming(name: string): void {
    const w = this.warming.get(name);
    if (w === undefined) return;
    if (w.timer) clearTimeout(w.timer);
    this.warming.delete(name);
    void this.activate(w.config, w.built, w.token).then((error) => {
      if (error !== undefined) this.opts.logger.error('listener cannot start', { listener: name, error });
    });
  }

  /** Puts a warm version in service: in place on the same socket, or on a socket of its own. */
  private async activate(
    config: ListenerConfig,
    built: BuiltChains,
    token: object,
  ): Promise<string | undefined> {
    const existing = this.active.get(config.name);
    if (existing !== undefined && sameSocket(existing, config)) {
      const old = existing.replace(config, built.chains, built.defaultChain);
      this.retireChains(old);
      this.refreshLookup();
      this.notifyWarm();
      return undefined;
    }
    const l = new Listener(config, built.chains, this.opts.store, built.defaultChain);
    // The old socket goes first when the new one needs its address (bind_to_port changed).
    if (existing !== undefined && sameAddress(existing.config.address, config.address))
      existing.stopAccepting();
    try {
      await l.start();
    } catch (err) {
      await closeChains(l.allChains);
      this.notifyWarm();
      return `cannot listen on ${hostKey(config.address.address, config.address.port)}: ${(err as Error).message}`;
    }
    if (this.frozen || this.latest.get(config.name) !== token) {
      await l.close();
      for (const c of l.allChains) c.tls?.close();
      return this.frozen ? 'the proxy is draining its listeners' : undefined;
    }
    const current = this.active.get(config.name);
    this.active.set(config.name, l);
    if (current !== undefined) this.retireListener(current);
    this.refreshLookup();
    this.notifyWarm();
    return undefined;
  }

  private cancelWarming(name: string): void {
    const w = this.warming.get(name);
    if (w === undefined) return;
    if (w.timer) clearTimeout(w.timer);
    this.warming.delete(name);
    void closeChains(w.built.defaultChain ? [...w.built.chains, w.built.defaultChain] : w.built.chains);
    this.notifyWarm();
  }

  /** Old filter chains of a listener that keeps its socket: they finish their connections, then close. */
  private retireChains(chains: readonly BoundChain[]): void {
    for (const c of chains) c.filter.drain?.();
    this.retireWhenDone(
      chains.map((c) => c.filter.whenDrained?.() ?? c.filter.whenIdle?.() ?? Promise.resolve()),
      () => closeChains(chains),
    );
  }

  /** An old listener: stops accepting; its connections finish, then it closes. */
  private retireListener(l: Listener): void {
    l.stopAccepting();
    l.drainFilters();
    this.retireWhenDone(
      l.allChains.map((c) => c.filter.whenDrained?.() ?? c.filter.whenIdle?.() ?? Promise.resolve()),
      async () => {
        await l.close();
        for (const c of l.allChains) c.tls?.close();
      },
    );
  }

  private retireWhenDone(done: Promise<void>[], close: () => Promise<void>): void {
    let closed: Promise<void> | undefined;
    const entry = {
      close: () => {
        closed ??= close();
        return closed;
      },
    };
    this.retiring.add(entry);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.drainTimeMs);
      timer.unref();
    });
    void Promise.race([Promise.all(done), deadline]).then(async () => {
      clearTimeout(timer);
      await entry.close();
      this.retiring.delete(entry);
    });
  }

  /** use_original_dst: every listener that hands connections off looks targets up among the current ones. */
  private refreshLookup(): void {
    const lookup = listenerLookup([...this.active.values()]);
    for (const l of this.active.values()) if (l.config.useOriginalDst) l.setListenerLookup(lookup);
  }

  private notifyWarm(): void {
    if (this.warming.size > 0) return;
    for (const w of this.warmWaiters.splice(0)) w();
  }
}

async function closeChains(chains: readonly BoundChain[]): Promise<void> {
  await Promise.all(chains.map((c) => c.filter.close()));
  for (const c of chains) c.tls?.close();
}

/** The RDS route tables the connection managers of a listener name. */
export function rdsNamesOf(config: ListenerConfig): string[] {
  const names = new Set<string>();
  const chains = config.defaultFilterChain
    ? [...config.filterChains, config.defaultFilterChain]
    : config.filterChains;
  for (const c of chains) {
    if (c.filter.kind === 'http_connection_manager' && c.filter.hcm.rds !== undefined)
      names.add(c.filter.hcm.rds.routeConfigName);
  }
  return [...names];
}

/** The longest initial fetch timeout of the listener's RDS sources; 0 (wait for ever) when one says so. */
function warmingTimeoutMs(config: ListenerConfig): number {
  let ms = 0;
  for (const c of [
    ...config.filterChains,
    ...(config.defaultFilterChain ? [config.defaultFilterChain] : []),
  ]) {
    if (c.filter.kind !== 'http_connection_manager' || c.filter.hcm.rds === undefined) continue;
    const t = c.filter.hcm.rds.configSource.initialFetchTimeoutMs;
    if (t === 0) return 0;
    ms = Math.max(ms, t);
  }
  return ms;
}

function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.address === b.address && a.port === b.port && (a.ipv4Compat ?? false) === (b.ipv4Compat ?? false);
}

/** A new version can take over the socket of the running one: same address, bound the same way. */
function sameSocket(l: Listener, next: ListenerConfig): boolean {
  if (!sameAddress(l.config.address, next.address) || l.config.bindToPort !== next.bindToPort) return false;
  return next.bindToPort ? l.bound : true;
}

/**
 * use_original_dst's hand-off, as Envoy finds the listener for a restored destination: the listener bound to that
 * exact address and port, else the wildcard one on that port (0.0.0.0 for IPv4, :: for IPv6, or :: with
 * ipv4_compat for either).
 */
export function listenerLookup(listeners: readonly Listener[]): ListenerLookup {
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

// Owns the listeners by name — the static ones and those LDS adds, changes and removes at run time — binds each new
// version when it is added, serves it once warm, and retires old versions without refusing or dropping a connection.

import type { ListenerConfig, SocketAddress } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import type { RouteConfigs } from '../router/route_configs.js';
import { hostKey } from '../upstream/host.js';
import type { HoldLimits } from './held_connections.js';
import { type BoundChain, Listener, type ListenerLookup } from './listener.js';
import { clusterNamesOf, rdsNamesOf, warmingTimeoutMs } from './listener_dependencies.js';

/** The filter chains of one listener version, built by the server (they hold its connection managers). */
export interface BuiltChains {
  readonly chains: BoundChain[];
  readonly defaultChain: BoundChain | undefined;
}

export type ChainBuilder = (config: ListenerConfig) => BuiltChains;

/** What a warming listener needs of the clusters it sends to (the cluster manager). */
export interface ClusterWarmth {
  /** The serving version of a cluster; undefined while a new one warms, or when there is none. */
  get(name: string): unknown;
  isWarming(name: string): boolean;
  /** Calls `listener` after clusters were added, replaced, removed or finished warming; returns its cancel. */
  onChange(listener: () => void): () => void;
}

export interface ListenerManagerOptions {
  readonly store: StatsStore;
  readonly build: ChainBuilder;
  readonly routeConfigs: RouteConfigs;
  readonly clusters: ClusterWarmth;
  /** How long an old version keeps its connections before they are closed. */
  readonly drainTimeMs: number;
  readonly logger: Logger;
  /** How many connections a warming listener holds, and how long (default DEFAULT_HOLD_LIMITS). */
  readonly hold?: HoldLimits;
}

/** A listener version waiting for what it depends on before it takes connections. */
interface Warming {
  readonly config: ListenerConfig;
  /**
   * Its own listener, bound when it was added, holding the connections it accepts until it is warm; undefined
   * when it takes over the running version's socket in place (the running version serves meanwhile).
   */
  readonly listener: Listener | undefined;
  /** Its filter chains, for the version taking over in place (an own listener has them). */
  readonly built: BuiltChains;
  readonly timer: NodeJS.Timeout | undefined;
}

/**
 * Listeners by name. A new or changed listener binds its address when it is added, as Envoy does: an address it
 * cannot have refuses the update (a NACK), and once accepted nothing can take the address from it. It then warms
 * until the route tables its connection managers name have arrived by RDS (at most their initial fetch timeout)
 * and the clusters it sends to that are new have warmed; meanwhile the connections it accepts wait (bounded, see
 * HoldLimits) and are served once it is warm. A changed listener on the same address keeps its socket and swaps
 * its filter chains in place once warm, since Node cannot hand a bound socket to a new server: the old version
 * serves until then, and no connection is refused. One on another address serves on its new socket once warm,
 * then the old one stops accepting. Old filter chains drain: their connections finish (HTTP/1.1 responses say
 * `connection: close`, HTTP/2 gets GOAWAY) and are closed after the drain time at the latest.
 */
export class ListenerManager {
  private readonly active = new Map<string, Listener>();
  private readonly warming = new Map<string, Warming>();
  private readonly staticNames = new Set<string>();
  /** Old versions draining: closed when their connections are done, or at the drain time, or on close(). */
  private readonly retiring = new Set<{ close(): Promise<void> }>();
  private readonly cancelWatches: (() => void)[];
  /** The latest change asked for each name: a version bound after a newer one was asked for gives way. */
  private readonly latest = new Map<string, object>();
  private warmWaiters: (() => void)[] = [];
  private frozen = false;

  constructor(private readonly opts: ListenerManagerOptions) {
    this.cancelWatches = [
      opts.routeConfigs.onSet(() => this.checkWarming()),
      opts.clusters.onChange(() => this.checkWarming()),
    ];
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
   * that cannot be bound), or undefined once the version is bound: serving, or warming (it serves once warm). A
   * refused version changes nothing: the running and the warming versions of the name stay.
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
    const token = {};
    this.latest.set(config.name, token);
    const existing = this.active.get(config.name);
    if (existing !== undefined && sameSocket(existing, config)) {
      void this.cancelWarming(config.name);
      this.warmOrActivate({ config, listener: undefined, built, timer: undefined });
      return undefined;
    }
    const previous = this.warming.get(config.name)?.listener;
    if (previous !== undefined && sameSocket(previous, config)) {
      // The version still warming hands its socket, and the connections it holds, to this one.
      this.detachWarming(config.name);
      void closeChains(previous.replace(config, built.chains, built.defaultChain));
      this.warmOrActivate({ config, listener: previous, built, timer: undefined });
      return undefined;
    }
    const l = new Listener(config, built.chains, this.opts.store, built.defaultChain, this.opts.hold);
    // The same IP and port on a socket that cannot be shared (ipv4_compat changed): the old socket must go first
    // (Node has no SO_REUSEPORT to bind beside it). The new one holds the connections until it is warm.
    if (existing !== undefined && takesAddressOf(config, existing)) existing.stopAccepting();
    if (previous !== undefined && takesAddressOf(config, previous)) void this.cancelWarming(config.name);
    try {
      await l.bind();
    } catch (err) {
      await closeChains(l.allChains);
      return `cannot listen on ${hostKey(config.address.address, config.address.port)}: ${(err as Error).message}`;
    }
    if (this.frozen || this.latest.get(config.name) !== token) {
      await l.close();
      for (const c of l.allChains) c.tls?.close();
      return this.frozen ? 'the proxy is draining its listeners' : undefined;
    }
    void this.cancelWarming(config.name);
    this.warmOrActivate({ config, listener: l, built, timer: undefined });
    return undefined;
  }

  /** Removes a dynamic listener: it stops accepting and its connections drain. */
  remove(name: string): void {
    if (this.staticNames.has(name)) return;
    void this.cancelWarming(name);
    this.latest.delete(name);
    const l = this.active.get(name);
    if (l !== undefined) {
      this.active.delete(name);
      this.retireListener(l);
      this.refreshLookup();
    }
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
    for (const name of [...this.warming.keys()]) void this.cancelWarming(name);
    this.notifyWarm();
  }

  /** Closes every listener, connection and draining old version now. */
  async close(): Promise<void> {
    this.frozen = true;
    for (const c of this.cancelWatches.splice(0)) c();
    await Promise.all([...this.warming.keys()].map((name) => this.cancelWarming(name)));
    const listeners = [...this.active.values()];
    await Promise.all(listeners.map((l) => l.close()));
    for (const l of listeners) for (const c of l.allChains) c.tls?.close();
    await Promise.all([...this.retiring].map((r) => r.close()));
    this.retiring.clear();
    this.notifyWarm();
  }

  /** Serves a bound version now when nothing it needs is missing; else it warms. */
  private warmOrActivate(w: Warming): void {
    if (this.waitingFor(w.config, w.built).length === 0) {
      this.activate(w);
      return;
    }
    // The TLS secrets of its filter chains (SDS) tell when they arrive.
    const chains = allChainsOf(w.built);
    void Promise.all(chains.map((c) => c.tls?.readiness.whenReady())).then(() => this.checkWarming());
    const timeoutMs = warmingTimeoutMs(w.config, chains);
    const name = w.config.name;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            this.opts.logger.warn('listener warming timed out: it serves without what it waits for', {
              listener: name,
              waiting_for: this.waitingFor(w.config, w.built),
            });
            this.finishWarming(name);
          }, timeoutMs)
        : undefined;
    this.warming.set(name, { ...w, timer });
  }

  /**
   * What a version waits for: the RDS route tables it names that have not arrived, the clusters it sends to
   * (tcp_proxy, routes) that are warming with no version serving yet, as "cluster <name>", and the TLS secrets of
   * its filter chains that have not arrived, as "secret <name>".
   */
  private waitingFor(config: ListenerConfig, built: BuiltChains): string[] {
    const routes = this.opts.routeConfigs;
    const clusters = this.opts.clusters;
    const missing = rdsNamesOf(config).filter((n) => !routes.has(n));
    for (const c of clusterNamesOf(config, (n) => routes.get(n)))
      if (clusters.isWarming(c) && clusters.get(c) === undefined) missing.push(`cluster ${c}`);
    for (const c of allChainsOf(built))
      for (const s of c.tls?.readiness.missingSecrets() ?? []) missing.push(`secret ${s}`);
    return missing;
  }

  private checkWarming(): void {
    for (const [name, w] of [...this.warming]) {
      if (this.waitingFor(w.config, w.built).length === 0) this.finishWarming(name);
    }
  }

  private finishWarming(name: string): void {
    const w = this.detachWarming(name);
    if (w !== undefined) this.activate(w);
  }

  /**
   * Puts a bound, warm version in service: in place on the running version's socket, or on its own socket (it
   * serves what it held), the running version then retiring.
   */
  private activate(w: Warming): void {
    const { config, built, listener } = w;
    const existing = this.active.get(config.name);
    if (listener === undefined) {
      if (existing === undefined)
        throw new Error(`listener ${config.name}: no running version to update in place`);
      this.retireChains(existing.replace(config, built.chains, built.defaultChain));
      this.refreshLookup();
    } else {
      this.active.set(config.name, listener);
      // Lookups first: a held connection handed off (use_original_dst) finds the listeners as they now are.
      this.refreshLookup();
      listener.serve();
      if (existing !== undefined) this.retireListener(existing);
    }
    this.notifyWarm();
  }

  /** Takes a warming version out of the warming set, its socket and chains left as they are. */
  private detachWarming(name: string): Warming | undefined {
    const w = this.warming.get(name);
    if (w === undefined) return undefined;
    if (w.timer) clearTimeout(w.timer);
    this.warming.delete(name);
    return w;
  }

  /**
   * Drops a warming version: its socket and the connections it holds are closed at once (the address is free
   * again), its chains once they have closed. The caller tells whoever waits for warm listeners.
   */
  private async cancelWarming(name: string): Promise<void> {
    const w = this.detachWarming(name);
    if (w === undefined) return;
    const chains = w.listener?.allChains ?? allChainsOf(w.built);
    await (w.listener !== undefined ? w.listener.close() : closeChains(chains));
    for (const c of chains) c.tls?.close();
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

function allChainsOf(built: BuiltChains): BoundChain[] {
  return built.defaultChain ? [...built.chains, built.defaultChain] : built.chains;
}

function sameAddress(a: SocketAddress, b: SocketAddress): boolean {
  return a.address === b.address && a.port === b.port && (a.ipv4Compat ?? false) === (b.ipv4Compat ?? false);
}

/** A new version can take over the socket of the running one: same address, bound the same way. */
function sameSocket(l: Listener, next: ListenerConfig): boolean {
  if (!sameAddress(l.config.address, next.address) || l.config.bindToPort !== next.bindToPort) return false;
  return next.bindToPort ? l.bound : true;
}

/** A version that must bind the very IP and port another one's socket holds (a fixed port, not 0). */
function takesAddressOf(next: ListenerConfig, l: Listener): boolean {
  const a = next.address;
  const b = l.config.address;
  return next.bindToPort && l.bound && a.port !== 0 && a.port === b.port && a.address === b.address;
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

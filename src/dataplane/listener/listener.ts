// A listener: binds its address, holds connections while it warms, then runs its listener filters on each and
// hands it to the filter chain that matches it.

import { createServer, type Server, type Socket } from 'node:net';
import type { FilterChainMatch, ListenerConfig, SocketAddress } from '../../config/model.js';
import { originalDestination } from '../capture/original_destination.js';
import { monotonicMs } from '../clock.js';
import { listenOn } from '../network/listen.js';
import { declareStats, type StatsOf, type StatsStore, scopes } from '../observe/stats.js';
import { plainIp } from '../observe/stream_info.js';
import type { DownstreamTls } from '../tls/downstream.js';
import { adoptAccepted } from './accepted_socket.js';
import { detect } from './detection.js';
import { type ConnectionFacts, FilterChainSelector } from './filter_chain_match.js';
import { DEFAULT_HOLD_LIMITS, HeldConnections, type HoldLimits } from './held_connections.js';
import { buildListenerFilters, type Detected, type ListenerFilter } from './listener_filters.js';
import { carryRequestedServerName, setRequestedServerName } from './requested_server_name.js';
import { carryRestoredDestination, destinationOf, setRestoredDestination } from './restored_destination.js';

export const LISTENER_STATS = declareStats({
  counters: [
    'downstream_cx_total',
    'downstream_cx_destroy',
    'no_filter_chain_match',
    'downstream_cx_overflow',
    'downstream_pre_cx_timeout',
    'downstream_listener_filter_remote_close',
    'downstream_listener_filter_error',
    'downstream_cx_handed_off',
  ] as const,
  gauges: ['downstream_cx_active', 'downstream_pre_cx_active'] as const,
  histograms: ['downstream_cx_length_ms'] as const,
});

/** The network filter a chain hands its connections to: HCM or tcp_proxy, maybe behind RBAC filters. */
export interface NetworkFilter {
  /**
   * Takes ownership of an accepted connection. When listener filters ran, the socket arrives paused, with the
   * bytes they read put back (unshift): the filter reads them again once it calls `socket.resume()` (attaching a
   * 'data' listener does not restart a paused socket).
   */
  onConnection(socket: Socket): void;
  /** Stops new requests on existing connections from being kept alive (HTTP) — optional for L4. */
  drain?(): void;
  whenIdle?(): Promise<void>;
  /**
   * Resolves once every connection the filter took has closed, for an old version of a listener retiring; when
   * absent, `whenIdle` tells.
   */
  whenDrained?(): Promise<void>;
  /**
   * A connection a filter before this one (network RBAC) closed instead of handing it over: written to this
   * filter's access logs with `details` as its termination details, as Envoy's tcp_proxy logs it. Optional.
   */
  onRejected?(socket: Socket, details: string): void;
  close(): Promise<void>;
}

export interface BoundChain {
  readonly name: string;
  readonly match: FilterChainMatch;
  readonly filter: NetworkFilter;
  /** TLS termination (transport_socket): the filter gets the TLS socket once the handshake is done. */
  readonly tls?: DownstreamTls;
}

/** What a connection is known as when no listener filter ran. */
const NOTHING_DETECTED: Detected = {
  transportProtocol: 'raw_buffer',
  serverName: '',
  applicationProtocols: [],
};

/** Finds the listener for a restored destination (use_original_dst); undefined when none is configured for it. */
export type ListenerLookup = (destination: SocketAddress) => Listener | undefined;

export class Listener {
  private server: Server | undefined;
  private stats: StatsOf<typeof LISTENER_STATS> | undefined;
  private filters: readonly ListenerFilter[] = [];
  private serverFirstPorts: ReadonlySet<number>;
  private selector: FilterChainSelector<BoundChain>;
  private readonly open = new Set<Socket>();
  private boundAddress: { address: string; port: number } | undefined;
  private lookup: ListenerLookup | undefined;
  private current: { config: ListenerConfig; chains: readonly BoundChain[]; defaultChain?: BoundChain };
  /** The connections accepted while warming (bound, not yet serving); undefined once serving. */
  private held: HeldConnections | undefined;

  /**
   * `chains` in config order; `defaultChain` (default_filter_chain) takes the connections none of them matches.
   * `hold` bounds the connections accepted while the listener warms.
   */
  constructor(
    config: ListenerConfig,
    chains: readonly BoundChain[],
    private readonly store: StatsStore,
    defaultChain?: BoundChain,
    private readonly hold: HoldLimits = DEFAULT_HOLD_LIMITS,
  ) {
    this.current = { config, chains, defaultChain };
    this.serverFirstPorts = new Set(config.serverFirstPorts);
    this.selector = new FilterChainSelector(chains.map((c) => ({ match: c.match, value: c })));
  }

  get config(): ListenerConfig {
    return this.current.config;
  }

  get chains(): readonly BoundChain[] {
    return this.current.chains;
  }

  get defaultChain(): BoundChain | undefined {
    return this.current.defaultChain;
  }

  /**
   * A new version of this listener on the same socket (LDS changed it, its address unchanged): connections
   * accepted from now on take the new filter chains, those already handed off stay where they are. Returns the
   * old chains, for the caller to drain and close.
   */
  replace(config: ListenerConfig, chains: readonly BoundChain[], defaultChain?: BoundChain): BoundChain[] {
    const old = [...this.allChains];
    this.current = { config, chains, defaultChain };
    this.serverFirstPorts = new Set(config.serverFirstPorts);
    this.selector = new FilterChainSelector(chains.map((c) => ({ match: c.match, value: c })));
    if (this.stats !== undefined) {
      const scope = scopes.listener(statAddress(config.address.address, this.address.port));
      this.filters = buildListenerFilters(config.listenerFilters, this.store, scope);
    }
    return old;
  }

  /** Whether `server` is bound (a listener with bind_to_port false never is). */
  get bound(): boolean {
    return this.server?.listening === true;
  }

  /** Every filter chain, the default one included. */
  get allChains(): readonly BoundChain[] {
    return this.defaultChain ? [...this.chains, this.defaultChain] : this.chains;
  }

  /** use_original_dst: where redirected connections are handed off to. */
  setListenerLookup(lookup: ListenerLookup): void {
    this.lookup = lookup;
  }

  /** Binds and serves at once (a listener of the bootstrap). */
  async start(): Promise<void> {
    await this.bind();
    this.serve();
  }

  /**
   * Binds the listener's address, as Envoy does when a listener is added: rejects (nothing left bound) when it
   * cannot. Port 0 picks a free port (see `address`). Connections accepted from then on wait, held, until
   * `serve()`. A listener with bind_to_port false binds nothing: it only gets the connections a use_original_dst
   * listener hands it.
   */
  async bind(): Promise<void> {
    if (!this.config.bindToPort) {
      this.prepare();
      return;
    }
    // Node has no bind without listen: the socket listens now, and holds what it accepts until the listener serves.
    // Accepted paused: the connection is read through a socket of our own (accepted_socket.ts).
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: true });
    server.on('connection', (accepted: Socket) => this.onAccept(adoptAccepted(accepted)));
    const { address, port, ipv4Compat } = this.config.address;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // As Envoy: an IPv6 socket takes IPv4 connections (as ::ffff:a.b.c.d) only with ipv4_compat.
      const ipv6Only = address.includes(':') && ipv4Compat !== true;
      listenOn(server, { host: address, port, backlog: 4096, ipv6Only }, () => {
        // Before the first connection can be accepted ('listening' comes first): its stats name the bound port.
        server.off('error', reject);
        const a = server.address();
        if (a && typeof a === 'object') this.boundAddress = { address: a.address, port: a.port };
        this.prepare();
        this.held = new HeldConnections(this.hold, this.stats!);
        resolve();
      });
    });
    server.on('error', () => undefined);
    this.server = server;
  }

  /** Takes connections: those held while warming first, in the order they came. */
  serve(): void {
    const held = this.held;
    this.held = undefined;
    held?.release(this.onAccept);
  }

  /** Stats and listener filters, under the listener's scope (which names its bound port). */
  private prepare(): void {
    const scope = scopes.listener(statAddress(this.config.address.address, this.address.port));
    this.stats = this.store.scope(scope, LISTENER_STATS);
    this.filters = buildListenerFilters(this.config.listenerFilters, this.store, scope);
  }

  get address(): { address: string; port: number } {
    return this.boundAddress ?? { address: this.config.address.address, port: this.config.address.port };
  }

  /**
   * A connection accepted on this listener's socket. With original_dst its destination is restored first; with
   * use_original_dst it then belongs to the listener of that destination, when there is one.
   */
  private readonly onAccept = (socket: Socket): void => {
    // The one check warming costs a serving listener.
    if (this.held !== undefined) {
      this.held.add(socket);
      return;
    }
    if (this.config.originalDst) {
      const dst = originalDestination(socket);
      if (
        dst !== undefined &&
        (dst.port !== socket.localPort || dst.address !== plainIp(socket.localAddress ?? ''))
      ) {
        setRestoredDestination(socket, { address: dst.address, port: dst.port });
        const target = this.config.useOriginalDst ? this.lookup?.(dst) : undefined;
        if (target !== undefined && target !== this) {
          this.stats!.downstream_cx_handed_off.inc();
          target.adopt(socket);
          return;
        }
      }
    }
    this.adopt(socket);
  };

  /** Takes a connection: accepted here, or handed off by a use_original_dst listener. */
  adopt(socket: Socket): void {
    const stats = this.stats!;
    stats.downstream_cx_total.inc();
    stats.downstream_cx_active.inc();
    const opened = monotonicMs();
    this.open.add(socket);
    socket.once('close', () => {
      this.open.delete(socket);
      stats.downstream_cx_active.dec();
      stats.downstream_cx_destroy.inc();
      stats.downstream_cx_length_ms.record(monotonicMs() - opened);
    });
    socket.on('error', () => undefined);
    const destination = destinationOf(socket);
    const port = destination.port;
    // Server-first protocols: the client waits for the server's greeting, so sniffing would only add the timeout.
    if (this.filters.length === 0 || this.serverFirstPorts.has(port)) {
      this.dispatch(socket, destination, NOTHING_DETECTED);
      return;
    }
    stats.downstream_pre_cx_active.inc();
    const opts = {
      timeoutMs: this.config.listenerFiltersTimeoutMs,
      continueOnTimeout: this.config.continueOnListenerFiltersTimeout,
    };
    detect(socket, port, this.filters, opts, {
      onDetected: (detected) => {
        stats.downstream_pre_cx_active.dec();
        this.dispatch(socket, destination, detected);
      },
      onTimeout: () => stats.downstream_pre_cx_timeout.inc(),
      onFailed: (why) => {
        stats.downstream_pre_cx_active.dec();
        if (why === 'remote_close') stats.downstream_listener_filter_remote_close.inc();
        else if (why === 'error') stats.downstream_listener_filter_error.inc();
      },
    });
  }

  /** Chooses the connection's filter chain from its addresses and what the listener filters found. */
  private dispatch(socket: Socket, destination: SocketAddress, detected: Detected): void {
    const facts: ConnectionFacts = {
      destinationIp: destination.address,
      destinationPort: destination.port,
      get sourceIp() {
        return socket.remoteAddress ?? '';
      },
      get sourcePort() {
        return socket.remotePort ?? 0;
      },
      serverName: detected.serverName,
      transportProtocol: detected.transportProtocol,
      applicationProtocols: detected.applicationProtocols,
    };
    const chain = this.selector.select(facts) ?? this.defaultChain;
    if (!chain) {
      this.stats!.no_filter_chain_match.inc();
      socket.destroy();
      return;
    }
    setRequestedServerName(socket, detected.serverName);
    this.handOff(
      socket,
      chain,
      detected.transportProtocol === 'tls' ? detected.applicationProtocols : undefined,
    );
  }

  /** The one place a connection leaves the listener for its filter chain (with the ALPN its ClientHello offers). */
  private handOff(socket: Socket, chain: BoundChain, offered?: readonly string[]): void {
    if (chain.tls)
      chain.tls.accept(
        socket,
        (s) => {
          carryRestoredDestination(socket, s);
          carryRequestedServerName(socket, s);
          chain.filter.onConnection(s);
        },
        offered,
      );
    else chain.filter.onConnection(socket);
  }

  /** Stops accepting; existing connections carry on. */
  stopAccepting(): void {
    if (this.server?.listening) this.server.close();
  }

  drainFilters(): void {
    for (const c of this.allChains) c.filter.drain?.();
  }

  /** Resolves once no filter chain has a request in flight. */
  async whenIdle(): Promise<void> {
    await Promise.all(this.allChains.map((c) => c.filter.whenIdle?.()));
  }

  get openConnections(): number {
    return this.open.size;
  }

  /** Closes the socket and every connection, held or served, now. */
  async close(): Promise<void> {
    this.stopAccepting();
    this.held?.close();
    for (const s of this.open) s.destroy();
    await Promise.all(this.allChains.map((c) => c.filter.close()));
  }
}

/** Envoy's stat form of an address: 127.0.0.1_10000, [::]_10000. */
export function statAddress(ip: string, port: number): string {
  return `${ip.includes(':') ? `[${ip}]` : ip}_${port}`;
}

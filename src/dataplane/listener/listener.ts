// A listener: accepts connections on its address, runs its listener filters, and hands each to the filter chain that matches it.

import { createServer, type Server, type Socket } from 'node:net';
import type { FilterChainMatch, ListenerConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { declareStats, type StatsOf, type StatsStore, scopes } from '../observe/stats.js';
import type { DownstreamTls } from '../tls/downstream.js';
import { detect } from './detection.js';
import { type ConnectionFacts, FilterChainSelector } from './filter_chain_match.js';
import { buildListenerFilters, type Detected, type ListenerFilter } from './listener_filters.js';

export const LISTENER_STATS = declareStats({
  counters: [
    'downstream_cx_total',
    'downstream_cx_destroy',
    'no_filter_chain_match',
    'downstream_cx_overflow',
    'downstream_pre_cx_timeout',
    'downstream_listener_filter_remote_close',
    'downstream_listener_filter_error',
  ] as const,
  gauges: ['downstream_cx_active', 'downstream_pre_cx_active'] as const,
  histograms: ['downstream_cx_length_ms'] as const,
});

/** The terminal network filter a chain hands its connections to (HCM or tcp_proxy). */
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

export class Listener {
  private server: Server | undefined;
  private stats: StatsOf<typeof LISTENER_STATS> | undefined;
  private filters: readonly ListenerFilter[] = [];
  private readonly serverFirstPorts: ReadonlySet<number>;
  private readonly selector: FilterChainSelector<BoundChain>;
  private readonly open = new Set<Socket>();
  private boundAddress: { address: string; port: number } | undefined;

  /** `chains` in config order; `defaultChain` (default_filter_chain) takes the connections none of them matches. */
  constructor(
    readonly config: ListenerConfig,
    readonly chains: readonly BoundChain[],
    private readonly store: StatsStore,
    readonly defaultChain?: BoundChain,
  ) {
    this.serverFirstPorts = new Set(config.serverFirstPorts);
    this.selector = new FilterChainSelector(chains.map((c) => ({ match: c.match, value: c })));
  }

  /** Every filter chain, the default one included. */
  get allChains(): readonly BoundChain[] {
    return this.defaultChain ? [...this.chains, this.defaultChain] : this.chains;
  }

  /** Binds and starts accepting. Port 0 picks a free port (see `address`). */
  async start(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true, pauseOnConnect: false });
    server.on('connection', this.onConnection);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(
        { host: this.config.address.address, port: this.config.address.port, backlog: 4096 },
        () => {
          server.off('error', reject);
          resolve();
        },
      );
    });
    server.on('error', () => undefined);
    const a = server.address();
    if (a && typeof a === 'object') this.boundAddress = { address: a.address, port: a.port };
    this.server = server;
    const scope = scopes.listener(statAddress(this.config.address.address, this.address.port));
    this.stats = this.store.scope(scope, LISTENER_STATS);
    this.filters = buildListenerFilters(this.config.listenerFilters, this.store, scope);
  }

  get address(): { address: string; port: number } {
    return this.boundAddress ?? { address: this.config.address.address, port: this.config.address.port };
  }

  private readonly onConnection = (socket: Socket): void => {
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
    const port = socket.localPort ?? 0;
    // Server-first protocols: the client waits for the server's greeting, so sniffing would only add the timeout.
    if (this.filters.length === 0 || this.serverFirstPorts.has(port)) {
      this.dispatch(socket, port, NOTHING_DETECTED);
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
        this.dispatch(socket, port, detected);
      },
      onTimeout: () => stats.downstream_pre_cx_timeout.inc(),
      onFailed: (why) => {
        stats.downstream_pre_cx_active.dec();
        if (why === 'remote_close') stats.downstream_listener_filter_remote_close.inc();
        else if (why === 'error') stats.downstream_listener_filter_error.inc();
      },
    });
  };

  /** Chooses the connection's filter chain from its addresses and what the listener filters found. */
  private dispatch(socket: Socket, port: number, detected: Detected): void {
    const facts: ConnectionFacts = {
      get destinationIp() {
        return socket.localAddress ?? '';
      },
      destinationPort: port,
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
    this.handOff(socket, chain);
  }

  /** The one place a connection leaves the listener for its filter chain. */
  private handOff(socket: Socket, chain: BoundChain): void {
    if (chain.tls) chain.tls.accept(socket, (s) => chain.filter.onConnection(s));
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

  async close(): Promise<void> {
    this.stopAccepting();
    for (const s of this.open) s.destroy();
    await Promise.all(this.allChains.map((c) => c.filter.close()));
  }
}

/** Envoy's stat form of an address: 127.0.0.1_10000, [::]_10000. */
export function statAddress(ip: string, port: number): string {
  return `${ip.includes(':') ? `[${ip}]` : ip}_${port}`;
}

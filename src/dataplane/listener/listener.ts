// A listener: accepts connections on its address and hands each to the filter chain that matches it.

import { createServer, type Server, type Socket } from 'node:net';
import type { ListenerConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { declareStats, type StatsOf, type StatsStore, scopes } from '../observe/stats.js';

export const LISTENER_STATS = declareStats({
  counters: [
    'downstream_cx_total',
    'downstream_cx_destroy',
    'no_filter_chain_match',
    'downstream_cx_overflow',
  ] as const,
  gauges: ['downstream_cx_active'] as const,
  histograms: ['downstream_cx_length_ms'] as const,
});

/** The terminal network filter a chain hands its connections to (HCM or tcp_proxy). */
export interface NetworkFilter {
  onConnection(socket: Socket): void;
  /** Stops new requests on existing connections from being kept alive (HTTP) — optional for L4. */
  drain?(): void;
  whenIdle?(): Promise<void>;
  close(): Promise<void>;
}

export interface BoundChain {
  readonly destinationPort: number | undefined;
  readonly filter: NetworkFilter;
}

export class Listener {
  private server: Server | undefined;
  private stats: StatsOf<typeof LISTENER_STATS> | undefined;
  private readonly open = new Set<Socket>();
  private boundAddress: { address: string; port: number } | undefined;

  constructor(
    readonly config: ListenerConfig,
    readonly chains: readonly BoundChain[],
    private readonly store: StatsStore,
  ) {}

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
    this.stats = this.store.scope(
      scopes.listener(statAddress(this.config.address.address, this.address.port)),
      LISTENER_STATS,
    );
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
    const port = socket.localPort;
    let chain: BoundChain | undefined;
    for (const c of this.chains) {
      if (c.destinationPort === port) {
        chain = c;
        break;
      }
      if (c.destinationPort === undefined && !chain) chain = c;
    }
    if (!chain) {
      stats.no_filter_chain_match.inc();
      socket.destroy();
      return;
    }
    chain.filter.onConnection(socket);
  };

  /** Stops accepting; existing connections carry on. */
  stopAccepting(): void {
    if (this.server?.listening) this.server.close();
  }

  drainFilters(): void {
    for (const c of this.chains) c.filter.drain?.();
  }

  get openConnections(): number {
    return this.open.size;
  }

  async close(): Promise<void> {
    this.stopAccepting();
    for (const s of this.open) s.destroy();
    await Promise.all(this.chains.map((c) => c.filter.close()));
  }
}

/** Envoy's stat form of an address: 127.0.0.1_10000, [::]_10000. */
export function statAddress(ip: string, port: number): string {
  return `${ip.includes(':') ? `[${ip}]` : ip}_${port}`;
}

// istio.stats as a network filter: each connection of its chain counted in Istio's TCP metrics
// (istio_tcp_connections_opened_total / _closed_total, istio_tcp_sent_bytes_total / _received_bytes_total).

import type { Socket } from 'node:net';
import type { FilterChainConfig, NetworkIstioStatsConfig } from '../../config/model.js';
import type { NetworkFilter } from '../listener/listener.js';
import { socketBytes } from '../network/kernel_relay.js';
import { connectionStreamInfo } from '../observe/connection_stream_info.js';
import type { Logger } from '../observe/log.js';
import { withNetworkRbac } from '../rbac/network_filter.js';
import {
  downstreamIdentity,
  labelKey,
  labelValues,
  NO_IDENTITY,
  responseFlagsLabel,
  type TrafficFacts,
} from './labels.js';
import { IstioSeries, recordBuild, type TcpSeries } from './series.js';
import {
  destinationService,
  type IstioStatsEnv,
  type LocalWorkload,
  localWorkload,
  type Reporter,
  reporterOf,
} from './workload.js';

/** An open connection and the byte counts it has reported so far. */
interface Tracked {
  readonly series: TcpSeries;
  sent: number;
  received: number;
}

/**
 * Wraps the next filter of the chain. Istio's filter reports a connection once its metadata exchange has told who
 * the peer is; Remora, which has no metadata exchange, knows all it will know once the next filter took the
 * connection (the peer certificate from the handshake, the cluster tcp_proxy chose): it reports the connection
 * opened then, its bytes every tcp_reporting_duration and when it closes.
 */
export class IstioStatsNetworkFilter implements NetworkFilter {
  private readonly reporter: Reporter;
  private readonly local: LocalWorkload;
  private readonly series: IstioSeries;
  private readonly open = new Map<Socket, Tracked>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: NetworkIstioStatsConfig,
    private readonly next: NetworkFilter,
    env: IstioStatsEnv,
  ) {
    this.reporter = reporterOf(config, env.trafficDirection);
    this.local = localWorkload(env.node);
    this.series = new IstioSeries(env.store, config);
    recordBuild(env.store, this.local.istioVersion);
  }

  onConnection(socket: Socket): void {
    // First the next filter: tcp_proxy chooses its cluster (or fails to) synchronously.
    this.next.onConnection(socket);
    const series = this.seriesOf(socket);
    series.opened?.inc();
    if (socket.destroyed) return this.closed(socket, { series, sent: 0, received: 0 });
    const tracked: Tracked = { series, sent: 0, received: 0 };
    this.open.set(socket, tracked);
    socket.once('close', () => {
      this.open.delete(socket);
      this.closed(socket, tracked);
      if (this.open.size === 0) this.stopTimer();
    });
    this.startTimer();
  }

  /** A connection an RBAC filter after this one refused: opened and closed, as Envoy's filter sees it. */
  onRejected(socket: Socket, details: string): void {
    this.next.onRejected?.(socket, details);
    const series = this.seriesOf(socket);
    series.opened?.inc();
    series.closed?.inc();
  }

  private seriesOf(socket: Socket): TcpSeries {
    const info = connectionStreamInfo(socket);
    const facts: TrafficFacts = {
      service: destinationService(() => '', info?.upstreamCluster, undefined),
      protocol: 'tcp',
      // Istio leaves the response code of a connection unset, which its label shows as 0.
      responseCode: '0',
      grpcStatus: '',
      responseFlags: responseFlagsLabel(info?.responseFlags ?? []),
    };
    const id = this.reporter === 'source' ? NO_IDENTITY : downstreamIdentity(socket);
    return this.series.tcp(labelKey(id, facts), () => labelValues(this.reporter, this.local, id, facts));
  }

  /** Adds what the connection sent and received since its last report. */
  private reportBytes(socket: Socket, t: Tracked): void {
    const bytes = socketBytes(socket);
    const sent = bytes.written;
    const received = bytes.read;
    if (sent > t.sent) t.series.sent?.inc(sent - t.sent);
    if (received > t.received) t.series.received?.inc(received - t.received);
    t.sent = sent;
    t.received = received;
  }

  private closed(socket: Socket, t: Tracked): void {
    this.reportBytes(socket, t);
    t.series.closed?.inc();
  }

  /** One timer for all the filter's connections, running only while some are open. */
  private startTimer(): void {
    const every = this.config.tcpReportingDurationMs;
    if (this.timer !== undefined || every === 0) return;
    this.timer = setInterval(() => {
      for (const [socket, t] of this.open) this.reportBytes(socket, t);
    }, every);
    this.timer.unref();
  }

  private stopTimer(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  drain(): void {
    this.next.drain?.();
  }

  whenIdle(): Promise<void> {
    return this.next.whenIdle?.() ?? Promise.resolve();
  }

  whenDrained(): Promise<void> {
    return this.next.whenDrained?.() ?? this.next.whenIdle?.() ?? Promise.resolve();
  }

  close(): Promise<void> {
    this.stopTimer();
    return this.next.close();
  }
}

/**
 * A chain's network filters in order around its terminal one: the RBAC filters and istio.stats where the config put
 * it among them.
 */
export function withNetworkFilters(
  terminal: NetworkFilter,
  chain: FilterChainConfig,
  env: IstioStatsEnv,
  logger: Logger,
): NetworkFilter {
  const stats = chain.istioStats;
  if (stats === undefined) return withNetworkRbac(terminal, chain.rbac, env.store, logger);
  const rbac = chain.rbac ?? [];
  const inner = withNetworkRbac(terminal, rbac.slice(stats.afterRbac), env.store, logger);
  const counted = new IstioStatsNetworkFilter(stats, inner, env);
  return withNetworkRbac(counted, rbac.slice(0, stats.afterRbac), env.store, logger);
}

// Envoy's tcp_proxy network filter: each downstream connection piped to one upstream host, with half-close.

import type { Socket } from 'node:net';
import type { TcpProxyConfig } from '../../config/model.js';
import { isTlsSocket } from '../../lazy_builtins.js';
import { monotonicMs } from '../clock.js';
import { claimReads } from '../listener/accepted_socket.js';
import { destinationOf, restoredDestination } from '../listener/restored_destination.js';
import { AccessLogger } from '../observe/access_log.js';
import { publishConnectionStreamInfo } from '../observe/connection_stream_info.js';
import { declareStats, type StatsOf, type StatsStore, scopes } from '../observe/stats.js';
import { formatAddress, newStreamInfo, type StreamInfo } from '../observe/stream_info.js';
import { connectionFacts } from '../rbac/connection_facts.js';
import { readIntoSharedBuffer, relayWrite } from '../read_buffer.js';
import { IdleTimer } from '../timers.js';
import { countConnectionClosed, countConnectionOpened } from '../upstream/accounting.js';
import type { Cluster } from '../upstream/cluster.js';
import type { ClusterManager } from '../upstream/cluster_manager.js';
import { connectToHost } from '../upstream/connect.js';
import type { Host } from '../upstream/host.js';
import { xxhash64 } from '../upstream/lb/hash.js';
import { pickWeighted } from '../upstream/weighted.js';
import {
  countRelayedBytes,
  kernelRelayAvailable,
  type RelayCounts,
  type RelayedPair,
  relayInKernel,
  socketBytes,
} from './kernel_relay.js';

export const TCP_PROXY_STATS = declareStats({
  counters: [
    'downstream_cx_total',
    'downstream_cx_no_route',
    'downstream_cx_rx_bytes_total',
    'downstream_cx_tx_bytes_total',
    'downstream_flow_control_paused_reading_total',
    'downstream_flow_control_resumed_reading_total',
    'idle_timeout',
    'upstream_flush_total',
  ] as const,
  gauges: [
    'downstream_cx_rx_bytes_buffered',
    'downstream_cx_tx_bytes_buffered',
    'upstream_flush_active',
  ] as const,
  histograms: [] as const,
});

export class TcpProxy {
  readonly stats: StatsOf<typeof TCP_PROXY_STATS>;
  private readonly accessLogs: AccessLogger[];
  private readonly sockets = new Set<Socket>();
  private closedWaiters: (() => void)[] = [];

  constructor(
    readonly config: TcpProxyConfig,
    private readonly clusters: ClusterManager,
    store: StatsStore,
    /** Publish each connection's StreamInfo for the filters before this one (istio.stats reads it). */
    private readonly publishStreamInfo = false,
  ) {
    this.stats = store.scope(scopes.tcp(config.statPrefix), TCP_PROXY_STATS);
    this.accessLogs = config.accessLogs.map((c) => new AccessLogger(c));
  }

  onConnection(downstream: Socket): void {
    this.stats.downstream_cx_total.inc();
    const info = this.streamInfo(downstream);
    if (this.publishStreamInfo) publishConnectionStreamInfo(downstream, info);
    this.sockets.add(downstream);
    downstream.pause();
    downstream.once('close', () => {
      this.sockets.delete(downstream);
      if (this.sockets.size === 0) for (const w of this.closedWaiters.splice(0)) w();
    });
    const wc = pickWeighted(this.config.clusters, this.config.totalWeight);
    info.upstreamCluster = wc.name;
    const cluster = this.clusters.get(wc.name);
    if (!cluster) {
      this.stats.downstream_cx_no_route.inc();
      info.responseFlags.push('NR');
      return this.end(downstream, info);
    }
    if (cluster.dropsOverload()) {
      // policy.drop_overloads: the connection is closed before a host is chosen, once (not per connect attempt).
      cluster.stats.upstream_rq_drop_overload.inc();
      info.responseFlags.push('DO');
      info.connectionTerminationDetails = cluster.dropOverloadReason();
      return this.end(downstream, info);
    }
    this.connectUpstream(downstream, cluster, info, 1);
  }

  /**
   * A connection an RBAC filter before this one closed: counted and logged as Envoy's tcp_proxy logs it, with the
   * denial as its termination details; no upstream is chosen.
   */
  onRejected(downstream: Socket, details: string): void {
    this.stats.downstream_cx_total.inc();
    if (this.accessLogs.length === 0) return;
    const info = this.streamInfo(downstream);
    info.connectionTerminationDetails = details;
    this.log(info);
  }

  private streamInfo(downstream: Socket): StreamInfo {
    const destination = destinationOf(downstream);
    const info = newStreamInfo(
      'TCP',
      formatAddress(downstream.remoteAddress, downstream.remotePort),
      formatAddress(destination.address, destination.port),
    );
    if (this.accessLogs.length > 0 && isTlsSocket(downstream)) {
      info.downstreamPeer = connectionFacts(downstream).peer;
    }
    return info;
  }

  private connectUpstream(downstream: Socket, cluster: Cluster, info: StreamInfo, attempt: number): void {
    const cs = cluster.stats;
    if (cluster.breaker.connections >= cluster.breaker.limits.maxConnections) {
      cs.upstream_cx_overflow.inc();
      info.responseFlags.push('UO');
      return this.end(downstream, info);
    }
    const host = cluster.chooseHost({
      hashKey: downstream.remoteAddress ? xxhash64(downstream.remoteAddress) : undefined,
      originalDestination: restoredDestination(downstream),
    });
    if (!host) {
      cs.upstream_cx_none_healthy.inc();
      info.responseFlags.push('UH');
      info.connectionTerminationDetails = cluster.config.originalDst
        ? 'ORIGINAL_DST cluster: the connection has no original destination (it was not redirected)'
        : cluster.allHosts().length === 0
          ? `cluster ${JSON.stringify(cluster.config.name)} has no endpoints${cluster.endpointsStale ? ' (they went stale: no ClusterLoadAssignment within endpoint_stale_after)' : ''}`
          : `cluster ${JSON.stringify(cluster.config.name)} has no healthy host`;
      return this.end(downstream, info);
    }
    info.upstreamHost = host.key;
    const sink: UpstreamSink = { onData: undefined };
    // Upstream bytes land in one shared buffer (no allocation per read, no Readable machinery).
    const onread = readIntoSharedBuffer((chunk) => sink.onData!(chunk));
    // The host's transport socket: the cluster's own, or the one its metadata selects (transport_socket_matches).
    const tls = host.tls;
    const upstream: Socket = connectToHost({ config: cluster.config, tls }, host, {
      onread,
      allowHalfOpen: true,
    });
    const timer = setTimeout(
      () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })),
      cluster.config.connectTimeoutMs,
    );
    let connected = false;
    const onConnectError = (err: Error): void => {
      clearTimeout(timer);
      cs.upstream_cx_connect_fail.inc();
      host.counters.cxConnectFail++;
      if ((err as { code?: string }).code === 'ETIMEDOUT') cs.upstream_cx_connect_timeout.inc();
      if (attempt < this.config.maxConnectAttempts && !downstream.destroyed) {
        return this.connectUpstream(downstream, cluster, info, attempt + 1);
      }
      info.responseFlags.push('UF');
      info.upstreamTransportFailureReason = err.message;
      this.end(downstream, info);
    };
    upstream.once('error', onConnectError);
    // With TLS, connected means the handshake and the verification passed.
    upstream.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      connected = true;
      upstream.off('error', onConnectError);
      info.upstreamLocalAddress = formatAddress(upstream.localAddress, upstream.localPort);
      this.splice(downstream, upstream, sink, cluster, host, info);
    });
    downstream.once('close', () => {
      if (!connected) upstream.destroy();
    });
  }

  private splice(
    downstream: Socket,
    upstream: Socket,
    sink: UpstreamSink,
    cluster: Cluster,
    host: Host,
    info: StreamInfo,
  ): void {
    const cs = cluster.stats;
    countConnectionOpened(cs, cluster.breaker, host, undefined);
    const idle = this.config.idleTimeoutMs;
    /** The kernel relay while it has the pair, and the bytes it moved once it let go. */
    let kernel: RelayedPair | undefined;
    let relayed: RelayCounts = { sent: 0, received: 0, errno: 0 };
    const stopKernel = (): void => {
      if (kernel !== undefined) relayed = kernel.stop();
      kernel = undefined;
    };
    // One timer for the pair: bytes relayed in either direction count as activity.
    const timer =
      idle > 0
        ? new IdleTimer(() => {
            // The kernel relay's reads do not touch the timer: it asks how long the pair has been quiet.
            const quiet = kernel?.idleMs();
            if (quiet !== undefined && quiet < idle) return timer!.set(idle - quiet);
            this.stats.idle_timeout.inc();
            info.connectionTerminationDetails = 'idle_timeout';
            downstream.destroy();
            upstream.destroy();
          })
        : undefined;
    timer?.set(idle);
    let closed = 0;
    const onClose = (): void => {
      if (++closed < 2) {
        // One side is gone for good (reset or fully closed): the other has nothing left to talk to.
        if (downstream.destroyed && !upstream.destroyed && !downstream.readableEnded) upstream.destroy();
        if (upstream.destroyed && !downstream.destroyed && !upstream.readableEnded) downstream.destroy();
        return;
      }
      timer?.close();
      const { read: rx, written: tx } = socketBytes(downstream);
      this.stats.downstream_cx_rx_bytes_total.inc(rx);
      this.stats.downstream_cx_tx_bytes_total.inc(tx);
      countConnectionClosed(cs, cluster.breaker, host, {
        bytesRead: upstream.bytesRead + relayed.received,
        bytesWritten: upstream.bytesWritten + relayed.sent,
      });
      info.bytesReceived = rx;
      info.bytesSent = tx;
      this.log(info);
    };
    downstream.on('error', () => upstream.destroy());
    upstream.on('error', () => downstream.destroy());
    downstream.once('close', onClose);
    upstream.once('close', onClose);

    const relayInNode = (): void => {
      relay(downstream, upstream, timer, (onData) => claimReads(downstream, onData));
      relay(upstream, downstream, timer, (onData) => {
        sink.onData = onData;
        return true;
      });
      downstream.resume();
      upstream.resume();
    };
    if (!kernelRelayAvailable() || streamEnded(downstream)) return relayInNode();
    // Node reads neither socket from here on. What the client sent before the upstream connected goes first,
    // through Node; the kernel relay takes the pair once Node holds no bytes for either socket.
    downstream.pause();
    upstream.pause();
    const early = takeBuffered(downstream);
    const toKernel = (): void => {
      if (downstream.destroyed || upstream.destroyed) return;
      kernel = relayInKernel(downstream, upstream, (counts) => {
        kernel = undefined;
        relayed = counts;
        // Both directions ended (each FIN passed on) or one failed: either way the connection is over.
        downstream.destroy();
        upstream.destroy();
      });
      if (kernel === undefined) return relayInNode();
      countRelayedBytes(downstream, () => kernel?.counts() ?? relayed);
      // Closing a socket closes its descriptor at once: the relay lets go of the pair first.
      beforeDestroy(downstream, stopKernel);
      beforeDestroy(upstream, stopKernel);
    };
    if (early === undefined) return toKernel();
    timer?.touch();
    upstream.write(early, (err) => {
      if (!err) toKernel();
    });
  }

  private end(downstream: Socket, info: StreamInfo): void {
    downstream.destroy();
    this.log(info);
  }

  private log(info: StreamInfo): void {
    info.durationMs = monotonicMs() - info.startMonotonic;
    for (const l of this.accessLogs) l.log(info);
  }

  /** Resolves once every connection this filter took has closed (an old version of a listener retiring). */
  whenDrained(): Promise<void> {
    if (this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const w of this.closedWaiters.splice(0)) w();
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.accessLogs.map((l) => l.close()));
  }
}

/** Whether the stream has seen the end of its input (possibly with bytes still buffered before it). */
function streamEnded(socket: Socket): boolean {
  return socket.readableEnded || (socket as unknown as ReadableInternals)._readableState?.ended === true;
}

interface ReadableInternals {
  _readableState?: { ended?: boolean };
}

/** The bytes a paused socket's stream holds, taken out of it (undefined when none). */
function takeBuffered(socket: Socket): Buffer | undefined {
  if (socket.readableLength === 0) return undefined;
  const chunks: Buffer[] = [];
  for (let c = socket.read() as Buffer | null; c !== null; c = socket.read() as Buffer | null) chunks.push(c);
  // read() restarts the handle to refill the stream: the socket stays paused.
  socket.pause();
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/**
 * Runs `fn` before the socket is destroyed, whoever destroys it: `_destroy` is the stream's documented hook for
 * implementers, and Socket's closes the descriptor.
 */
function beforeDestroy(socket: Socket, fn: () => void): void {
  const s = socket as unknown as { _destroy(err: Error | null, cb: (err?: Error | null) => void): void };
  const original = s._destroy;
  s._destroy = function (this: unknown, err, cb) {
    fn();
    original.call(this, err, cb);
  };
}

/** Where an upstream socket's reads go once it is spliced; reads cannot come earlier (they need a connect). */
interface UpstreamSink {
  onData: ((chunk: Buffer) => boolean) | undefined;
}

/**
 * Copies `from` to `to` with backpressure, and passes on a half-close (FIN) once `from` has ended. `claim` hands
 * `from`'s reads (from the shared read buffer: the upstream's sink, an accepted socket's claimReads) to the relay;
 * when it cannot, the relay listens for 'data'. A read `to` cannot take at once pauses `from` until `to` drains.
 */
function relay(
  from: Socket,
  to: Socket,
  timer: IdleTimer | undefined,
  claim: (onData: (chunk: Buffer) => boolean) => boolean,
): void {
  const onData = (chunk: Buffer): boolean => {
    timer?.touch();
    return relayWrite(to, chunk);
  };
  if (!claim(onData))
    from.on('data', (chunk: Buffer) => {
      if (!onData(chunk)) from.pause();
    });
  to.on('drain', () => from.resume());
  from.on('end', () => to.end());
}

// The ADS gRPC server: serves each proxy the snapshot the cache holds for its node, state of the world or
// delta, and pushes (debounced) when that snapshot changes.

import * as grpc from '@grpc/grpc-js';
import {
  type DeltaDiscoveryRequest,
  type DiscoveryRequest,
  type NodeJson,
  xdsProtos,
} from '../../xds/protos.js';
import type { SnapshotCache } from './cache.js';
import { Debouncer } from './debounce.js';
import { DeltaStream } from './delta_stream.js';
import { XdsMetrics } from './metrics.js';
import { SotwStream } from './sotw_stream.js';
import type { AdsStream, ProxyStatus, StreamContext } from './stream_state.js';

export const DEFAULT_DEBOUNCE_MS = 100;
export const DEFAULT_MAX_DEBOUNCE_MS = 1000;
/** How long close() waits for streams to finish before cutting them. */
const SHUTDOWN_GRACE_MS = 2000;

export interface AdsServerOptions {
  readonly cache: SnapshotCache;
  /** Default 0.0.0.0. */
  readonly host?: string;
  /** Default 15010 (Istio's plaintext xDS port); 0 picks a free port. */
  readonly port?: number;
  /** Quiet time after a change before pushing it; default 100 ms. */
  readonly debounceMs?: number;
  /** Ceiling on the delay of a push since the first change it carries; default 1 s. */
  readonly maxDebounceMs?: number;
  readonly now?: () => number;
  /** Told when a node key gets its first open stream and when its last one ends. */
  readonly proxies?: ProxyWatcher;
}

/**
 * Who generates snapshots on demand. `opened` runs before the first request of the key is answered, so a snapshot
 * it sets is served at once; it must not throw.
 */
export interface ProxyWatcher {
  opened(key: string, node: NodeJson): void;
  closed(key: string): void;
}

export class AdsServer {
  readonly metrics: XdsMetrics;
  private readonly streams = new Set<AdsStream>();
  private readonly byKey = new Map<string, Set<AdsStream>>();
  private readonly debouncer: Debouncer<string>;
  private readonly cancelWatch: () => void;
  private nonce = 0;
  private streamIds = 0;
  private closing: Promise<void> | undefined;
  private boundPort = 0;

  private constructor(
    private readonly grpcServer: grpc.Server,
    private readonly cache: SnapshotCache,
    opts: AdsServerOptions,
  ) {
    const now = opts.now ?? Date.now;
    this.metrics = new XdsMetrics(
      () => this.streams.size,
      () => cache.rejectedTotal,
    );
    this.debouncer = new Debouncer(
      {
        delayMs: opts.debounceMs ?? DEFAULT_DEBOUNCE_MS,
        maxDelayMs: opts.maxDebounceMs ?? DEFAULT_MAX_DEBOUNCE_MS,
        now,
      },
      (key, changeAt) => this.push(key, changeAt),
    );
    this.cancelWatch = cache.onChange((key) => {
      if (this.byKey.has(key)) this.debouncer.trigger(key);
    });
    const ctx: StreamContext = {
      cache,
      metrics: this.metrics,
      now,
      nextNonce: () => String(++this.nonce),
      register: (s) => {
        let set = this.byKey.get(s.nodeKey);
        if (set === undefined) {
          set = new Set();
          this.byKey.set(s.nodeKey, set);
          opts.proxies?.opened(s.nodeKey, s.node ?? {});
        }
        set.add(s);
      },
      unregister: (s) => {
        this.streams.delete(s);
        const set = this.byKey.get(s.nodeKey);
        if (set === undefined || !set.delete(s)) return;
        if (set.size === 0) {
          this.byKey.delete(s.nodeKey);
          opts.proxies?.closed(s.nodeKey);
        }
      },
    };
    grpcServer.addService(xdsProtos().adsService, {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, object>) => {
        this.streams.add(new SotwStream(++this.streamIds, 'sotw', ctx, call));
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, object>) => {
        this.streams.add(new DeltaStream(++this.streamIds, 'delta', ctx, call));
      },
    });
  }

  /** Starts serving ADS (plaintext) on host:port; resolves once bound. */
  static async listen(opts: AdsServerOptions): Promise<AdsServer> {
    const server = new grpc.Server({
      // Proxies hold one stream for hours: ping idle connections, and let clients ping.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.min_ping_interval_without_data_ms': 10_000,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    });
    const host = opts.host ?? '0.0.0.0';
    const address = host.includes(':') ? `[${host}]:${opts.port ?? 15010}` : `${host}:${opts.port ?? 15010}`;
    const ads = new AdsServer(server, opts.cache, opts);
    try {
      ads.boundPort = await new Promise<number>((resolve, reject) => {
        server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        );
      });
    } catch (err) {
      await ads.close();
      throw err;
    }
    return ads;
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Every connected proxy with SYNCED / STALE / NOT SENT per type and its last NACK. */
  status(): ProxyStatus[] {
    return [...this.streams].filter((s) => s.node !== undefined).map((s) => s.status());
  }

  /** Ends every stream with OK and stops the server; pending pushes are dropped. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      this.cancelWatch();
      this.debouncer.close();
      for (const s of [...this.streams]) s.close();
      this.closing = new Promise<void>((resolve) => {
        const timer = setTimeout(() => this.grpcServer.forceShutdown(), SHUTDOWN_GRACE_MS);
        this.grpcServer.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.closing;
  }

  private push(key: string, changeAt: number): void {
    const snapshot = this.cache.get(key);
    const streams = this.byKey.get(key);
    if (snapshot === undefined || streams === undefined) return;
    for (const s of [...streams]) s.push(snapshot, changeAt);
  }
}

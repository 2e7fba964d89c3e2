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
import type { AdsStream, NodeAdmission, ProxyStatus, StreamContext, StreamRefusal } from './stream_state.js';

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

/**
 * The gate of a port that serves ADS only to authenticated callers: at a stream's start it refuses the stream, or
 * says how to admit the node its first request names.
 */
export interface AdsGuard {
  open(
    call: grpc.ServerDuplexStream<unknown, unknown>,
  ): { readonly refused: StreamRefusal } | { readonly admit: NodeAdmission };
}

export class AdsServer {
  readonly metrics: XdsMetrics;
  private readonly streams = new Set<AdsStream>();
  private readonly byKey = new Map<string, Set<AdsStream>>();
  private readonly debouncer: Debouncer<string>;
  private readonly cancelWatch: () => void;
  private readonly ctx: StreamContext;
  private nonce = 0;
  private streamIds = 0;
  private closing: Promise<void> | undefined;
  private boundPort = 0;

  private constructor(
    private readonly grpcServer: grpc.Server | undefined,
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
    this.ctx = {
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
    grpcServer?.addService(xdsProtos().adsService, this.handlers(undefined));
  }

  /**
   * Serves ADS on another gRPC server too (the CA's TLS port), with the same snapshots, pushes and status. With a
   * guard, each stream is let in only as it allows. Call before that server is bound; it is shut down by its owner.
   */
  serveOn(server: grpc.Server, guard?: AdsGuard): void {
    server.addService(xdsProtos().adsService, this.handlers(guard));
  }

  private handlers(guard: AdsGuard | undefined): grpc.UntypedServiceImplementation {
    const open = (
      call: grpc.ServerDuplexStream<unknown, unknown>,
      make: (admit?: NodeAdmission) => AdsStream,
    ) => {
      if (this.closing !== undefined) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the control plane is shutting down' });
        return;
      }
      const gate = guard?.open(call);
      if (gate !== undefined && 'refused' in gate) {
        call.emit('error', gate.refused);
        return;
      }
      this.streams.add(make(gate?.admit));
    };
    return {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<DiscoveryRequest, object>) =>
        open(call, (admit) => new SotwStream(++this.streamIds, 'sotw', this.ctx, call, admit)),
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, object>) =>
        open(call, (admit) => new DeltaStream(++this.streamIds, 'delta', this.ctx, call, admit)),
    };
  }

  /** The ADS service without a port of its own: it serves only where serveOn() puts it. */
  static create(opts: Omit<AdsServerOptions, 'host' | 'port'>): AdsServer {
    return new AdsServer(undefined, opts.cache, opts);
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

  /** The bound port (useful with port 0); 0 for a server made by create(). */
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
      const server = this.grpcServer;
      this.closing = new Promise<void>((resolve) => {
        if (server === undefined) return resolve();
        const timer = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
        server.tryShutdown(() => {
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

// The sidecar's ADS client: one gRPC stream to the control plane (state of the world or delta), the per-type
// subscriptions, ACK/NACK of every response, and reconnection with back-off to the next server when one fails.

import * as grpc from '@grpc/grpc-js';
import { formatErrors } from '../../config/result.js';
import {
  type Any,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
  type NodeJson,
  xdsProtos,
} from '../../xds/protos.js';
import type { Logger } from '../observe/log.js';
import type { Counter, Gauge, StatsStore } from '../observe/stats.js';
import type { UpstreamTls } from '../tls/upstream.js';
import { adsChannel } from './ads_channel.js';
import { RESOURCE_TYPES, type XdsResourceType } from './resource_types.js';
import { type ApplyChanges, type IncomingResource, TypeState } from './type_state.js';

/** google.rpc.Code INVALID_ARGUMENT: what a NACK says about a resource it refuses. */
const INVALID_ARGUMENT = 3;
/** A NACK's message is cut past this many characters (a hostile config must not make megabyte requests). */
const MAX_NACK_CHARS = 16_384;
/** Envoy's back-off for its xDS streams: 500 ms doubling up to 30 s, with jitter. */
const DEFAULT_BACKOFF = { baseMs: 500, maxMs: 30_000 } as const;

/** One control plane to stream from. */
export interface AdsTarget {
  /** The gRPC target: "10.0.0.1:15010", "dns:///istiod:15010". */
  readonly uri: string;
  /**
   * The TLS of the bootstrap's ADS cluster (its UpstreamTlsContext), absent for plaintext. Each connection takes
   * the context in force when it is made: after the workload certificate rotates, the next reconnect presents the
   * new one, while an open stream keeps going on the old.
   */
  readonly tls?: UpstreamTls;
}

export interface AdsClientOptions {
  /** The control planes, tried in turn: a failure moves to the next. */
  readonly targets: readonly AdsTarget[];
  readonly node: NodeJson;
  /** DELTA_GRPC: incremental xDS; otherwise state of the world. */
  readonly delta: boolean;
  /** Types subscribed as wildcards from the start (LDS, CDS, as the bootstrap asks). */
  readonly wildcards: readonly XdsResourceType[];
  readonly apply: ApplyChanges;
  /** Called after each response (or cache load) was processed, with its type's state. */
  readonly onProcessed?: (state: TypeState) => void;
  readonly logger: Logger;
  readonly store: StatsStore;
  readonly backoff?: { readonly baseMs: number; readonly maxMs: number };
  readonly random?: () => number;
}

type Msg = Record<string, unknown>;

interface Stream {
  readonly target: string;
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<Msg, Msg>;
  /** Envoy sends the node on the first request of a stream only. */
  nodeSent: boolean;
  responded: boolean;
}

interface TypeStats {
  readonly attempt: Counter;
  readonly success: Counter;
  readonly rejected: Counter;
}

const STAT_PREFIX: Readonly<Record<string, string>> = {
  CDS: 'cluster_manager.cds.',
  EDS: 'cluster_manager.eds.',
  LDS: 'listener_manager.lds.',
  RDS: 'rds.',
};

export class AdsClient {
  private readonly states = new Map<string, TypeState>();
  private readonly typeStats = new Map<string, TypeStats>();
  private readonly connectedState: Gauge;
  private readonly streamFailures: Counter;
  private stream: Stream | undefined;
  private failures = 0;
  private nextTarget = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Set while a connection waits for the TLS secrets of its target (the workload certificate). */
  private waitingForSecrets = false;
  /** Responses, cache loads and subscription changes run one at a time, in the order they came. */
  private queue: Promise<void> = Promise.resolve();
  private started = false;
  private closed = false;

  constructor(private readonly opts: AdsClientOptions) {
    for (const type of RESOURCE_TYPES) {
      this.states.set(type.typeUrl, new TypeState(type, opts.wildcards.includes(type)));
      const p = STAT_PREFIX[type.short] ?? `${type.short.toLowerCase()}.`;
      this.typeStats.set(type.typeUrl, {
        attempt: opts.store.counter(`${p}update_attempt`),
        success: opts.store.counter(`${p}update_success`),
        rejected: opts.store.counter(`${p}update_rejected`),
      });
    }
    this.connectedState = opts.store.gauge('control_plane.connected_state');
    this.streamFailures = opts.store.counter('control_plane.stream_failures');
  }

  state(type: XdsResourceType): TypeState {
    return this.states.get(type.typeUrl)!;
  }

  /** Whether a stream to a control plane is open and has answered. */
  get connected(): boolean {
    return this.stream?.responded === true;
  }

  /** The server the current stream goes to. */
  get target(): string | undefined {
    return this.stream?.target;
  }

  /**
   * Runs what the disk cache holds of one type through the same validation and apply as a response, without
   * answering anyone. Resolves once applied.
   */
  loadCached(type: XdsResourceType, version: string, resources: readonly Any[]): Promise<void> {
    return this.enqueue(async () => {
      const state = this.state(type);
      const errors = await state.process(
        { resources: resources.map((any) => ({ any })), version, fullState: true, removed: [] },
        this.opts.apply,
        new Date(),
      );
      if (errors.length > 0) {
        this.opts.logger.warn('cached xDS resources refused', {
          type: type.short,
          errors: formatErrors(errors),
        });
      }
      this.opts.onProcessed?.(state);
    });
  }

  /**
   * The names of EDS or RDS resources the proxy needs. Resources no longer named are dropped (and removed from
   * the running proxy); a changed set is sent to the server after what is being processed now.
   */
  setNames(type: XdsResourceType, names: Iterable<string>): Promise<void> {
    const next = new Set(names);
    return this.enqueue(async () => {
      const state = this.state(type);
      if (state.wildcard || type.fullState) return;
      const before = state.names;
      if (next.size === before.size && [...next].every((n) => before.has(n))) return;
      state.names = next;
      const gone = state.dropUnsubscribed();
      if (gone.length > 0) await this.opts.apply({ type, upserted: [], removed: gone, resent: [] });
      if (this.stream !== undefined) {
        if (this.opts.delta) {
          this.write(this.stream, {
            type_url: type.typeUrl,
            resource_names_subscribe: [...next].filter((n) => !before.has(n)),
            resource_names_unsubscribe: [...before].filter((n) => !next.has(n)),
          });
        } else this.writeSotw(this.stream, state);
      }
    });
  }

  /** Opens the stream; from then on the client keeps one open until close(). */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.connect();
  }

  close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.endStream();
    return this.queue;
  }

  private connect(): void {
    if (this.closed || this.waitingForSecrets) return;
    const targets = this.opts.targets;
    const { uri: target, tls } = targets[this.nextTarget % targets.length]!;
    if (tls !== undefined && !tls.readiness.ready) {
      // The ADS cluster's certificate (the workload's, from the CA) has not arrived: connect once it has.
      this.waitingForSecrets = true;
      this.opts.logger.info('waiting for the TLS secrets of the control plane connection', {
        target,
        secrets: tls.readiness.missingSecrets(),
      });
      void tls.readiness.whenReady().then(() => {
        this.waitingForSecrets = false;
        this.connect();
      });
      return;
    }
    const channel = adsChannel(target, tls);
    const Ctor = grpc.makeGenericClientConstructor(xdsProtos().adsService, 'AggregatedDiscoveryService');
    const client = new Ctor(target, channel.credentials, {
      // One stream for hours: keepalive pings find a control plane that vanished without closing.
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.primary_user_agent': 'remora',
      ...channel.options,
    });
    const method = this.opts.delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources';
    const open = (client as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>)[method]!;
    const call = open.call(client);
    const stream: Stream = { target, client, call, nodeSent: false, responded: false };
    this.stream = stream;
    for (const s of this.states.values()) s.nonce = '';
    call.on('data', (r: Msg) => {
      if (!stream.responded) {
        stream.responded = true;
        this.failures = 0;
        this.connectedState.set(1);
        this.opts.logger.info('connected to the control plane', { target, transport: channel.transport });
      }
      void this.enqueue(() => this.onResponse(stream, r));
    });
    call.on('error', () => undefined);
    call.on('status', (status: grpc.StatusObject) => this.onEnd(stream, status));
    for (const type of RESOURCE_TYPES) {
      const state = this.state(type);
      if (!state.subscribed) continue;
      if (this.opts.delta) {
        const versions: Record<string, string> = {};
        for (const [name, r] of state.held) versions[name] = r.version;
        this.write(stream, {
          type_url: type.typeUrl,
          resource_names_subscribe: state.wildcard ? [] : [...state.names],
          initial_resource_versions: versions,
        });
      } else this.writeSotw(stream, state);
    }
  }

  private onEnd(stream: Stream, status: grpc.StatusObject): void {
    if (this.stream !== stream) return;
    this.endStream();
    if (this.closed) return;
    this.streamFailures.inc();
    // A stream that worked earns a quick retry; one that never answered backs off further each time.
    if (stream.responded) this.failures = 0;
    this.nextTarget++;
    const delay = this.backoffMs();
    this.failures++;
    this.opts.logger.warn('control plane stream ended: reconnecting', {
      target: stream.target,
      code: grpc.status[status.code] ?? status.code,
      details: status.details,
      next_target: this.opts.targets[this.nextTarget % this.opts.targets.length]?.uri,
      retry_in_ms: delay,
    });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }

  private endStream(): void {
    const s = this.stream;
    if (s === undefined) return;
    this.stream = undefined;
    this.connectedState.set(0);
    s.call.removeAllListeners('status');
    s.call.cancel();
    s.client.close();
  }

  /** Exponential from the base, capped, drawn between half and all of the step (equal jitter). */
  private backoffMs(): number {
    const b = this.opts.backoff ?? DEFAULT_BACKOFF;
    const step = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(this.failures, 20));
    return Math.round(step / 2 + (this.opts.random ?? Math.random)() * (step / 2));
  }

  private async onResponse(stream: Stream, r: Msg): Promise<void> {
    if (this.closed) return;
    const typeUrl = typeof r.type_url === 'string' ? r.type_url : '';
    const state = this.states.get(typeUrl);
    if (state === undefined || !state.subscribed) {
      this.opts.logger.warn('ignoring an xDS response of a type not subscribed', { type_url: typeUrl });
      return;
    }
    const stats = this.typeStats.get(typeUrl)!;
    stats.attempt.inc();
    let resources: IncomingResource[];
    let version: string;
    let removed: readonly string[] = [];
    let nonce: string;
    if (this.opts.delta) {
      const d = r as DeltaDiscoveryResponse;
      resources = (d.resources ?? []).flatMap((x) =>
        x.resource === undefined ? [] : [{ any: x.resource, name: x.name, version: x.version }],
      );
      removed = d.removed_resources ?? [];
      version = d.system_version_info ?? '';
      nonce = d.nonce ?? '';
    } else {
      const s = r as DiscoveryResponse;
      resources = (s.resources ?? []).map((any) => ({ any }));
      version = s.version_info ?? '';
      nonce = s.nonce ?? '';
    }
    const errors = await state.process(
      { resources, version, fullState: !this.opts.delta && state.type.fullState, removed },
      this.opts.apply,
      new Date(),
    );
    if (errors.length === 0) stats.success.inc();
    else {
      stats.rejected.inc();
      this.opts.logger.warn('xDS update refused (NACK)', {
        type: state.type.short,
        version,
        errors: formatErrors(errors),
      });
    }
    this.opts.onProcessed?.(state);
    if (this.stream !== stream) return;
    state.nonce = nonce;
    const errorDetail =
      errors.length === 0
        ? undefined
        : { code: INVALID_ARGUMENT, message: formatErrors(errors).slice(0, MAX_NACK_CHARS) };
    if (this.opts.delta) {
      this.write(stream, {
        type_url: typeUrl,
        response_nonce: nonce,
        ...(errorDetail && { error_detail: errorDetail }),
      });
    } else this.writeSotw(stream, state, errorDetail);
  }

  /** A state-of-the-world request: the accepted version, the subscription, the nonce answered. */
  private writeSotw(stream: Stream, state: TypeState, errorDetail?: { code: number; message: string }): void {
    this.write(stream, {
      version_info: state.versionInfo,
      resource_names: state.wildcard ? [] : [...state.names],
      type_url: state.type.typeUrl,
      response_nonce: state.nonce,
      ...(errorDetail && { error_detail: errorDetail }),
    });
  }

  private write(stream: Stream, msg: Msg): void {
    if (!stream.nodeSent) {
      stream.nodeSent = true;
      msg.node = this.opts.node;
    }
    stream.call.write(msg);
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task).catch((err: unknown) => {
      // A broken invariant in applying config: logged loudly, the client keeps going on the last good state.
      this.opts.logger.error('xDS processing failed', { error: (err as Error).stack ?? String(err) });
    });
    this.queue = run;
    return run;
  }
}

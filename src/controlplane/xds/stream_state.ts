// What one ADS stream knows per type (last sent, last ACK, last NACK) and the proxy status reported from it.

import type { ServerDuplexStream } from '@grpc/grpc-js';
import * as grpc from '@grpc/grpc-js';
import type { ErrorDetail, NodeJson } from '../../xds/protos.js';
import { XDS_TYPE_URLS } from '../../xds/protos.js';
import type { Snapshot, SnapshotCache } from './cache.js';
import type { XdsMetrics } from './metrics.js';
import { shortTypeName } from './resource.js';

/** A client may ask for any type URL; past this many on one stream it is refused rather than tracked. */
const MAX_TYPES_PER_STREAM = 32;

/** Istio's proxy-status vocabulary. */
export type SyncState = 'SYNCED' | 'STALE' | 'NOT SENT';

export interface NackInfo {
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly code: number;
  readonly at: string;
}

export interface TypeStatus {
  readonly typeUrl: string;
  /** CDS, EDS, LDS, RDS, SDS, or the message name. */
  readonly type: string;
  readonly status: SyncState;
  /** The version of this type in the proxy's current snapshot (undefined: none yet). */
  readonly snapshotVersion: string | undefined;
  readonly lastSentVersion: string | undefined;
  readonly lastSentNonce: string | undefined;
  readonly lastSentAt: string | undefined;
  readonly ackedVersion: string | undefined;
  readonly ackedAt: string | undefined;
  readonly lastNack: NackInfo | undefined;
  /** Subscribed names; ["*"] for a wildcard subscription. */
  readonly subscribed: readonly string[];
}

export interface ProxyStatus {
  readonly stream: number;
  readonly protocol: 'sotw' | 'delta';
  readonly peer: string;
  readonly node: {
    readonly id: string;
    readonly cluster: string;
    readonly metadata: Record<string, unknown>;
  };
  readonly nodeKey: string;
  readonly connectedAt: string;
  readonly types: readonly TypeStatus[];
}

/** The order of pushes that drops no traffic: a cluster's endpoints before listeners and routes that use it. */
export const PUSH_ORDER: readonly string[] = [
  XDS_TYPE_URLS.cluster,
  XDS_TYPE_URLS.endpoint,
  XDS_TYPE_URLS.listener,
  XDS_TYPE_URLS.route,
  XDS_TYPE_URLS.secret,
];

/** LDS and CDS: an empty subscription is a wildcard, and SotW responses carry the full set. */
export function isFullStateType(typeUrl: string): boolean {
  return typeUrl === XDS_TYPE_URLS.listener || typeUrl === XDS_TYPE_URLS.cluster;
}

/** Types in push order: the known ones first, the rest by name. */
export function inPushOrder(typeUrls: Iterable<string>): string[] {
  const rank = (t: string) => {
    const i = PUSH_ORDER.indexOf(t);
    return i < 0 ? PUSH_ORDER.length : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Send/ACK/NACK bookkeeping of one type on one stream. */
export class TypeTracker {
  names = new Set<string>();
  wildcard = false;
  lastSent: { version: string; nonce: string; at: number; changeAt: number | undefined } | undefined;
  acked: { version: string; nonce: string; at: number } | undefined;
  nack: { version: string; nonce: string; message: string; code: number; at: number } | undefined;
  /** The snapshot version this stream was last brought up to (sent, or found nothing to send). */
  evaluatedVersion: string | undefined;

  constructor(readonly typeUrl: string) {}

  /** Records the reply to our latest response: a NACK when it carries error_detail, else an ACK. */
  reply(version: string | undefined, error: ErrorDetail | undefined, now: number, metrics: XdsMetrics): void {
    const sent = this.lastSent!;
    if (error !== undefined) {
      this.nack = {
        version: sent.version,
        nonce: sent.nonce,
        message: error.message ?? '',
        code: error.code ?? 0,
        at: now,
      };
      metrics.nacks.inc(shortTypeName(this.typeUrl));
      return;
    }
    this.acked = { version: version ?? sent.version, nonce: sent.nonce, at: now };
    if (sent.changeAt !== undefined) metrics.convergence.record(Math.max(0, now - sent.changeAt) / 1000);
  }

  sent(version: string, nonce: string, now: number, changeAt: number | undefined, metrics: XdsMetrics): void {
    this.lastSent = { version, nonce, at: now, changeAt };
    this.evaluatedVersion = version;
    metrics.pushes.inc(shortTypeName(this.typeUrl));
    if (changeAt !== undefined) metrics.pushLatency.record(Math.max(0, now - changeAt) / 1000);
  }

  status(snapshotVersion: string | undefined): TypeStatus {
    let status: SyncState = 'NOT SENT';
    if (this.lastSent !== undefined) {
      const acked = this.acked?.nonce === this.lastSent.nonce;
      status = acked && this.evaluatedVersion === snapshotVersion ? 'SYNCED' : 'STALE';
    }
    const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
    return {
      typeUrl: this.typeUrl,
      type: shortTypeName(this.typeUrl),
      status,
      snapshotVersion,
      lastSentVersion: this.lastSent?.version,
      lastSentNonce: this.lastSent?.nonce,
      lastSentAt: iso(this.lastSent?.at),
      ackedVersion: this.acked?.version,
      ackedAt: iso(this.acked?.at),
      lastNack: this.nack && { ...this.nack, at: iso(this.nack.at)! },
      subscribed: this.wildcard ? ['*', ...[...this.names].sort()] : [...this.names].sort(),
    };
  }
}

/** What a stream needs from its server. */
export interface StreamContext {
  readonly cache: SnapshotCache;
  readonly metrics: XdsMetrics;
  now(): number;
  nextNonce(): string;
  /** The stream's node is known: it is now pushed to when its snapshot changes. */
  register(stream: AdsStream): void;
  unregister(stream: AdsStream): void;
}

/** Why a stream is ended before it is served: its gRPC status and the message the client is told. */
export interface StreamRefusal {
  readonly code: grpc.status;
  readonly details: string;
}

/**
 * Decides, on a stream's first request, whether its caller may have the configuration of the node it names
 * (the authenticated port checks the node against the client certificate); undefined admits it.
 */
export type NodeAdmission = (node: NodeJson) => StreamRefusal | undefined;

export interface AdsRequestBase {
  readonly node?: NodeJson;
  readonly type_url?: string;
}

/** One ADS stream: the node it serves, its per-type trackers, and its end. */
export abstract class AdsStream<Req extends AdsRequestBase = AdsRequestBase, Res extends object = object> {
  node: NodeJson | undefined;
  nodeKey = '';
  readonly connectedAt: number;
  protected readonly trackers = new Map<string, TypeTracker>();
  private ended = false;

  constructor(
    readonly id: number,
    readonly protocol: 'sotw' | 'delta',
    protected readonly ctx: StreamContext,
    private readonly call: ServerDuplexStream<Req, Res>,
    private readonly admit?: NodeAdmission,
  ) {
    this.connectedAt = ctx.now();
    call.on('data', (req: Req) => this.receive(req));
    call.on('end', () => this.close());
    call.on('error', () => this.finish());
    call.on('cancelled', () => this.finish());
  }

  /** Brings every subscribed type up to `snapshot`, in push order; `changeAt` is when the change happened. */
  push(snapshot: Snapshot, changeAt: number): void {
    if (this.ended) return;
    try {
      this.pushSnapshot(snapshot, changeAt);
    } catch (err) {
      this.fail(grpc.status.INTERNAL, `remora: ${(err as Error).message}`);
    }
  }

  protected abstract pushSnapshot(snapshot: Snapshot, changeAt: number): void;

  protected abstract onRequest(req: Req, tracker: TypeTracker, snapshot: Snapshot | undefined): void;

  protected abstract newTracker(typeUrl: string): TypeTracker;

  private receive(req: Req): void {
    if (this.ended) return;
    try {
      if (this.node === undefined) {
        if (typeof req.node?.id !== 'string' || req.node.id === '') {
          this.fail(grpc.status.INVALID_ARGUMENT, 'the first request of a stream must carry node.id');
          return;
        }
        let key: string;
        try {
          key = this.ctx.cache.nodeKey(req.node);
        } catch (err) {
          // The node describes a proxy that cannot be configured (malformed metadata): it is told why.
          this.fail(grpc.status.INVALID_ARGUMENT, (err as Error).message);
          return;
        }
        // Checked before the node is registered: a refused caller never makes the control plane plan its group.
        const refused = this.admit?.(req.node);
        if (refused !== undefined) {
          this.fail(refused.code, refused.details);
          return;
        }
        this.node = req.node;
        this.nodeKey = key;
        this.ctx.register(this);
      }
      const typeUrl = req.type_url ?? '';
      if (typeUrl === '') {
        this.fail(grpc.status.INVALID_ARGUMENT, 'type_url is required on an aggregated stream');
        return;
      }
      let tracker = this.trackers.get(typeUrl);
      if (tracker === undefined) {
        if (this.trackers.size >= MAX_TYPES_PER_STREAM) {
          this.fail(
            grpc.status.RESOURCE_EXHAUSTED,
            `more than ${MAX_TYPES_PER_STREAM} type URLs on one stream`,
          );
          return;
        }
        tracker = this.newTracker(typeUrl);
        this.trackers.set(typeUrl, tracker);
      }
      this.onRequest(req, tracker, this.ctx.cache.get(this.nodeKey));
    } catch (err) {
      // A broken invariant: this stream ends, the server and the other streams go on.
      this.fail(grpc.status.INTERNAL, `remora: ${(err as Error).message}`);
    }
  }

  protected write(response: Res): void {
    if (!this.ended) this.call.write(response);
  }

  status(): ProxyStatus {
    const snapshot = this.ctx.cache.get(this.nodeKey);
    const node = this.node ?? {};
    return {
      stream: this.id,
      protocol: this.protocol,
      peer: this.call.getPeer(),
      node: { id: node.id ?? '', cluster: node.cluster ?? '', metadata: node.metadata ?? {} },
      nodeKey: this.nodeKey,
      connectedAt: new Date(this.connectedAt).toISOString(),
      types: inPushOrder(this.trackers.keys()).map((t) => this.trackers.get(t)!.status(snapshot?.version(t))),
    };
  }

  /** Ends the stream with OK. */
  close(): void {
    if (this.ended) return;
    this.finish();
    this.call.end();
  }

  private fail(code: grpc.status, details: string): void {
    if (this.ended) return;
    this.finish();
    this.call.emit('error', { code, details });
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.ctx.unregister(this);
  }
}

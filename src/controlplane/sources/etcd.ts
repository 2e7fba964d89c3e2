// The etcd source: manifests stored under a key prefix, read with one range get and followed with a watch.

import { Etcd3, type IKeyValue, type IOptions, type Watcher } from 'etcd3';
import { Backoff, type BackoffOptions, CancellableSleep } from './backoff.js';
import { KeyedManifests } from './keyed_manifests.js';
import type { Source, SourceListener, SourceProblem } from './source.js';

export const DEFAULT_ETCD_PREFIX = '/remora/';

export interface EtcdSourceOptions {
  /** Client URLs of the etcd cluster (`http://127.0.0.1:2379`); the client spreads calls over them. */
  readonly endpoints: readonly string[];
  /** Every key under it holds manifests (`/remora/<kind>/<namespace>/<name>` by convention). */
  readonly prefix?: string;
  readonly name?: string;
  /** Waits between attempts to reach etcd again after losing it. */
  readonly backoff?: BackoffOptions;
  /** How long start() keeps trying to make the first read before it fails. */
  readonly startTimeoutMs?: number;
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * Runs each call once. The source retries with its own back-off and a full re-read; the client's default
 * policies (three retries, then a circuit breaker open for 5 s) would only delay the return of a restarted etcd.
 */
function once(): Policy {
  const none = () => ({ dispose() {} });
  return {
    onSuccess: none,
    onFailure: none,
    execute: async <T>(fn: (c: { signal: AbortSignal }) => PromiseLike<T> | T, signal?: AbortSignal) =>
      fn({ signal: signal ?? new AbortController().signal }),
  } as unknown as Policy;
}

/**
 * Reads every key under the prefix with one range get, then watches the prefix from the revision after that
 * read, so no change between the two is missed. Each key's value is YAML or JSON manifests (one object, several
 * documents, or a List), validated as the files source validates files, with the key in place of the file name.
 * A value with errors is reported and the key keeps serving its last good objects; deleting the key deletes them.
 *
 * When etcd goes away (the watch stream fails, or a watch is cancelled because its revision was compacted) the
 * last objects read keep serving, a problem says so (RA0402), and the source reads the whole prefix again with
 * back-off until it succeeds; that full read replaces everything (keys deleted meanwhile are deleted) and a new
 * watch starts from its revision.
 */
export class EtcdSource implements Source {
  readonly name: string;
  readonly prefix: string;
  private readonly endpoints: readonly string[];
  private readonly client: Etcd3;
  private readonly store: KeyedManifests;
  private readonly backoff: Backoff;
  private readonly sleeper = new CancellableSleep();
  private readonly startTimeoutMs: number;
  private listener: SourceListener | undefined;
  private watcher: Watcher | undefined;
  /** Incremented on every new watch and on close: events of an older watch are dropped. */
  private generation = 0;
  private unreachable: SourceProblem | undefined;
  private pending = false;
  private resyncing: Promise<void> | undefined;
  /** Set when the watch is lost; the resync loop runs until a full read and a new watch clear it. */
  private stale = false;
  private closed = false;

  constructor(options: EtcdSourceOptions) {
    if (options.endpoints.length === 0) throw new Error('source "etcd" needs at least one endpoint');
    this.name = options.name ?? 'etcd';
    this.prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
    if (this.prefix === '') throw new Error('source "etcd": the prefix must not be empty');
    this.endpoints = options.endpoints;
    this.store = new KeyedManifests(this.name);
    this.backoff = new Backoff({ initialMs: 100, maxMs: 5000, ...options.backoff });
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: 3000,
      faultHandling: { host: () => once(), global: once() },
      grpcOptions: {
        // Notice a peer that vanished without closing the connection (a partition, a frozen VM).
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5000,
        'grpc.initial_reconnect_backoff_ms': this.backoff.initialMs,
        'grpc.max_reconnect_backoff_ms': this.backoff.maxMs,
      },
    });
  }

  /** Resolves after the first full read; fails if etcd cannot be read within `startTimeoutMs`. */
  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    const deadline = Date.now() + this.startTimeoutMs;
    for (;;) {
      try {
        await this.load();
        return;
      } catch (err) {
        if (this.closed) return;
        const wait = this.backoff.next();
        if (Date.now() + wait > deadline)
          throw new Error(`etcd ${this.endpoints.join(',')}: cannot read ${this.prefix}: ${message(err)}`);
        await this.sleeper.sleep(wait);
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.generation++;
    this.sleeper.cancel();
    const w = this.watcher;
    this.watcher = undefined;
    // A cancel waits for etcd's answer; a server that has gone away never gives one.
    if (w !== undefined) await Promise.race([w.cancel().catch(() => {}), delay(1000)]);
    this.client.close();
    await this.resyncing;
  }

  /** One full read of the prefix, delivered as a full update, then a watch from the revision after it. */
  private async load(): Promise<void> {
    const res = await this.client.getAll().prefix(this.prefix).exec();
    if (this.closed) return;
    const keys = new Set<string>();
    for (const kv of res.kvs) {
      const key = kv.key.toString();
      keys.add(key);
      this.store.setText(key, kv.value.toString());
    }
    this.store.retain(keys);
    this.unreachable = undefined;
    this.backoff.reset();
    this.emit();
    this.watch(BigInt(res.header.revision) + 1n);
  }

  private watch(from: bigint): void {
    const gen = ++this.generation;
    const w = this.client.watch().prefix(this.prefix).startRevision(from.toString()).watcher();
    this.watcher = w;
    const live = () => gen === this.generation && !this.closed;
    w.on('put', (kv: IKeyValue) => {
      if (live() && this.store.setText(kv.key.toString(), kv.value.toString())) this.schedule();
    });
    w.on('delete', (kv: IKeyValue) => {
      if (live() && this.store.delete(kv.key.toString())) this.schedule();
    });
    w.on('disconnected', (err: Error) => {
      if (live()) this.lost(w, err);
    });
    // A watch cancelled by etcd: its start revision was compacted away, or the watch was refused.
    w.on('error', (err: Error) => {
      if (live()) this.lost(w, err);
    });
  }

  private lost(w: Watcher, err: Error): void {
    this.generation++;
    if (this.watcher === w) this.watcher = undefined;
    void w.cancel().catch(() => {});
    this.unreachable = {
      code: 'RA0402',
      message: `etcd ${this.endpoints.join(',')}: watch of ${this.prefix} lost (${message(err)}); serving the last objects read until it is back`,
    };
    this.emit();
    this.stale = true;
    this.resyncing ??= this.resync().finally(() => {
      this.resyncing = undefined;
    });
  }

  /** Reads the prefix again until a read succeeds; a watch lost meanwhile (even the new one) goes round again. */
  private async resync(): Promise<void> {
    while (this.stale && !this.closed) {
      if (!(await this.sleeper.sleep(this.backoff.next()))) return;
      this.stale = false;
      try {
        await this.load();
      } catch {
        // Still unreachable: the problem already says so; try again after a longer wait.
        this.stale = true;
      }
    }
  }

  /** Several events of one watch response make one update. */
  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      this.emit();
    });
  }

  private emit(): void {
    if (this.closed || this.listener === undefined) return;
    const { objects, problems } = this.store.current();
    if (this.unreachable !== undefined) problems.unshift(this.unreachable);
    this.listener({ kind: 'full', objects, problems });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

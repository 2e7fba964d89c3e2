// The Consul source: the catalog's services and their healthy instances, followed with blocking queries.

import type { BackoffOptions } from './backoff.js';
import { consulObjects, instancesOf } from './consul_objects.js';
import { BlockingQuery, ConsulHttp } from './consul_query.js';
import { KeyedManifests } from './keyed_manifests.js';
import { Coalesced, settlesWithin } from './lifecycle.js';
import type { Source, SourceListener, SourceProblem } from './source.js';

export const DEFAULT_CONSUL_NAMESPACE = 'consul';

export interface ConsulSourceOptions {
  /** The agent's HTTP API: `http://127.0.0.1:8500`. */
  readonly address: string;
  /** The mesh namespace of Consul's services: `web` is `web.consul.svc.cluster.local` by default. */
  readonly namespace?: string;
  /** Another datacenter than the agent's (`?dc=`). */
  readonly datacenter?: string;
  /** An ACL token (sent as `X-Consul-Token`). */
  readonly token?: string;
  /** How long Consul may hold a blocking query (`wait`); default 300 s (Consul's own default). */
  readonly waitSeconds?: number;
  /** Least time between two queries of one endpoint; default 100 ms. */
  readonly minIntervalMs?: number;
  readonly backoff?: BackoffOptions;
  /** How long start() waits for the catalog and every service's instances before it fails. */
  readonly startTimeoutMs?: number;
  readonly name?: string;
}

interface Watched {
  readonly query: BlockingQuery;
  answered: boolean;
}

/**
 * Follows `/v1/catalog/services` with a blocking query and, for each service it lists,
 * `/v1/health/service/<name>` with another. A service becomes a Service in `namespace` and each instance whose
 * checks all pass becomes a WorkloadEntry it selects (see consul_objects.ts): failing instances leave the mesh, and
 * come back when they pass. A service that leaves the catalog is deleted.
 *
 * When the agent cannot be reached, the last objects read keep serving, a problem says so (RA0402), and each
 * query retries with back-off; the first query after a failure is a plain read, so an agent that restarted is
 * read in full at once.
 */
export class ConsulSource implements Source {
  readonly name: string;
  private readonly http: ConsulHttp;
  private readonly namespace: string;
  private readonly params: Readonly<Record<string, string>>;
  private readonly queryOptions: ConstructorParameters<typeof BlockingQuery>[3];
  private readonly startTimeoutMs: number;
  private readonly store: KeyedManifests;
  private readonly services = new Map<string, Watched>();
  private readonly failures = new Map<string, string>();
  private catalog: BlockingQuery | undefined;
  private catalogAnswered = false;
  /** A query failed since the last recovery. */
  private outage = false;
  private listener: SourceListener | undefined;
  private synced: (() => void) | undefined;
  /** Answers that arrive together (every service after the agent is back) make one update. */
  private readonly updates = new Coalesced(() => this.emit());
  private closed = false;

  constructor(options: ConsulSourceOptions) {
    this.name = options.name ?? 'consul';
    this.http = new ConsulHttp(options.address, options.token);
    this.namespace = options.namespace ?? DEFAULT_CONSUL_NAMESPACE;
    this.params = options.datacenter === undefined ? {} : { dc: options.datacenter };
    const waitSeconds = options.waitSeconds ?? 300;
    if (!(waitSeconds >= 1 && waitSeconds <= 600))
      throw new Error('source "consul": waitSeconds must be 1 to 600');
    this.queryOptions = {
      waitSeconds,
      minIntervalMs: options.minIntervalMs ?? 100,
      backoff: options.backoff,
    };
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    this.store = new KeyedManifests(this.name);
  }

  /** Resolves once the catalog and the instances of each of its services have been read. */
  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    const synced = new Promise<void>((r) => {
      this.synced = r;
    });
    this.catalog = new BlockingQuery(this.http, '/v1/catalog/services', this.params, this.queryOptions, {
      result: (body) => this.onCatalog(body),
      failed: (err) => this.failed('/v1/catalog/services', err),
      healthy: () => this.healthy('/v1/catalog/services'),
    });
    this.catalog.start();
    const inTime = await settlesWithin(synced, this.startTimeoutMs);
    if (this.closed) return;
    if (!inTime) {
      const why = [...this.failures.values()][0];
      await this.close();
      throw new Error(`consul ${this.http.address}: cannot read the catalog${why ? `: ${why}` : ''}`);
    }
    this.updates.open();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.updates.close();
    await Promise.all([this.catalog?.close(), ...[...this.services.values()].map((w) => w.query.close())]);
    this.http.close();
  }

  private keyOf(service: string): string {
    return `consul service ${JSON.stringify(service)}`;
  }

  private onCatalog(body: unknown): void {
    if (this.closed) return;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.failed('/v1/catalog/services', new Error('expected a JSON object of service names'));
      return;
    }
    const names = new Set(Object.keys(body));
    for (const [name, w] of this.services) {
      if (names.has(name)) continue;
      this.services.delete(name);
      this.failures.delete(this.pathOf(name));
      void w.query.close();
      this.store.delete(this.keyOf(name));
      this.updates.schedule();
    }
    for (const name of names) {
      if (this.services.has(name)) continue;
      const path = this.pathOf(name);
      const w: Watched = {
        answered: false,
        query: new BlockingQuery(this.http, path, this.params, this.queryOptions, {
          result: (b) => this.onHealth(name, w, b),
          failed: (err) => this.failed(path, err),
          healthy: () => this.healthy(path),
        }),
      };
      this.services.set(name, w);
      w.query.start();
    }
    this.catalogAnswered = true;
    this.checkSynced();
  }

  private pathOf(service: string): string {
    return `/v1/health/service/${encodeURIComponent(service)}`;
  }

  private onHealth(name: string, w: Watched, body: unknown): void {
    if (this.closed || this.services.get(name) !== w) return;
    const key = this.keyOf(name);
    try {
      const parsed = consulObjects(name, instancesOf(body), {
        namespace: this.namespace,
        source: this.name,
        key,
      });
      this.store.setParsed(key, parsed);
    } catch (err) {
      this.store.setProblem(key, {
        code: 'RA0102',
        message: `${key}: unexpected answer from ${this.pathOf(name)}: ${(err as Error).message}`,
      });
    }
    w.answered = true;
    this.updates.schedule();
    this.checkSynced();
  }

  private checkSynced(): void {
    if (this.synced === undefined || !this.catalogAnswered) return;
    for (const w of this.services.values()) if (!w.answered) return;
    this.synced();
    this.synced = undefined;
  }

  private failed(path: string, err: Error): void {
    if (this.closed) return;
    this.outage = true;
    const had = this.failures.get(path);
    this.failures.set(path, `${path}: ${err.message}`);
    if (had === undefined) this.updates.schedule();
  }

  /**
   * A query answered again after failing: the agent is back, perhaps restarted with its state numbered lower.
   * Every other query reads again at once rather than wait out a blocking query on an index it may never reach.
   */
  private healthy(path: string): void {
    if (this.failures.delete(path)) this.updates.schedule();
    // Once per outage: the queries woken here would otherwise each wake all the others again.
    if (!this.outage) return;
    this.outage = false;
    const all = [this.catalog, ...[...this.services.values()].map((w) => w.query)];
    for (const q of all) if (q !== undefined && q.path !== path) q.resync();
  }

  private emit(): void {
    if (this.closed || this.listener === undefined) return;
    const { objects, problems } = this.store.current();
    if (this.failures.size > 0) {
      const first = [...this.failures.values()].sort()[0]!;
      const more = this.failures.size > 1 ? ` (and ${this.failures.size - 1} more queries)` : '';
      const p: SourceProblem = {
        code: 'RA0402',
        message: `consul ${this.http.address}: ${first}${more}; serving the last objects read until it is back`,
      };
      problems.unshift(p);
    }
    this.listener({ kind: 'full', objects, problems });
  }
}

// One list+watch of a Kubernetes collection (client-node's informer), restarted with back-off when it fails.

import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  ListWatch,
  Watch,
} from '@kubernetes/client-node';
import { Backoff, type BackoffOptions } from './backoff.js';

/** A collection to follow: `/api/v1/services`, listed by `list` and watched at `path`. */
export interface CollectionSpec {
  readonly kind: string;
  readonly apiVersion: string;
  /** The all-namespaces collection path (`/api/v1/services`, `/apis/discovery.k8s.io/v1/endpointslices`). */
  readonly path: string;
  readonly list: () => Promise<KubernetesListObject<KubernetesObject>>;
}

export interface InformerHandlers {
  /** An object listed, added or modified. */
  upsert(object: KubernetesObject): void;
  /** An object deleted (by a watch event, or missing from a new list). */
  remove(object: KubernetesObject): void;
  /** The list or watch failed; the informer tries again after `retryMs`. */
  failed(err: unknown, retryMs: number): void;
  /** A list succeeded or a watch was established: the collection is being followed again. */
  healthy(): void;
}

/**
 * client-node's Watch, keeping every request it opened so that `abortAll()` ends them: ListWatch can lose track
 * of a watch it started from inside a failed one (its `request` field is overwritten), and a stopped informer
 * must not keep a connection open. It also says when a watch request got its response.
 */
class TrackedWatch extends Watch {
  private readonly open = new Set<AbortController>();

  constructor(
    config: KubeConfig,
    private readonly established: () => void,
  ) {
    super(config);
  }

  override async watch(
    path: string,
    // biome-ignore lint/suspicious/noExplicitAny: client-node's own signature
    queryParams: any,
    // biome-ignore lint/suspicious/noExplicitAny: client-node's own signature
    callback: (phase: string, apiObj: any, watchObj?: any) => void,
    // biome-ignore lint/suspicious/noExplicitAny: client-node's own signature
    done: (err: any) => void,
  ): Promise<AbortController> {
    let ended = false;
    let controller: AbortController | undefined;
    const result = await super.watch(path, queryParams, callback, (err) => {
      ended = true;
      if (controller !== undefined) this.open.delete(controller);
      done(err);
    });
    if (!ended) {
      controller = result;
      this.open.add(result);
      this.established();
    }
    return result;
  }

  abortAll(): void {
    for (const c of this.open) c.abort();
    this.open.clear();
  }
}

/**
 * Follows one collection with client-node's ListWatch: a list, then a watch from the list's resourceVersion; a
 * watch the server ends is resumed from the last resourceVersion seen; a 410 Gone (as an ERROR event or an HTTP
 * status) makes it list again, and objects missing from the new list are removed. ListWatch gives up on any other
 * error: this restarts it after a back-off, resuming from where it was.
 */
export class CollectionInformer {
  private readonly watch: TrackedWatch;
  private readonly informer: ListWatch<KubernetesObject>;
  private readonly backoff: Backoff;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private listed = false;
  private readonly whenListed: Promise<void>;
  private markListed!: () => void;

  constructor(
    config: KubeConfig,
    readonly spec: CollectionSpec,
    private readonly handlers: InformerHandlers,
    backoff: BackoffOptions = {},
  ) {
    this.backoff = new Backoff(backoff);
    this.whenListed = new Promise((r) => {
      this.markListed = r;
    });
    this.watch = new TrackedWatch(config, () => this.succeeded());
    const list = async () => {
      const l = await spec.list();
      this.succeeded();
      return l;
    };
    // Bookmarks keep the resourceVersion current on a quiet collection, so a resumed watch rarely meets a 410.
    this.informer = new ListWatch(`${spec.path}?allowWatchBookmarks=true`, this.watch, list, false);
    this.informer.on('add', (o) => this.live() && handlers.upsert(o));
    this.informer.on('update', (o) => this.live() && handlers.upsert(o));
    this.informer.on('delete', (o) => this.live() && handlers.remove(o));
    this.informer.on('error', (err) => this.failed(err));
  }

  /** Resolves once the collection has been listed (the first time); later failures do not reject it. */
  get synced(): Promise<void> {
    return this.whenListed;
  }

  get isSynced(): boolean {
    return this.listed;
  }

  async start(): Promise<void> {
    await this.run();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.informer.stop();
    this.watch.abortAll();
  }

  private live(): boolean {
    return !this.closed;
  }

  private async run(): Promise<void> {
    if (this.closed) return;
    try {
      await this.informer.start();
    } catch (err) {
      // ListWatch reports list and watch failures through its error callback; this is anything else it threw.
      this.failed(err);
      return;
    }
    // ListWatch adds the listed objects before it opens the watch: once start() returns they are all handed over.
    if (!this.listed && this.informer.latestResourceVersion() !== '' && !this.closed) {
      this.listed = true;
      this.markListed();
    }
  }

  private succeeded(): void {
    if (this.closed) return;
    this.backoff.reset();
    this.handlers.healthy();
  }

  private failed(err: unknown): void {
    if (this.closed) return;
    const wait = this.backoff.next();
    this.handlers.failed(err, wait);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run(), wait);
  }
}

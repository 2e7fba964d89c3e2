// A remote source with its last state kept on disk: a control plane restarted while the source is unreachable
// serves that state instead of failing.

import type { MeshObject } from '../model/objects.js';
import { Backoff, type BackoffOptions, CancellableSleep } from './backoff.js';
import { settlesWithin } from './lifecycle.js';
import {
  applyUpdate,
  type Source,
  type SourceListener,
  type SourceProblem,
  type SourceUpdate,
} from './source.js';
import { type SavedState, type SourceStateFile, StateSaver } from './source_store.js';

/** How long start() waits for the live source before it serves the kept state. */
export const DEFAULT_KEPT_STATE_WAIT_MS = 3000;

export interface CachedSourceOptions {
  /** Makes the live source; called again to replace one whose start() failed (some close themselves then). */
  readonly create: () => Source;
  /** Where the state of the source of this name is kept (`DataDir.sourceStateFile`). */
  readonly stateFile: (sourceName: string) => SourceStateFile;
  /** How long start() waits for the live source's first state before serving the kept one. */
  readonly waitMs?: number;
  /** Least time between two writes of the file (default 1 s). */
  readonly saveIntervalMs?: number;
  /** Waits between attempts to start a replacement of a live source whose start() failed. */
  readonly backoff?: BackoffOptions;
}

/**
 * Wraps a live source (etcd, Kubernetes, Consul) and saves every state it delivers (the merged objects of its full
 * and delta updates) to its file, coalesced and atomically.
 *
 * At start, when a kept state exists and the live source has not delivered its first state within `waitMs`, or its
 * start() failed, the kept objects are delivered as a full update with problem RA0403 (which source, why, and when
 * they were saved), and start() resolves: the control plane serves the last known mesh. The live source keeps
 * trying in the background; one whose start() failed is closed and made again by `create` after a back-off. Its
 * first state replaces the kept one and clears the problem. Nothing is written while the kept state is served.
 *
 * Without a kept state, start() is the live source's start(): it fails as the source fails. A kept file that cannot
 * be used (corrupt, another format version) is reported as RA0404 and ignored; so is a failed write (retried).
 */
export class CachedSource implements Source {
  readonly name: string;
  private readonly create: () => Source;
  private readonly file: SourceStateFile;
  private readonly waitMs: number;
  private readonly saver: StateSaver;
  private readonly backoff: Backoff;
  private readonly sleeper = new CancellableSleep();
  private inner: Source;
  /** Incremented with each replacement of the live source: updates of an older one are dropped. */
  private generation = 0;
  private listener: SourceListener | undefined;
  private objects = new Map<string, MeshObject>();
  private innerProblems: readonly SourceProblem[] = [];
  /** The objects served came from the live source. */
  private live = false;
  /** The kept state being served, until the live source delivers. */
  private keptFrom: SavedState | undefined;
  /** Why the live source could not start, while it cannot. */
  private unreachable: string | undefined;
  private fileProblem: SourceProblem | undefined;
  private replacing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  private closed = false;

  constructor(options: CachedSourceOptions) {
    this.create = options.create;
    this.inner = options.create();
    this.name = this.inner.name;
    this.file = options.stateFile(this.name);
    if (this.file.source !== this.name)
      throw new Error(`the state file of source "${this.file.source}" given to source "${this.name}"`);
    this.waitMs = options.waitMs ?? DEFAULT_KEPT_STATE_WAIT_MS;
    this.backoff = new Backoff({ initialMs: 500, maxMs: 10_000, ...options.backoff });
    this.saver = new StateSaver(this.file, () => [...this.objects.values()], {
      minIntervalMs: options.saveIntervalMs,
      written: (err) => this.written(err),
    });
  }

  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    const loaded = await this.file.load();
    if (this.closed) return;
    if (loaded.kind === 'unusable')
      this.fileProblem = {
        code: 'RA0404',
        message: `${this.file.path}: the kept state of source "${this.name}" is ignored: ${loaded.reason}; it is replaced once the source answers`,
      };
    const gen = this.generation;
    const started = this.inner.start((u) => this.fromLive(gen, u));
    if (loaded.kind !== 'saved') {
      try {
        await started;
      } catch (err) {
        if (loaded.kind === 'unusable')
          throw new Error(`${message(err)} (its kept state ${this.file.path} is unusable: ${loaded.reason})`);
        throw err;
      }
      return;
    }
    let failure: { error: unknown } | undefined;
    try {
      if (await settlesWithin(started, this.waitMs)) return;
      // Still trying: it may yet deliver, or fail.
      started.catch((err: unknown) => this.failed(gen, err));
    } catch (error) {
      failure = { error };
    }
    if (this.closed) return;
    if (!this.live)
      this.serveKept(
        loaded.state,
        failure !== undefined ? message(failure.error) : `no answer within ${this.waitMs / 1000} s`,
      );
    if (failure !== undefined) this.failed(gen, failure.error);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.sleeper.cancel();
      await this.inner.close();
      await this.replacing;
      await this.saver.close();
    })();
    return this.closing;
  }

  observe(objects: readonly MeshObject[]): void {
    this.inner.observe?.(objects);
  }

  private serveKept(state: SavedState, reason: string): void {
    this.keptFrom = state;
    this.unreachable = reason;
    this.objects = applyUpdate(new Map(), { kind: 'full', objects: state.objects, problems: [] });
    this.emitFull();
  }

  private fromLive(gen: number, u: SourceUpdate): void {
    if (this.closed || gen !== this.generation) return;
    const replacesKept = this.keptFrom !== undefined;
    this.objects = applyUpdate(this.objects, u);
    this.innerProblems = u.problems;
    this.live = true;
    this.keptFrom = undefined;
    this.unreachable = undefined;
    if (u.kind === 'delta' && replacesKept) this.emitFull();
    else this.listener?.({ ...u, problems: this.problems() });
    this.saver.changed();
  }

  /** The live source's start() failed: keep serving what is served, and make a new one until one starts. */
  private failed(gen: number, err: unknown): void {
    if (this.closed || gen !== this.generation) return;
    this.noteUnreachable(message(err));
    this.replacing ??= this.replace().finally(() => {
      this.replacing = undefined;
    });
  }

  private async replace(): Promise<void> {
    while (!this.closed) {
      // Etcd's source stays open after a failed start; Kubernetes' and Consul's have closed themselves.
      await this.inner.close().catch(() => {});
      if (this.closed || !(await this.sleeper.sleep(this.backoff.next()))) return;
      let next: Source;
      try {
        next = this.create();
      } catch (err) {
        this.noteUnreachable(message(err));
        continue;
      }
      const gen = ++this.generation;
      this.inner = next;
      try {
        await next.start((u) => this.fromLive(gen, u));
        this.backoff.reset();
        return;
      } catch (err) {
        if (this.closed) return;
        this.noteUnreachable(message(err));
      }
    }
  }

  private noteUnreachable(reason: string): void {
    if (reason === this.unreachable) return;
    this.unreachable = reason;
    this.emitFull();
  }

  private written(err: Error | undefined): void {
    const problem: SourceProblem | undefined =
      err === undefined
        ? undefined
        : {
            code: 'RA0404',
            message: `cannot keep the state of source "${this.name}" in ${this.file.path}: ${err.message}; retrying`,
          };
    if (problem?.message === this.fileProblem?.message) return;
    this.fileProblem = problem;
    this.emitFull();
  }

  private problems(): SourceProblem[] {
    const own: SourceProblem[] = [];
    if (this.unreachable !== undefined) {
      const n = this.objects.size;
      const k = this.keptFrom;
      own.push(
        k !== undefined
          ? {
              code: 'RA0403',
              message: `source "${this.name}" cannot be read (${this.unreachable}); serving the ${n} objects it gave before, kept in ${this.file.path} (saved ${k.savedAt.toISOString()}), until it answers`,
            }
          : {
              code: 'RA0402',
              message: `source "${this.name}" cannot be read (${this.unreachable}); serving the last ${n} objects it gave until it answers`,
            },
      );
    }
    if (this.fileProblem !== undefined) own.push(this.fileProblem);
    return [...own, ...this.innerProblems];
  }

  /** Delivers what is served, once something is (kept or live): only problems may have changed. */
  private emitFull(): void {
    if (this.closed || this.listener === undefined || (!this.live && this.keptFrom === undefined)) return;
    this.listener({ kind: 'full', objects: [...this.objects.values()], problems: this.problems() });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

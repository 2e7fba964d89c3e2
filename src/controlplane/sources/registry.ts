// The source registry: source kinds by name, and the running sources merged into one MeshSnapshot.

import { buildSnapshot } from '../model/build.js';
import { describeObject, type MeshObject } from '../model/objects.js';
import type { MeshSnapshot } from '../model/snapshot.js';
import { applyUpdate, type Source, type SourceProblem, type SourceUpdate } from './source.js';

/** Builds a source from its options (a flag's value, a config file's section). */
export type SourceFactory = (options: Readonly<Record<string, unknown>>) => Source;

/** Source kinds by name. Registration is explicit (no import side effects): the caller decides what exists. */
export class SourceKinds {
  private readonly factories = new Map<string, SourceFactory>();

  register(name: string, factory: SourceFactory): this {
    if (this.factories.has(name)) throw new Error(`source kind "${name}" is already registered`);
    this.factories.set(name, factory);
    return this;
  }

  create(name: string, options: Readonly<Record<string, unknown>> = {}): Source {
    const f = this.factories.get(name);
    if (f === undefined) throw new Error(`unknown source kind "${name}" (known: ${this.names().join(', ')})`);
    return f(options);
  }

  names(): string[] {
    return [...this.factories.keys()];
  }
}

export interface RegistryProblem extends SourceProblem {
  /** The source that reported it (or that lost a conflict). */
  readonly source: string;
}

/** The merged state after a change. */
export interface MeshState {
  readonly snapshot: MeshSnapshot;
  /** The merged objects the snapshot was built from, in source order. */
  readonly objects: readonly MeshObject[];
  readonly problems: readonly RegistryProblem[];
  /** True when the snapshot's version differs from the previous state's (false: only problems changed). */
  readonly changed: boolean;
}

export type StateListener = (state: MeshState) => void;

interface Entry {
  readonly source: Source;
  objects: Map<string, MeshObject>;
  problems: readonly SourceProblem[];
}

/**
 * Runs several sources at once and merges what they report into one snapshot. When two sources report the same
 * object (`Kind/namespace/name`), the source added first wins and the other's copy is reported as a problem.
 * Listeners hear of every new snapshot version and every change in the list of problems, never of a no-op.
 */
export class SourceRegistry {
  private readonly entries: Entry[] = [];
  private readonly listeners = new Set<StateListener>();
  private current: MeshState | undefined;
  private started = false;
  private closed = false;
  private rebuilding = false;
  private again = false;

  add(source: Source): this {
    if (this.started) throw new Error('sources must be added before start()');
    if (this.entries.some((e) => e.source.name === source.name))
      throw new Error(`a source named "${source.name}" is already added`);
    this.entries.push({ source, objects: new Map(), problems: [] });
    return this;
  }

  /** Starts every source and resolves with the first merged state, once each has delivered its initial objects. */
  async start(): Promise<MeshState> {
    if (this.started) throw new Error('already started');
    this.started = true;
    try {
      await Promise.all(this.entries.map((e) => e.source.start((u) => this.apply(e, u))));
    } catch (err) {
      await this.close();
      throw err;
    }
    this.rebuild();
    return this.state;
  }

  get state(): MeshState {
    if (this.current === undefined) throw new Error('the registry has not started');
    return this.current;
  }

  /** Calls `listener` on each change; returns the function that stops it. */
  subscribe(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.clear();
    await Promise.allSettled(this.entries.map((e) => e.source.close()));
  }

  private apply(e: Entry, u: SourceUpdate): void {
    if (this.closed) return;
    e.objects = applyUpdate(e.objects, u);
    e.problems = u.problems;
    // Until start() has every source's first update, updates are only stored: the first state is built at its end.
    if (this.current !== undefined) this.rebuild();
  }

  /** Merges, builds and tells listeners; re-entrant calls (a source reacting to observe()) run after this one. */
  private rebuild(): void {
    if (this.rebuilding) {
      this.again = true;
      return;
    }
    this.rebuilding = true;
    try {
      do {
        this.again = false;
        this.rebuildOnce();
      } while (this.again && !this.closed);
    } finally {
      this.rebuilding = false;
    }
  }

  private rebuildOnce(): void {
    const merged = new Map<string, { object: MeshObject; source: string }>();
    const problems: RegistryProblem[] = [];
    for (const e of this.entries) {
      for (const p of e.problems) problems.push({ ...p, source: e.source.name });
      for (const [k, o] of e.objects) {
        const had = merged.get(k);
        if (had === undefined) merged.set(k, { object: o, source: e.source.name });
        else
          problems.push({
            source: e.source.name,
            code: 'RA0104',
            message: `${describeObject(o)} from source "${e.source.name}" is ignored: source "${had.source}" has it too`,
          });
      }
    }
    const objects = [...merged.values()].map((m) => m.object);
    const snapshot = buildSnapshot(objects);
    const prev = this.current;
    const changed = prev === undefined || prev.snapshot.version !== snapshot.version;
    const problemsChanged = prev === undefined || !sameProblems(prev.problems, problems);
    const state: MeshState = { snapshot: changed ? snapshot : prev!.snapshot, objects, problems, changed };
    this.current = state;
    for (const e of this.entries) e.source.observe?.(objects);
    if (prev === undefined || (!changed && !problemsChanged)) return;
    for (const l of this.listeners) l(state);
  }
}

function sameProblems(a: readonly RegistryProblem[], b: readonly RegistryProblem[]): boolean {
  return a.length === b.length && a.every((p, i) => p.message === b[i]!.message && p.source === b[i]!.source);
}

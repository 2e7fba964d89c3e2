// A source's last state on disk: the file format (versioned, exact round trip), reading it, and coalesced saving.

import { readFile } from 'node:fs/promises';
import { isPlainObject } from '../../config/reader.js';
import { buildSnapshot } from '../model/build.js';
import type { MeshKind, MeshObject } from '../model/objects.js';
import { writeFileAtomic } from '../state/data_dir.js';

/**
 * The version of the file format, and of the object model it holds. A file of another version is not read: change
 * it whenever MeshObject (model/objects.ts) changes shape, so that a new Remora never serves objects it would
 * misread.
 */
export const STATE_FORMAT = 1;

/** A source's objects as it last delivered them, and when they were written. */
export interface SavedState {
  readonly source: string;
  readonly savedAt: Date;
  readonly objects: readonly MeshObject[];
}

interface StateFileJson {
  readonly format: number;
  readonly source: string;
  readonly savedAt: string;
  readonly objects: readonly unknown[];
}

/**
 * JSON drops members whose value is `undefined`, and the model has many (`appProtocol: undefined`): they are
 * written as this marker so that objects read back are deep-equal to those written, keys included. No model value
 * can be mistaken for it: every record-typed field of the model (labels, ports) holds strings or numbers.
 */
const UNDEFINED_KEY = '$undefined';

const KINDS = {
  Namespace: true,
  Service: true,
  EndpointSlice: true,
  WorkloadEntry: true,
  Pod: true,
  ServiceEntry: true,
  DnsEndpoints: true,
  VirtualService: true,
  DestinationRule: true,
  Sidecar: true,
  PeerAuthentication: true,
  AuthorizationPolicy: true,
} as const satisfies Record<MeshKind, true>;

export function encodeState(source: string, objects: readonly MeshObject[], savedAt: Date): string {
  const file: StateFileJson = { format: STATE_FORMAT, source, savedAt: savedAt.toISOString(), objects };
  return `${JSON.stringify(file, (_key, value: unknown) => (value === undefined ? { [UNDEFINED_KEY]: true } : value))}\n`;
}

export type DecodedState =
  | { readonly ok: true; readonly state: SavedState }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads a state file's text back. Refused, with the reason: text that is not JSON, another format version, another
 * source's file, and objects that are not mesh objects or from which no snapshot can be built.
 */
export function decodeState(text: string, source: string): DecodedState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON (${(err as Error).message})` };
  }
  if (!isPlainObject(raw)) return { ok: false, reason: 'not a JSON object' };
  if (raw.format !== STATE_FORMAT)
    return {
      ok: false,
      reason: `format ${JSON.stringify(raw.format)} is not the format this Remora reads (${STATE_FORMAT})`,
    };
  if (raw.source !== source)
    return {
      ok: false,
      reason: `it holds the state of source ${JSON.stringify(raw.source)}, not "${source}"`,
    };
  const savedAt = typeof raw.savedAt === 'string' ? new Date(raw.savedAt) : undefined;
  if (savedAt === undefined || Number.isNaN(savedAt.getTime()))
    return { ok: false, reason: 'savedAt is not a time' };
  if (!Array.isArray(raw.objects)) return { ok: false, reason: 'objects is not a list' };
  const objects = restoreUndefined(raw.objects) as unknown[];
  for (const [i, o] of objects.entries()) {
    const why = notAMeshObject(o);
    if (why !== undefined) return { ok: false, reason: `objects[${i}]: ${why}` };
  }
  try {
    buildSnapshot(objects as MeshObject[]);
  } catch (err) {
    return { ok: false, reason: `its objects do not make a mesh (${(err as Error).message})` };
  }
  return { ok: true, state: { source, savedAt, objects: objects as MeshObject[] } };
}

/** The parts every mesh object has; the rest was written by Remora itself, and the format version vouches for it. */
function notAMeshObject(o: unknown): string | undefined {
  if (!isPlainObject(o)) return 'not an object';
  if (typeof o.kind !== 'string' || !Object.hasOwn(KINDS, o.kind))
    return `unknown kind ${JSON.stringify(o.kind)}`;
  const meta = o.meta;
  if (
    !isPlainObject(meta) ||
    typeof meta.name !== 'string' ||
    typeof meta.namespace !== 'string' ||
    !isPlainObject(meta.labels)
  )
    return 'meta must have a name, a namespace and labels';
  if (!isPlainObject(o.origin) || typeof o.origin.source !== 'string') return 'origin must name a source';
  return undefined;
}

/** Turns the markers written for `undefined` back into members whose value is `undefined`. */
function restoreUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(restoreUndefined);
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === UNDEFINED_KEY && value[UNDEFINED_KEY] === true) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = restoreUndefined(value[k]);
  return out;
}

export type LoadedState =
  | { readonly kind: 'none' }
  | { readonly kind: 'saved'; readonly state: SavedState }
  | { readonly kind: 'unusable'; readonly reason: string };

/** One source's state file (`DIR/sources/<source>.json`). */
export class SourceStateFile {
  constructor(
    readonly path: string,
    readonly source: string,
  ) {}

  /** What the file holds: nothing (no file), a state, or why it cannot be used. Never throws. */
  async load(): Promise<LoadedState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') return { kind: 'none' };
      return { kind: 'unusable', reason: `cannot be read (${e.message})` };
    }
    const d = decodeState(text, this.source);
    return d.ok ? { kind: 'saved', state: d.state } : { kind: 'unusable', reason: d.reason };
  }

  /** Replaces the file atomically. */
  async save(objects: readonly MeshObject[], savedAt = new Date()): Promise<void> {
    await writeFileAtomic(this.path, encodeState(this.source, objects, savedAt));
  }
}

export interface StateSaverOptions {
  /** Least time between the starts of two writes; changes meanwhile make one write. Default 1000 ms. */
  readonly minIntervalMs?: number;
  /** After each write: the error, or undefined when it succeeded. */
  readonly written?: (error: Error | undefined) => void;
}

/**
 * Saves a changing state at most once per `minIntervalMs`: the first change is written at once, later ones wait
 * for the interval and are coalesced into one write of the newest state (`read()` is called when a write
 * starts). Writes never overlap. A write whose content equals the last one written is skipped. A failed write is
 * tried again after an interval that doubles with each failure (up to 64 times the interval). `close()` writes
 * what is pending and stops.
 */
export class StateSaver {
  private readonly minIntervalMs: number;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;
  private lastWritten: string | undefined;
  private failures = 0;
  private closed = false;
  private closing: Promise<void> | undefined;
  private written = 0;

  constructor(
    private readonly file: SourceStateFile,
    private readonly read: () => readonly MeshObject[],
    private readonly options: StateSaverOptions = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 1000;
  }

  /** How many times the file was written. */
  get writes(): number {
    return this.written;
  }

  /** The state changed: it will be written. */
  changed(): void {
    if (this.closed) return;
    this.dirty = true;
    this.kick();
  }

  /** Writes what is pending at once (not waiting for the interval), once, and stops: later changes are not saved. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      clearTimeout(this.timer);
      this.timer = undefined;
      await this.running;
      if (!this.dirty) return;
      this.dirty = false;
      await this.write();
    })();
    return this.closing;
  }

  private kick(): void {
    if (!this.dirty || this.running !== undefined || this.timer !== undefined || this.closed) return;
    const interval = this.minIntervalMs * 2 ** Math.min(this.failures, 6);
    const wait = this.lastStart + interval - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.kick();
      }, wait);
      return;
    }
    this.startWrite();
  }

  private startWrite(): void {
    this.dirty = false;
    this.lastStart = performance.now();
    this.running = this.write().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  private async write(): Promise<void> {
    const objects = this.read();
    const content = JSON.stringify(objects);
    if (content === this.lastWritten) return;
    try {
      await this.file.save(objects);
      this.lastWritten = content;
      this.failures = 0;
      this.written++;
      this.options.written?.(undefined);
    } catch (err) {
      this.failures++;
      // Tried again later, with the newest state then.
      this.dirty = true;
      this.options.written?.(err as Error);
    }
  }
}

// What the ADS client holds of one resource type — accepted resources with their bytes and versions, the
// subscription — and how a response becomes changes to apply, then an ACK or a NACK.

import type { ConfigError } from '../../config/result.js';
import type { Any } from '../../xds/protos.js';
import { type DecodedResource, decodeResource, type XdsResourceType } from './resource_types.js';

/** A resource the proxy runs on. */
export interface HeldResource extends DecodedResource {
  readonly any: Any;
  /** The version_info of the response that brought it (state of the world), or its own version (delta). */
  readonly version: string;
  readonly lastUpdated: Date;
}

/** The last version of a resource that was refused, for /config_dump's error_state. */
export interface ResourceFailure {
  readonly json: Record<string, unknown> | undefined;
  readonly details: string;
  readonly at: Date;
  readonly version: string;
}

/** Changes of one type to apply to the running proxy. */
export interface TypeChanges {
  readonly type: XdsResourceType;
  readonly upserted: readonly HeldResource[];
  readonly removed: readonly string[];
  /** Held resources the response carried again byte for byte: nothing changes, but EDS counts the receipt. */
  readonly resent: readonly HeldResource[];
}

/** Applies changes to the running proxy; resolves with the resources it could not take (name -> why). */
export type ApplyChanges = (changes: TypeChanges) => Promise<ReadonlyMap<string, string>>;

/** A resource of a response: its Any, and for delta its name and version. */
export interface IncomingResource {
  readonly any: Any;
  readonly name?: string;
  readonly version?: string;
}

export interface ResponseUpdate {
  readonly resources: readonly IncomingResource[];
  /** The response's version_info (delta: system_version_info). */
  readonly version: string;
  /** State of the world for LDS/CDS: a held resource missing from the response is deleted. */
  readonly fullState: boolean;
  /** Delta: removed_resources. */
  readonly removed: readonly string[];
}

export class TypeState {
  readonly held = new Map<string, HeldResource>();
  readonly failures = new Map<string, ResourceFailure>();
  /** Subscribed names of a type that is not a wildcard. */
  names = new Set<string>();
  /** The version_info last accepted (state of the world); "" before any. */
  versionInfo = '';
  /** The nonce of the last response on the current stream; "" on a new stream. */
  nonce = '';
  /** The last time a version of this type was accepted. */
  lastUpdated: Date | undefined;
  /** A response (or the disk cache) has been processed: the type has its first state, good or not. */
  received = false;

  /** `wildcard`: LDS and CDS when the bootstrap subscribes to them; EDS and RDS name what they want. */
  constructor(
    readonly type: XdsResourceType,
    readonly wildcard: boolean,
  ) {}

  /** Whether there is anything to ask the server for. */
  get subscribed(): boolean {
    return this.wildcard || this.names.size > 0;
  }

  wants(name: string): boolean {
    return this.wildcard || this.names.has(name);
  }

  /**
   * Validates a response, applies what it changes and records what the proxy now holds. Invalid resources are
   * refused one by one: the version held before stays (or, for a new name, the resource stays absent). Returns
   * every error, for a NACK; none means ACK.
   */
  async process(update: ResponseUpdate, apply: ApplyChanges, now: Date): Promise<ConfigError[]> {
    const errors: ConfigError[] = [];
    const upserted: HeldResource[] = [];
    const resent: HeldResource[] = [];
    const seen = new Set<string>();
    let unnamed = false;
    update.resources.forEach((r, i) => {
      if (r.name !== undefined && !this.wants(r.name)) return;
      const d = decodeResource(this.type, r.any, i);
      const name = d.ok ? d.value.name : d.name;
      if (name !== undefined && seen.has(name)) {
        errors.push({
          path: `${this.type.short}[${JSON.stringify(name)}]`,
          message: 'duplicate resource name',
        });
        return;
      }
      if (name !== undefined) seen.add(name);
      else unnamed = true;
      if (!d.ok) {
        errors.push(...d.errors);
        if (name !== undefined) this.fail(name, undefined, d.errors, update.version, now);
        return;
      }
      // Resources the proxy did not ask for (a subscription just narrowed) are ignored, as Envoy does.
      if (!this.wants(d.value.name)) return;
      const version = r.version ?? update.version;
      const held = this.held.get(d.value.name);
      if (held !== undefined && sameBytes(held.any.value, r.any.value)) {
        resent.push(held);
        return;
      }
      upserted.push({ ...d.value, any: r.any, version, lastUpdated: now });
    });
    // A resource that could not even be named might be any held one: nothing is deleted on its account.
    const removed = update.fullState
      ? unnamed
        ? []
        : [...this.held.keys()].filter((n) => !seen.has(n))
      : update.removed.filter((n) => this.held.has(n));
    const refused = await apply({ type: this.type, upserted, removed, resent });
    for (const r of upserted) {
      const why = refused.get(r.name);
      if (why !== undefined) {
        const e = { path: `${this.type.short}[${JSON.stringify(r.name)}]`, message: why };
        errors.push(e);
        this.fail(r.name, r.json, [e], update.version, now);
        continue;
      }
      this.held.set(r.name, r);
      this.failures.delete(r.name);
    }
    for (const n of removed) {
      this.held.delete(n);
      this.failures.delete(n);
    }
    this.received = true;
    if (errors.length === 0) {
      this.versionInfo = update.version;
      this.lastUpdated = now;
    }
    return errors;
  }

  /** Drops held resources no longer subscribed; returns their names. */
  dropUnsubscribed(): string[] {
    const gone = [...this.held.keys()].filter((n) => !this.wants(n));
    for (const n of gone) {
      this.held.delete(n);
      this.failures.delete(n);
    }
    for (const n of [...this.failures.keys()]) if (!this.wants(n)) this.failures.delete(n);
    return gone;
  }

  private fail(
    name: string,
    json: Record<string, unknown> | undefined,
    errors: readonly ConfigError[],
    version: string,
    at: Date,
  ): void {
    const details = errors.map((e) => `${e.path}: ${e.message}`).join('\n');
    this.failures.set(name, { json, details, at, version });
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

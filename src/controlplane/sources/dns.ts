// The DNS source: resolves the hosts of `resolution: DNS` ServiceEntries (A/AAAA, SRV on request), again on TTL.

import { Resolver } from 'node:dns/promises';
import { canonicalJson } from '../model/digest.js';
import {
  type DnsEndpointsObject,
  type MeshObject,
  objectKey,
  type ServiceEntryObject,
} from '../model/objects.js';
import type { Source, SourceListener, SourceProblem } from './source.js';

export interface DnsSourceOptions {
  readonly name?: string;
  /** DNS servers (`ip` or `ip:port`); the system's when absent. */
  readonly servers?: readonly string[];
  /** Bounds on the re-resolution interval taken from the records' TTL. */
  readonly minRefreshMs?: number;
  readonly maxRefreshMs?: number;
  /** SRV answers carry no TTL through Node's resolver: their targets are looked up again after this long. */
  readonly srvRefreshMs?: number;
  /** Wait before trying again after a failed lookup (the last good answer keeps serving meanwhile). */
  readonly retryMs?: number;
  /** Per-query timeout and attempts. */
  readonly timeoutMs?: number;
  readonly tries?: number;
}

interface Tracked {
  readonly entry: ServiceEntryObject;
  /** Canonical form of the entry: a changed entry is resolved again at once. */
  readonly content: string;
  timer: NodeJS.Timeout | undefined;
  /** Incremented when the entry changes or goes away: an answer for an older generation is dropped. */
  generation: number;
  resolved: DnsEndpointsObject | undefined;
  problem: SourceProblem | undefined;
}

type Endpoints = DnsEndpointsObject['endpoints'];

const NO_DATA = new Set(['ENODATA', 'ENOTFOUND']);

/**
 * For each ServiceEntry with `resolution: DNS` among the mesh's objects (seen through `observe`), looks up its
 * host's A and AAAA records and reports a `DnsEndpoints` object: one endpoint per address, on each port's
 * `targetPort` (or its number). With the annotation `remora.io/dns-srv: "true"`, each port `p` is looked up as
 * the SRV name `_<p.name>._tcp.<host>` instead, and each target's addresses serve on the port the record gives.
 * Lookups repeat when the shortest TTL runs out (within [minRefreshMs, maxRefreshMs]). A failed lookup keeps the
 * last good endpoints, is reported as a problem (RA0401), and is tried again after `retryMs`.
 */
export class DnsSource implements Source {
  readonly name: string;
  private readonly resolver: Resolver;
  private readonly minRefreshMs: number;
  private readonly maxRefreshMs: number;
  private readonly srvRefreshMs: number;
  private readonly retryMs: number;
  private readonly tracked = new Map<string, Tracked>();
  private listener: SourceListener | undefined;
  private lastSent = '';
  private closed = false;

  constructor(options: DnsSourceOptions = {}) {
    this.name = options.name ?? 'dns';
    this.resolver = new Resolver({ timeout: options.timeoutMs ?? 2000, tries: options.tries ?? 2 });
    if (options.servers !== undefined) this.resolver.setServers([...options.servers]);
    this.minRefreshMs = options.minRefreshMs ?? 1000;
    this.maxRefreshMs = options.maxRefreshMs ?? 300_000;
    this.srvRefreshMs = options.srvRefreshMs ?? 30_000;
    this.retryMs = options.retryMs ?? 5000;
  }

  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    this.emit(true);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.tracked.values()) clearTimeout(t.timer);
    this.tracked.clear();
    this.resolver.cancel();
  }

  observe(objects: readonly MeshObject[]): void {
    if (this.closed) return;
    const wanted = new Map<string, ServiceEntryObject>();
    for (const o of objects)
      if (o.kind === 'ServiceEntry' && o.resolution === 'DNS') wanted.set(objectKey(o), o);
    let removed = false;
    for (const [k, t] of this.tracked) {
      if (wanted.has(k)) continue;
      clearTimeout(t.timer);
      this.tracked.delete(k);
      removed = true;
    }
    for (const [k, entry] of wanted) {
      const content = canonicalJson(entry, new Set(['origin']));
      const had = this.tracked.get(k);
      if (had !== undefined && had.content === content) continue;
      if (had !== undefined) clearTimeout(had.timer);
      const t: Tracked = {
        entry,
        content,
        timer: undefined,
        generation: (had?.generation ?? 0) + 1,
        // A changed entry (other ports) starts afresh: its old endpoints would carry the old ports.
        resolved: undefined,
        problem: undefined,
      };
      this.tracked.set(k, t);
      void this.refresh(k, t.generation);
    }
    if (removed) this.emit(false);
  }

  private async refresh(key: string, generation: number): Promise<void> {
    const t = this.tracked.get(key);
    if (t === undefined || t.generation !== generation || this.closed) return;
    let next: number;
    try {
      const { endpoints, ttlMs } = await this.lookup(t.entry);
      if (this.tracked.get(key) !== t || t.generation !== generation || this.closed) return;
      t.resolved = {
        kind: 'DnsEndpoints',
        meta: t.entry.meta,
        origin: { source: this.name },
        host: t.entry.host,
        endpoints,
      };
      t.problem = undefined;
      next = Math.min(this.maxRefreshMs, Math.max(this.minRefreshMs, ttlMs));
    } catch (err) {
      if (this.tracked.get(key) !== t || t.generation !== generation || this.closed) return;
      const e = err as NodeJS.ErrnoException;
      const where = t.entry.origin.file === undefined ? '' : `${t.entry.origin.file}: `;
      t.problem = {
        code: 'RA0401',
        message: `${where}ServiceEntry ${t.entry.meta.namespace}/${t.entry.meta.name}: cannot resolve ${t.entry.host}: ${e.code ?? e.message}${t.resolved ? ' (serving the last addresses found)' : ''}`,
      };
      next = this.retryMs;
    }
    this.emit(false);
    t.timer = setTimeout(() => void this.refresh(key, generation), next);
    t.timer.unref();
  }

  /** The endpoints of one entry and how long they are good for. */
  private async lookup(se: ServiceEntryObject): Promise<{ endpoints: Endpoints; ttlMs: number }> {
    if (!se.srv) {
      const { addresses, ttlMs } = await this.addresses(se.host);
      const ports: Record<string, number> = {};
      for (const p of se.ports) ports[p.name] = p.targetPort ?? p.number;
      return { endpoints: addresses.map((address) => ({ address, ports })), ttlMs };
    }
    const out: { address: string; ports: Record<string, number> }[] = [];
    let ttlMs = this.srvRefreshMs;
    for (const p of se.ports) {
      const records = await this.resolver.resolveSrv(`_${p.name}._tcp.${se.host}`);
      for (const r of records) {
        const a = await this.addresses(r.name);
        ttlMs = Math.min(ttlMs, a.ttlMs);
        for (const address of a.addresses) out.push({ address, ports: { [p.name]: r.port } });
      }
    }
    return { endpoints: out, ttlMs };
  }

  /** A and AAAA records of a name (either may be missing, not both), sorted, with the shortest TTL. */
  private async addresses(host: string): Promise<{ addresses: string[]; ttlMs: number }> {
    const family = async (f: 4 | 6) => {
      try {
        return f === 4
          ? await this.resolver.resolve4(host, { ttl: true })
          : await this.resolver.resolve6(host, { ttl: true });
      } catch (err) {
        if (NO_DATA.has((err as NodeJS.ErrnoException).code ?? '')) return { err };
        throw err;
      }
    };
    const [v4, v6] = await Promise.all([family(4), family(6)]);
    const records = [...(Array.isArray(v4) ? v4 : []), ...(Array.isArray(v6) ? v6 : [])];
    if (records.length === 0) {
      const failed = [v4, v6].find((r): r is { err: unknown } => !Array.isArray(r));
      throw failed?.err ?? new Error(`no addresses for ${host}`);
    }
    const ttl = Math.min(...records.map((r) => r.ttl));
    return { addresses: [...new Set(records.map((r) => r.address))].sort(), ttlMs: ttl * 1000 };
  }

  private emit(force: boolean): void {
    if (this.closed || this.listener === undefined) return;
    const objects: DnsEndpointsObject[] = [];
    const problems: SourceProblem[] = [];
    for (const t of [...this.tracked.values()].sort((a, b) =>
      objectKey(a.entry) < objectKey(b.entry) ? -1 : 1,
    )) {
      if (t.resolved !== undefined) objects.push(t.resolved);
      if (t.problem !== undefined) problems.push(t.problem);
    }
    const sent = canonicalJson([objects, problems]);
    if (!force && sent === this.lastSent) return;
    this.lastSent = sent;
    this.listener({ kind: 'full', objects, problems });
  }
}

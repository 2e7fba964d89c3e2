// Test support: a FAKE Consul agent (no real one can run here) serving the catalog and health endpoints.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeHttpServer } from './fake_http.js';

/**
 * This is a fake, not Consul. It serves what the Consul source reads, with Consul's blocking-query semantics:
 * - `GET /v1/catalog/services`: `{name: [tags]}`; `GET /v1/health/service/<name>`: the instances with their node
 *   and checks (`?passing` keeps those whose checks all pass). Both carry `X-Consul-Index`.
 * - With `?index=X`, a query waits until the index of what it reads passes X, or until `wait` (Go duration,
 *   default 5m, at most 10m, plus up to wait/16) runs out, then answers with the current data and index. As in
 *   Consul, an X above the current index waits the whole `wait`.
 * - One index counter (Consul's Raft index); each service's entries remember the index of their last change.
 * - `dc` other than `dc1` is a 500 ("No path to datacenter"); a wrong `X-Consul-Token` is a 403.
 * Instances change through methods, not through the HTTP API.
 */

export interface FakeInstance {
  readonly service: string;
  readonly id: string;
  readonly node?: string;
  readonly nodeAddress?: string;
  /** The service address; empty means the node's. */
  readonly address?: string;
  readonly port: number;
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  readonly weight?: number;
  /** The status of its one service check. */
  readonly status?: 'passing' | 'warning' | 'critical';
}

interface Stored {
  instance: FakeInstance;
  createIndex: number;
  modifyIndex: number;
}

interface Waiter {
  readonly ready: () => boolean;
  readonly answer: () => void;
}

export class FakeConsul extends FakeHttpServer {
  private readonly instances = new Map<string, Stored>();
  /** Index of the last change to each service (kept after it is gone, as Consul's tombstones do). */
  private readonly serviceIndex = new Map<string, number>();
  private catalogIndex = 1;
  private index = 1;
  private readonly waiters = new Set<Waiter>();
  token: string | undefined;
  /** Requests by endpoint (`catalog`, `health web`), and how many of them were blocking (`blocking catalog`). */
  readonly counts = new Map<string, number>();

  /** Stops answering and cuts every connection (blocking queries included), as an agent that died. */
  override async stop(): Promise<void> {
    this.waiters.clear();
    await super.stop();
  }

  /**
   * Numbers everything again from a low index, as a restarted dev agent whose services registered again does:
   * indexes go backwards for clients that remember the old ones.
   */
  renumber(): void {
    this.index = 1;
    this.catalogIndex = 1;
    this.serviceIndex.clear();
    for (const s of this.instances.values()) {
      s.createIndex = s.modifyIndex = ++this.index;
      this.serviceIndex.set(s.instance.service, this.index);
      this.catalogIndex = this.index;
    }
    this.wake();
  }

  /** Instance IDs by service. */
  registered(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const s of this.instances.values())
      out[s.instance.service] = [...(out[s.instance.service] ?? []), s.instance.id];
    return out;
  }

  count(what: string): number {
    return this.counts.get(what) ?? 0;
  }

  register(instance: FakeInstance): void {
    const key = `${instance.service}/${instance.id}`;
    const had = this.instances.get(key);
    const idx = ++this.index;
    const newService = ![...this.instances.values()].some((s) => s.instance.service === instance.service);
    const tagsChanged = JSON.stringify(had?.instance.tags ?? []) !== JSON.stringify(instance.tags ?? []);
    this.instances.set(key, { instance, createIndex: had?.createIndex ?? idx, modifyIndex: idx });
    this.serviceIndex.set(instance.service, idx);
    if (newService || tagsChanged) this.catalogIndex = idx;
    this.wake();
  }

  deregister(service: string, id: string): void {
    const key = `${service}/${id}`;
    if (!this.instances.delete(key)) throw new Error(`fake consul: no instance ${key}`);
    const idx = ++this.index;
    this.serviceIndex.set(service, idx);
    if (![...this.instances.values()].some((s) => s.instance.service === service)) this.catalogIndex = idx;
    this.wake();
  }

  setStatus(service: string, id: string, status: 'passing' | 'warning' | 'critical'): void {
    const s = this.instances.get(`${service}/${id}`);
    if (s === undefined) throw new Error(`fake consul: no instance ${service}/${id}`);
    this.register({ ...s.instance, status });
  }

  private bump(what: string): void {
    this.counts.set(what, this.count(what) + 1);
  }

  private wake(): void {
    for (const w of [...this.waiters]) {
      if (w.ready()) {
        this.waiters.delete(w);
        w.answer();
      }
    }
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (this.token !== undefined && req.headers['x-consul-token'] !== this.token)
      return text(res, 403, 'ACL not found');
    const dc = url.searchParams.get('dc');
    if (dc !== null && dc !== 'dc1') return text(res, 500, `No path to datacenter`);
    let name: string;
    let read: () => { index: number; body: unknown };
    if (req.method === 'GET' && url.pathname === '/v1/catalog/services') {
      name = 'catalog';
      read = () => ({ index: this.catalogIndex, body: this.catalog() });
    } else if (req.method === 'GET' && url.pathname.startsWith('/v1/health/service/')) {
      const service = decodeURIComponent(url.pathname.slice('/v1/health/service/'.length));
      const passing = url.searchParams.has('passing') && url.searchParams.get('passing') !== 'false';
      name = `health ${service}`;
      read = () => ({
        // An unknown service answers with the index of the catalog, as Consul's service table does.
        index: this.serviceIndex.get(service) ?? this.catalogIndex,
        body: this.health(service, passing),
      });
    } else {
      return text(res, 404, `Invalid URL path: not a valid endpoint of this fake agent`);
    }
    this.bump(name);
    const answer = () => {
      const { index, body } = read();
      res.writeHead(200, {
        'content-type': 'application/json',
        'x-consul-index': String(index),
        'x-consul-knownleader': 'true',
        'x-consul-lastcontact': '0',
      });
      res.end(JSON.stringify(body));
    };
    const min = url.searchParams.get('index');
    if (min === null || !/^[0-9]+$/.test(min) || Number(min) === 0) return answer();
    this.bump(`blocking ${name}`);
    const waitMs = parseWait(url.searchParams.get('wait'));
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = {
      ready: () => read().index > Number(min),
      answer: () => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        answer();
      },
    };
    if (waiter.ready()) return answer();
    timer = setTimeout(() => waiter.answer(), waitMs + Math.random() * (waitMs / 16));
    this.waiters.add(waiter);
    res.on('close', () => {
      clearTimeout(timer);
      this.waiters.delete(waiter);
    });
  }

  private catalog(): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const s of this.instances.values()) {
      const tags = out[s.instance.service] ?? [];
      for (const t of s.instance.tags ?? []) if (!tags.includes(t)) tags.push(t);
      out[s.instance.service] = tags;
    }
    return out;
  }

  private health(service: string, passing: boolean): unknown[] {
    const out: unknown[] = [];
    for (const s of this.instances.values()) {
      const i = s.instance;
      if (i.service !== service) continue;
      const status = i.status ?? 'passing';
      if (passing && status !== 'passing') continue;
      const node = i.node ?? 'node-1';
      out.push({
        Node: {
          ID: `id-${node}`,
          Node: node,
          Address: i.nodeAddress ?? '127.0.0.1',
          Datacenter: 'dc1',
          TaggedAddresses: {},
          Meta: {},
          CreateIndex: 1,
          ModifyIndex: 1,
        },
        Service: {
          ID: i.id,
          Service: i.service,
          Tags: i.tags ?? [],
          Address: i.address ?? '',
          Meta: i.meta ?? {},
          Port: i.port,
          Weights: { Passing: i.weight ?? 1, Warning: 1 },
          EnableTagOverride: false,
          CreateIndex: s.createIndex,
          ModifyIndex: s.modifyIndex,
        },
        Checks: [
          {
            Node: node,
            CheckID: 'serfHealth',
            Name: 'Serf Health Status',
            Status: 'passing',
            ServiceID: '',
            ServiceName: '',
          },
          {
            Node: node,
            CheckID: `service:${i.id}`,
            Name: `Service '${i.service}' check`,
            Status: status,
            ServiceID: i.id,
            ServiceName: i.service,
          },
        ],
      });
    }
    return out;
  }
}

/** Go's durations as Consul reads `wait` ("10s", "1m", "500ms"); default 5 minutes, at most 10. */
function parseWait(v: string | null): number {
  const m = v === null ? null : /^([0-9]+)(ms|s|m)$/.exec(v);
  const ms = m === null ? 300_000 : Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  return Math.min(ms, 600_000);
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.end(body);
}

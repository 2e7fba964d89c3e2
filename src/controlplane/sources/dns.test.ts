// The DNS source against a real resolver (Node's c-ares) asking a small authoritative DNS server on loopback UDP.

import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { DnsEndpointsObject, MeshObject } from '../model/objects.js';
import { DnsSource } from './dns.js';
import { FilesSource } from './files.js';
import { type MeshState, SourceRegistry } from './registry.js';
import type { SourceUpdate } from './source.js';

type Rr =
  | { type: 'A'; address: string; ttl: number }
  | { type: 'AAAA'; address: string; ttl: number }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string; ttl: number };

/**
 * An authoritative DNS server for the test: answers A, AAAA and SRV questions from `zone` (name -> records);
 * NXDOMAIN for unknown names, no answers for a known name without records of the type, SERVFAIL for names in
 * `failing`. Just enough of RFC 1035 for a stub resolver; not a general server.
 */
class TestDnsServer {
  readonly zone = new Map<string, Rr[]>();
  readonly failing = new Set<string>();
  private readonly socket: Socket = createSocket('udp4');

  async listen(): Promise<string> {
    this.socket.on('message', (msg, rinfo) => {
      const reply = this.answer(msg);
      if (reply !== undefined) this.socket.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => this.socket.bind(0, '127.0.0.1', r));
    return `127.0.0.1:${this.socket.address().port}`;
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }

  private answer(q: Buffer): Buffer | undefined {
    if (q.length < 12 || q.readUInt16BE(4) !== 1) return undefined;
    const labels: string[] = [];
    let i = 12;
    while (i < q.length && q[i] !== 0) {
      labels.push(q.subarray(i + 1, i + 1 + q[i]!).toString('latin1'));
      i += q[i]! + 1;
    }
    const qtype = q.readUInt16BE(i + 1);
    const question = q.subarray(12, i + 5);
    const name = labels.join('.').toLowerCase();
    const type = qtype === 1 ? 'A' : qtype === 28 ? 'AAAA' : qtype === 33 ? 'SRV' : '?';
    const records = this.zone.get(name);
    const answers = (records ?? []).filter((r) => r.type === type).map((r) => rr(r));
    const rcode = this.failing.has(name) ? 2 : records === undefined ? 3 : 0;
    const header = Buffer.alloc(12);
    header.writeUInt16BE(q.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8400 | (q.readUInt16BE(2) & 0x0100) | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(rcode === 0 ? answers.length : 0, 6);
    return Buffer.concat([header, question, ...(rcode === 0 ? answers : [])]);
  }
}

function encodeName(name: string): Buffer {
  return Buffer.concat([
    ...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0]),
  ]);
}

/** One answer record, its name a pointer to the question's (offset 12). */
function rr(r: Rr): Buffer {
  let data: Buffer;
  if (r.type === 'A') data = Buffer.from(r.address.split('.').map(Number));
  else if (r.type === 'AAAA') {
    const parts = r.address.split('::');
    const head = parts[0] ? parts[0].split(':') : [];
    const tail = parts[1] ? parts[1].split(':') : [];
    const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
    data = Buffer.alloc(16);
    groups.forEach((g, k) => {
      data.writeUInt16BE(Number.parseInt(g, 16), k * 2);
    });
  } else {
    const fixed = Buffer.alloc(6);
    fixed.writeUInt16BE(r.priority, 0);
    fixed.writeUInt16BE(r.weight, 2);
    fixed.writeUInt16BE(r.port, 4);
    data = Buffer.concat([fixed, encodeName(r.target)]);
  }
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0);
  head.writeUInt16BE(r.type === 'A' ? 1 : r.type === 'AAAA' ? 28 : 33, 2);
  head.writeUInt16BE(1, 4);
  head.writeUInt32BE(r.ttl, 6);
  head.writeUInt16BE(data.length, 10);
  return Buffer.concat([head, data]);
}

const server = new TestDnsServer();
let servers: string[];

before(async () => {
  servers = [await server.listen()];
});
after(() => server.close());

function entries(text: string): MeshObject[] {
  const r = parseManifests(text, { source: 'files', file: 'se.yaml' });
  assert.deepEqual(r.errors, []);
  return r.objects;
}

const API = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: api, namespace: ext}
spec:
  hosts: [api.example.test]
  ports: [{number: 443, name: https, protocol: TLS}, {number: 80, name: http, protocol: HTTP, targetPort: 8080}]
  resolution: DNS
`;

/** Runs a DNS source; `next(pred)` waits for an update that satisfies `pred` (10 s at most). */
function run(options: ConstructorParameters<typeof DnsSource>[0] = {}) {
  const source = new DnsSource({
    servers,
    minRefreshMs: 50,
    retryMs: 100,
    timeoutMs: 500,
    tries: 1,
    ...options,
  });
  const updates: SourceUpdate[] = [];
  let wake: (() => void) | undefined;
  const listener = (u: SourceUpdate) => {
    updates.push(u);
    wake?.();
  };
  const next = async (what: string, pred: (u: SourceUpdate & { kind: 'full' }) => boolean) => {
    const deadline = Date.now() + 10_000;
    for (let seen = 0; ; ) {
      while (seen < updates.length) {
        const u = updates[seen++]!;
        if (u.kind === 'full' && pred(u)) return u;
      }
      if (Date.now() > deadline)
        throw new Error(`no update with ${what}; last: ${JSON.stringify(updates.at(-1))}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200).unref();
      });
    }
  };
  return { source, listener, next, updates };
}

const addrs = (u: { objects: readonly MeshObject[] }) =>
  (u.objects as DnsEndpointsObject[]).flatMap((o) =>
    o.endpoints.map((e) => `${e.address} ${JSON.stringify(e.ports)}`),
  );

test('A and AAAA records become endpoints on each port, and are looked up again when their TTL runs out', async () => {
  server.zone.set('api.example.test', [
    { type: 'A', address: '192.0.2.2', ttl: 1 },
    { type: 'A', address: '192.0.2.1', ttl: 1 },
    { type: 'AAAA', address: '2001:db8::1', ttl: 60 },
  ]);
  const { source, listener, next } = run();
  await source.start(listener);
  try {
    source.observe(entries(API));
    const u = await next('three addresses', (x) => addrs(x).length === 3);
    assert.deepEqual(addrs(u), [
      '192.0.2.1 {"https":443,"http":8080}',
      '192.0.2.2 {"https":443,"http":8080}',
      '2001:db8::1 {"https":443,"http":8080}',
    ]);
    const o = u.objects[0] as DnsEndpointsObject;
    assert.equal(o.kind, 'DnsEndpoints');
    assert.deepEqual(o.meta, { name: 'api', namespace: 'ext', labels: {} });
    // The shortest TTL is 1 s: the change shows up without anything else happening.
    server.zone.set('api.example.test', [{ type: 'A', address: '192.0.2.9', ttl: 1 }]);
    const v = await next('the new address', (x) => addrs(x).join() === '192.0.2.9 {"https":443,"http":8080}');
    assert.deepEqual(v.problems, []);
  } finally {
    await source.close();
  }
});

test('a failed lookup keeps the last addresses, says so, and recovers', async () => {
  server.zone.set('flaky.example.test', [{ type: 'A', address: '198.51.100.7', ttl: 1 }]);
  const { source, listener, next } = run();
  await source.start(listener);
  try {
    source.observe(entries(API.replace('api.example.test', 'flaky.example.test')));
    await next('an address', (x) => addrs(x).length === 1);
    server.failing.add('flaky.example.test');
    const bad = await next('a problem', (x) => x.problems.length === 1);
    assert.deepEqual(addrs(bad), ['198.51.100.7 {"https":443,"http":8080}']);
    assert.equal(bad.problems[0]!.code, 'RA0401');
    assert.match(
      bad.problems[0]!.message,
      /^se\.yaml: ServiceEntry ext\/api: cannot resolve flaky\.example\.test: \w+ \(serving the last addresses found\)$/,
    );
    server.failing.delete('flaky.example.test');
    await next('no problem', (x) => x.problems.length === 0 && addrs(x).length === 1);
  } finally {
    await source.close();
  }
});

test('SRV records (annotation remora.io/dns-srv) give the targets and ports; a removed entry drops its endpoints', async () => {
  server.zone.set('_grpc._tcp.backends.example.test', [
    { type: 'SRV', priority: 0, weight: 5, port: 7001, target: 'b1.example.test', ttl: 1 },
    { type: 'SRV', priority: 0, weight: 5, port: 7002, target: 'b2.example.test', ttl: 1 },
  ]);
  server.zone.set('b1.example.test', [{ type: 'A', address: '203.0.113.1', ttl: 1 }]);
  server.zone.set('b2.example.test', [{ type: 'A', address: '203.0.113.2', ttl: 1 }]);
  const { source, listener, next } = run();
  await source.start(listener);
  try {
    const se = entries(`
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: backends, namespace: ext, annotations: {remora.io/dns-srv: "true"}}
spec: {hosts: [backends.example.test], ports: [{number: 7000, name: grpc, protocol: GRPC}], resolution: DNS}
`);
    source.observe(se);
    const u = await next('two SRV targets', (x) => addrs(x).length === 2);
    assert.deepEqual(addrs(u), ['203.0.113.1 {"grpc":7001}', '203.0.113.2 {"grpc":7002}']);
    assert.ok(addrs(u).every((a) => isIPv4(a.split(' ')[0]!)));
    source.observe([]);
    await next('nothing', (x) => x.objects.length === 0);
  } finally {
    await source.close();
  }
});

test('with the files source in one registry: a ServiceEntry in a file becomes a service with resolved endpoints', async () => {
  server.zone.set('pay.example.test', [{ type: 'A', address: '192.0.2.50', ttl: 1 }]);
  const dir = mkdtempSync(join(tmpdir(), 'remora-dns-'));
  writeFileSync(join(dir, 'pay.yaml'), API.replace('api.example.test', 'pay.example.test'));
  const registry = new SourceRegistry()
    .add(new FilesSource({ dir, debounceMs: 20 }))
    .add(new DnsSource({ servers, minRefreshMs: 50, timeoutMs: 500, tries: 1 }));
  try {
    const resolved = new Promise<MeshState>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('pay.example.test was not resolved in 10 s')), 10_000);
      registry.subscribe((s) => {
        if (s.snapshot.endpoints('pay.example.test').length === 0) return;
        clearTimeout(timer);
        resolve(s);
      });
    });
    const first = await registry.start();
    assert.equal(first.snapshot.service('pay.example.test')?.kind, 'ServiceEntry');
    const s = await resolved;
    assert.deepEqual(
      s.snapshot.endpoints('pay.example.test').map((e) => [e.address, e.ports, e.from]),
      [['192.0.2.50', { https: 443, http: 8080 }, 'DnsEndpoints/ext/api']],
    );
  } finally {
    await registry.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

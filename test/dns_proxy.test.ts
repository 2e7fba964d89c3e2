// The sidecar's DNS port (`remora proxy --dns-port`): queries forwarded over UDP and TCP to real resolvers,
// SERVFAIL when none answers, garbage ignored. The capture end-to-end test sends an application's queries here.

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { DnsProxy } from '../src/dataplane/dns/dns_proxy.js';
import { StatsStore } from '../src/dataplane/observe/stats.js';
import { type DnsServer, startDnsServer } from './support/dns_server.js';

let upstream: DnsServer;
let proxy: DnsProxy;
const store = new StatsStore();

function counter(name: string): number {
  for (const c of store.allCounters()) if (c.name === name) return c.value;
  throw new Error(`no counter ${name}`);
}

function resolverVia(port: number): Resolver {
  const r = new Resolver({ timeout: 3000, tries: 1 });
  r.setServers([`127.0.0.1:${port}`]);
  return r;
}

before(async () => {
  upstream = await startDnsServer({ 'web.mesh.test': '10.1.2.3' });
  proxy = await DnsProxy.start(
    { port: 0, addresses: ['127.0.0.1'], resolvers: [{ address: '127.0.0.1', port: upstream.port }] },
    store,
  );
});

after(async () => {
  await proxy.close();
  await upstream.close();
});

test('UDP queries are forwarded to the resolver and answered', async () => {
  assert.deepEqual(await resolverVia(proxy.udpPort).resolve4('web.mesh.test'), ['10.1.2.3']);
  await assert.rejects(resolverVia(proxy.udpPort).resolve4('nowhere.mesh.test'), { code: 'ENOTFOUND' });
  assert.ok(upstream.queries.includes('web.mesh.test'));
  assert.ok(counter('dns_proxy.downstream_rx_queries') >= 2);
});

test('TCP queries are forwarded too', async () => {
  // A query for web.mesh.test, type A, with the 2-byte length prefix of DNS over TCP.
  const name = Buffer.concat(
    ['web', 'mesh', 'test'].map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
  );
  const query = Buffer.concat([
    Buffer.from([0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    name,
    Buffer.from([0, 0, 1, 0, 1]),
  ]);
  const framed = Buffer.concat([Buffer.from([0, query.length]), query]);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: proxy.tcpPort }, () => s.write(framed));
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        s.destroy();
        resolve(buf.subarray(2));
      }
    });
    s.on('error', reject);
  });
  assert.equal(reply.readUInt16BE(0), 0x1234);
  assert.equal(reply.readUInt16BE(6), 1, 'one answer');
  assert.deepEqual([...reply.subarray(reply.length - 4)], [10, 1, 2, 3]);
});

test('with no resolver answering, the client gets SERVFAIL at once, not a timeout', async () => {
  const dead = createSocket('udp4');
  await new Promise<void>((r) => dead.bind(0, '127.0.0.1', r));
  const silent = await DnsProxy.start(
    {
      port: 0,
      addresses: ['127.0.0.1'],
      resolvers: [{ address: '127.0.0.1', port: dead.address().port }],
      timeoutMs: 200,
    },
    new StatsStore(),
  );
  try {
    await assert.rejects(resolverVia(silent.udpPort).resolve4('web.mesh.test'), { code: 'ESERVFAIL' });
  } finally {
    await silent.close();
    dead.close();
  }
});

test('garbage is counted and ignored; the port keeps serving', async () => {
  const before = counter('dns_proxy.downstream_rx_invalid');
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.send(Buffer.from('not dns'), proxy.udpPort, '127.0.0.1', () => r()));
  s.close();
  assert.deepEqual(await resolverVia(proxy.udpPort).resolve4('web.mesh.test'), ['10.1.2.3']);
  assert.equal(counter('dns_proxy.downstream_rx_invalid'), before + 1);
});

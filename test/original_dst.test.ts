// ORIGINAL_DST clusters, upstream_bind_config and dual-stack listeners on loopback (no capture rules needed: the
// end-to-end capture test in capture.test.ts covers redirected connections, as root).

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  tcpListener,
} from './support/proxy.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const PASSTHROUGH: Json = {
  name: 'passthrough',
  type: 'ORIGINAL_DST',
  lb_policy: 'CLUSTER_PROVIDED',
  connect_timeout: '1s',
  original_dst_lb_config: { use_http_header: true },
};

let upstream: Upstream;
let proxy: RunningProxy;
const seenFrom: string[] = [];
let tcpEcho: { port: number; close(): Promise<void> };

before(async () => {
  upstream = await startUpstream('web', (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ remote: req.socket.remoteAddress, xff: req.headers['x-forwarded-for'] }));
  });
  tcpEcho = await startTcpServer((s) => {
    seenFrom.push(s.remoteAddress ?? '');
    s.pipe(s);
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('to-original', routes([{ match: { prefix: '/' }, route: { cluster: 'passthrough' } }])),
        httpListener('bound', routes([{ match: { prefix: '/' }, route: { cluster: 'from-127-0-0-5' } }])),
        tcpListener('tcp-original', 'passthrough-tcp'),
        {
          ...httpListener(
            'dual',
            routes([{ match: { prefix: '/' }, route: { cluster: 'from-127-0-0-5' } }]),
            {
              use_remote_address: true,
            },
          ),
          address: { socket_address: { address: '::', port_value: 0, ipv4_compat: true } },
        },
        {
          ...tcpListener('v6-only', 'passthrough-tcp'),
          address: { socket_address: { address: '::', port_value: 0 } },
        },
        { ...tcpListener('not-bound', 'passthrough-tcp'), bind_to_port: false },
      ],
      [
        PASSTHROUGH,
        { ...PASSTHROUGH, name: 'passthrough-tcp', original_dst_lb_config: undefined },
        staticCluster('from-127-0-0-5', [upstream.port], {
          upstream_bind_config: { source_address: { address: '127.0.0.5', port_value: 0 } },
        }),
      ],
    ),
  );
});

after(async () => {
  await proxy.close();
  await upstream.close();
  await tcpEcho.close();
});

test('ORIGINAL_DST with use_http_header sends the request where x-envoy-original-dst-host says', async () => {
  const r = await curl([
    '-sS',
    '-H',
    `x-envoy-original-dst-host: 127.0.0.1:${upstream.port}`,
    `${proxy.url('to-original')}/`,
  ]);
  assert.equal(r.status, 200);
  assert.equal(proxy.stat('cluster.passthrough.membership_total'), 1);
});

test('ORIGINAL_DST without an original destination answers 503 and says why, rather than loop', async () => {
  const r = await curl(['-sS', `${proxy.url('to-original')}/`]);
  assert.equal(r.status, 503);
  assert.match(r.body, /ORIGINAL_DST and this connection has no original destination/);
  const bad = await curl([
    '-sS',
    '-H',
    'x-envoy-original-dst-host: not-an-address',
    `${proxy.url('to-original')}/`,
  ]);
  assert.equal(bad.status, 503);
});

test('a raw TCP connection that was not redirected is closed by an ORIGINAL_DST tcp_proxy', async () => {
  const s = connect({ host: '127.0.0.1', port: proxy.port('tcp-original') });
  const closed = await new Promise<string>((resolve) => {
    let got = '';
    s.on('data', (d) => {
      got += d;
    });
    s.on('error', () => undefined);
    s.on('close', () => resolve(got));
    s.write('hello');
  });
  assert.equal(closed, '');
  assert.deepEqual(seenFrom, []);
  assert.equal(proxy.stat('cluster.passthrough-tcp.upstream_cx_none_healthy'), 1);
});

test('upstream_bind_config: upstream connections come from the source address', async () => {
  const r = await curl(['-sS', `${proxy.url('bound')}/`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).remote, '127.0.0.5');
});

test('a listener on :: with ipv4_compat takes IPv4 and reports the peer as IPv4', async () => {
  const r = await curl(['-sS', `http://127.0.0.1:${proxy.port('dual')}/`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).xff, '127.0.0.1');
  const v6 = await curl(['-sS', '-g', `http://[::1]:${proxy.port('dual')}/`]);
  assert.equal(JSON.parse(v6.body).xff, '::1');
});

test('a listener on :: without ipv4_compat is IPv6 only, as in Envoy', async () => {
  const err = await new Promise<string>((resolve) => {
    const s = connect({ host: '127.0.0.1', port: proxy.port('v6-only') });
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
  assert.equal(err, 'ECONNREFUSED');
});

test('a listener with bind_to_port false binds nothing', async () => {
  const addr = proxy.server.listenerAddress('not-bound');
  assert.deepEqual(addr, { address: '127.0.0.1', port: 0 });
  const listeners = await curl(['-sS', `${proxy.adminUrl}/listeners?format=json`]);
  assert.match(listeners.body, /not-bound/);
});

// Integration: hostile bytes never crash the proxy — mutated requests and responses from a seeded generator,
// then a normal request on a fresh connection still works.

import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { seededRandom } from '../src/dataplane/upstream/lb/test_support.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const SPICE = [
  '\r',
  '\n',
  '\0',
  ':',
  ' ',
  '\t',
  ',',
  ';',
  '0',
  'f',
  '-',
  '\r\n',
  '\r\n\r\n',
  '\xff',
  'chunked',
];

function mutate(base: string, random: () => number): Buffer {
  let s = base;
  const edits = 1 + Math.floor(random() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(random() * (s.length + 1));
    const op = random();
    if (op < 0.4) s = s.slice(0, at) + SPICE[Math.floor(random() * SPICE.length)] + s.slice(at);
    else if (op < 0.7) s = s.slice(0, at) + s.slice(at + 1 + Math.floor(random() * 4));
    else if (op < 0.85) s = s.slice(0, at);
    else s = s.slice(0, at) + s.slice(at, at + 8).repeat(2) + s.slice(at + 8);
  }
  return Buffer.from(s, 'latin1');
}

const REQUESTS = [
  'GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n',
  'POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello',
  'POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
  'GET /bad HTTP/1.1\r\nHost: x\r\n\r\n',
];
const RESPONSES = [
  'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-t: 1\r\n\r\n',
  'HTTP/1.1 204 No Content\r\n\r\n',
  'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
];

let proxy: RunningProxy;
let ok: Upstream;
let garbage: { port: number; close(): Promise<void> };
// Seeded so a failure can be replayed.
const random = seededRandom(20261126);

before(async () => {
  ok = await startUpstream('ok');
  // An upstream that answers every request with a mutated response, then closes.
  garbage = await startTcpServer((s) => {
    s.once('data', () => {
      const base = RESPONSES[Math.floor(random() * RESPONSES.length)]!;
      s.end(mutate(base, random));
    });
  });
  proxy = await startProxy(
    bootstrap(
      [
        httpListener(
          'main',
          routes([
            { match: { prefix: '/bad' }, route: { cluster: 'garbage', timeout: '2s' } },
            { match: { prefix: '/' }, route: { cluster: 'ok', timeout: '2s' } },
          ]),
          { request_headers_timeout: '1s', stream_idle_timeout: '2s' },
        ),
      ],
      [staticCluster('ok', [ok.port]), staticCluster('garbage', [garbage.port])],
    ),
  );
});

after(async () => {
  await proxy.close();
  await ok.close();
  await garbage.close();
});

function send(port: number, data: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(data);
      s.end();
    });
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 4000);
    s.on('data', () => undefined);
    s.on('close', done);
    s.on('error', done);
  });
}

test('2000 mutated requests and responses leave the proxy up and serving', async () => {
  const port = proxy.port();
  for (let batch = 0; batch < 50; batch++) {
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const base = REQUESTS[Math.floor(random() * REQUESTS.length)]!;
      sends.push(send(port, mutate(base, random)));
    }
    // Clean requests to the upstream that answers with mutated responses.
    for (let i = 0; i < 5; i++) sends.push(send(port, Buffer.from(REQUESTS[3]!, 'latin1')));
    await Promise.all(sends);
  }
  // The mutated responses were really exercised, not only the request parser.
  assert.ok(
    proxy.stat('cluster.garbage.upstream_rq_total') >= 50,
    'mutated upstream responses were exercised',
  );
  const r = await curl([`${proxy.url()}/after`]);
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).url, '/after');
});

// Integration: header mutations at every route level, append actions, substitutions, hop-by-hop and x-forwarded-*/x-request-id.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type CurlResult, curl, parseResponse, rawExchange } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

/** Response headers the upstream always sends, for the response-side mutations to act on. */
const UPSTREAM_RESPONSE_HEADERS = [
  'x-app',
  'x-aia',
  'x-ow',
  'x-owe',
  'x-legacy-false',
  'x-legacy-true',
  'x-drop-rc',
  'x-drop-vh',
  'x-drop-route',
  'x-drop-wc',
];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let proxy: RunningProxy;
let echo: Upstream;
let raw: { port: number; close(): Promise<void> };

function add(key: string, value: string, how: Json = {}): Json {
  return { header: { key, value }, ...how };
}
const action = (append_action: string): Json => ({ append_action });

before(async () => {
  echo = await startUpstream('echo', (req, res, body) => {
    for (const h of UPSTREAM_RESPONSE_HEADERS) res.setHeader(h, 'upstream');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name: 'echo', url: req.url, headers: req.headers, body }));
  });
  // An upstream answering with hop-by-hop headers of its own, byte for byte.
  raw = await startTcpServer((s) => {
    let buf = '';
    s.on('data', (c: Buffer) => {
      buf += c.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        buf = buf.slice(end + 4);
        s.write(
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive, X-Resp-Listed\r\n' +
            'Keep-Alive: timeout=99, max=7\r\nProxy-Connection: keep-alive\r\nX-Resp-Listed: secret\r\n' +
            'Upgrade: foo\r\nTE: trailers\r\nX-Kept: yes\r\n\r\nok',
        );
      }
    });
  });
  const levels: Json = {
    match: { prefix: '/levels' },
    route: {
      weighted_clusters: {
        clusters: [
          {
            name: 'echo',
            weight: 1,
            request_headers_to_add: [add('x-level', 'wc')],
            request_headers_to_remove: ['x-drop-wc'],
            response_headers_to_add: [add('x-resp-level', 'wc')],
            response_headers_to_remove: ['x-drop-wc'],
          },
        ],
      },
    },
    request_headers_to_add: [
      add('x-level', 'route'),
      add('x-winner', 'route', action('OVERWRITE_IF_EXISTS_OR_ADD')),
      add('x-added-by-route', 'route'),
    ],
    request_headers_to_remove: ['x-drop-route'],
    response_headers_to_add: [
      add('x-resp-level', 'route'),
      add('x-resp-winner', 'route', action('OVERWRITE_IF_EXISTS_OR_ADD')),
    ],
    response_headers_to_remove: ['x-drop-route'],
  };
  const actions: Json = {
    match: { prefix: '/actions' },
    route: { cluster: 'echo' },
    request_headers_to_add: [
      add('x-app', 'proxy', action('APPEND_IF_EXISTS_OR_ADD')),
      add('x-app-new', 'proxy'),
      add('x-aia', 'proxy', action('ADD_IF_ABSENT')),
      add('x-aia-new', 'proxy', action('ADD_IF_ABSENT')),
      add('x-ow', 'proxy', action('OVERWRITE_IF_EXISTS_OR_ADD')),
      add('x-ow-new', 'proxy', action('OVERWRITE_IF_EXISTS_OR_ADD')),
      add('x-owe', 'proxy', action('OVERWRITE_IF_EXISTS')),
      add('x-owe-new', 'proxy', action('OVERWRITE_IF_EXISTS')),
      add('x-legacy-false', 'proxy', { append: false }),
      add('x-legacy-true', 'proxy', { append: true }),
    ],
    response_headers_to_add: [
      add('x-app', 'proxy', action('APPEND_IF_EXISTS_OR_ADD')),
      add('x-app-new', 'proxy'),
      add('x-aia', 'proxy', action('ADD_IF_ABSENT')),
      add('x-aia-new', 'proxy', action('ADD_IF_ABSENT')),
      add('x-ow', 'proxy', action('OVERWRITE_IF_EXISTS_OR_ADD')),
      add('x-ow-new', 'proxy', action('OVERWRITE_IF_EXISTS_OR_ADD')),
      add('x-owe', 'proxy', action('OVERWRITE_IF_EXISTS')),
      add('x-owe-new', 'proxy', action('OVERWRITE_IF_EXISTS')),
      add('x-legacy-false', 'proxy', { append: false }),
      add('x-legacy-true', 'proxy', { append: true }),
    ],
  };
  const vars: Json = {
    match: { prefix: '/vars' },
    route: { cluster: 'echo' },
    request_headers_to_add: [
      add('x-client', '%DOWNSTREAM_REMOTE_ADDRESS%'),
      add('x-client-ip', 'ip=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%;'),
    ],
    response_headers_to_add: [add('x-seen-client', '%DOWNSTREAM_REMOTE_ADDRESS%')],
  };
  const mutations: Json = {
    name: 'mutations',
    request_headers_to_add: [
      add('x-level', 'rc'),
      add('x-winner', 'rc', action('OVERWRITE_IF_EXISTS_OR_ADD')),
    ],
    request_headers_to_remove: ['x-drop-rc', 'x-added-by-route'],
    response_headers_to_add: [
      add('x-resp-level', 'rc'),
      add('x-resp-winner', 'rc', action('OVERWRITE_IF_EXISTS_OR_ADD')),
    ],
    response_headers_to_remove: ['x-drop-rc'],
    virtual_hosts: [
      {
        name: 'vh',
        domains: ['*'],
        request_headers_to_add: [add('x-level', 'vh')],
        request_headers_to_remove: ['x-drop-vh'],
        response_headers_to_add: [add('x-resp-level', 'vh')],
        response_headers_to_remove: ['x-drop-vh'],
        routes: [
          levels,
          actions,
          vars,
          {
            match: { path: '/direct' },
            direct_response: { status: 200, body: { inline_string: 'direct\n' } },
            response_headers_to_add: [add('x-resp-level', 'route')],
          },
          { match: { prefix: '/hop-response' }, route: { cluster: 'raw' } },
          { match: { prefix: '/' }, route: { cluster: 'echo' } },
        ],
      },
    ],
  };
  const plain = routes([{ match: { prefix: '/' }, route: { cluster: 'echo' } }]);
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('main', mutations, { stat_prefix: 'main' }),
        httpListener('edge', plain, { stat_prefix: 'edge', use_remote_address: true }),
      ],
      [staticCluster('echo', [echo.port]), staticCluster('raw', [raw.port])],
    ),
  );
});

after(async () => {
  await proxy?.close();
  await echo?.close();
  await raw?.close();
});

function get(listener: string, path: string, headers: Record<string, string> = {}): Promise<CurlResult> {
  const args = [`${proxy.url(listener)}${path}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  return curl(args);
}

/** The headers of the request the upstream saw last. */
function seen(): Upstream['requests'][number]['headers'] {
  assert.ok(echo.requests.length > 0, 'the upstream got no request');
  return echo.requests[echo.requests.length - 1]!.headers;
}

describe('request and response header mutations', () => {
  test('every level adds, most specific first: weighted cluster, route, virtual host, route configuration', async () => {
    const r = await get('main', '/levels', { 'x-level': 'client' });
    assert.equal(r.status, 200);
    assert.equal(seen()['x-level'], 'client, wc, route, vh, rc');
    assert.equal(r.headers['x-resp-level'], 'wc, route, vh, rc');
  });

  test('an overwrite at a less specific level wins (most_specific_header_mutations_wins is false)', async () => {
    const r = await get('main', '/levels', { 'x-winner': 'client' });
    assert.equal(seen()['x-winner'], 'rc');
    assert.equal(r.headers['x-resp-winner'], 'rc');
    // The route adds x-added-by-route, then the route configuration removes it.
    assert.equal(seen()['x-added-by-route'], undefined);
  });

  test('every level removes request and response headers', async () => {
    const r = await get('main', '/levels', {
      'x-drop-rc': '1',
      'x-drop-vh': '1',
      'x-drop-route': '1',
      'x-drop-wc': '1',
      'x-keep': '1',
    });
    const h = seen();
    for (const name of ['x-drop-rc', 'x-drop-vh', 'x-drop-route', 'x-drop-wc']) {
      assert.equal(h[name], undefined, `request header ${name} reached the upstream`);
      assert.equal(r.headers[name], undefined, `response header ${name} reached the client`);
    }
    assert.equal(h['x-keep'], '1');
  });

  test('a route without mutations of its own still gets the virtual host and route configuration ones', async () => {
    const r = await get('main', '/plain', { 'x-drop-vh': '1', 'x-drop-route': '1' });
    const h = seen();
    assert.equal(h['x-level'], 'vh, rc');
    assert.equal(h['x-winner'], 'rc');
    assert.equal(h['x-drop-vh'], undefined);
    assert.equal(h['x-drop-route'], '1', 'a route-level removal must not apply to other routes');
    assert.equal(r.headers['x-resp-level'], 'vh, rc');
    assert.equal(r.headers['x-drop-route'], 'upstream');
    assert.equal(r.headers['x-drop-wc'], 'upstream');
  });

  test('a direct response carries the response headers of route, virtual host and route configuration', async () => {
    const r = await get('main', '/direct');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'direct\n');
    assert.equal(r.headers['x-resp-level'], 'route, vh, rc');
    assert.equal(r.headers['x-resp-winner'], 'rc');
  });

  test('append_action on request headers, and the deprecated append', async () => {
    await get('main', '/actions', {
      'x-app': 'client',
      'x-aia': 'client',
      'x-ow': 'client',
      'x-owe': 'client',
      'x-legacy-false': 'client',
      'x-legacy-true': 'client',
    });
    const h = seen();
    assert.equal(h['x-app'], 'client, proxy', 'APPEND_IF_EXISTS_OR_ADD appends');
    assert.equal(h['x-app-new'], 'proxy', 'the default action adds an absent header');
    assert.equal(h['x-aia'], 'client', 'ADD_IF_ABSENT leaves a present header alone');
    assert.equal(h['x-aia-new'], 'proxy', 'ADD_IF_ABSENT adds an absent header');
    assert.equal(h['x-ow'], 'proxy', 'OVERWRITE_IF_EXISTS_OR_ADD overwrites');
    assert.equal(h['x-ow-new'], 'proxy', 'OVERWRITE_IF_EXISTS_OR_ADD adds');
    assert.equal(h['x-owe'], 'proxy', 'OVERWRITE_IF_EXISTS overwrites');
    assert.equal(h['x-owe-new'], undefined, 'OVERWRITE_IF_EXISTS does not add');
    assert.equal(h['x-legacy-false'], 'proxy', 'append: false overwrites');
    assert.equal(h['x-legacy-true'], 'client, proxy', 'append: true appends');
  });

  test('append_action on response headers, and the deprecated append', async () => {
    const r = await get('main', '/actions');
    const h = r.headers;
    assert.equal(h['x-app'], 'upstream, proxy');
    assert.equal(h['x-app-new'], 'proxy');
    assert.equal(h['x-aia'], 'upstream');
    assert.equal(h['x-aia-new'], 'proxy');
    assert.equal(h['x-ow'], 'proxy');
    assert.equal(h['x-ow-new'], 'proxy');
    assert.equal(h['x-owe'], 'proxy');
    assert.equal(h['x-owe-new'], undefined);
    assert.equal(h['x-legacy-false'], 'proxy');
    assert.equal(h['x-legacy-true'], 'upstream, proxy');
  });

  test('%DOWNSTREAM_REMOTE_ADDRESS% is the client address and port', async () => {
    const s = connect(proxy.port('main'), '127.0.0.1');
    await once(s, 'connect');
    const clientPort = s.localPort;
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.write('GET /vars HTTP/1.1\r\nHost: vars.test\r\nConnection: close\r\n\r\n');
    await once(s, 'close');
    const r = parseResponse(Buffer.concat(chunks).toString('latin1'));
    assert.equal(r.status, 200);
    const h = seen();
    assert.equal(h['x-client'], `127.0.0.1:${clientPort}`);
    assert.equal(h['x-client-ip'], 'ip=127.0.0.1;');
    assert.equal(r.headers['x-seen-client'], `127.0.0.1:${clientPort}`);
  });
});

describe('hop-by-hop headers', () => {
  test('connection-level request headers, and the names Connection lists, never reach the upstream', async () => {
    const r = await rawExchange(
      proxy.port('main'),
      'GET /plain HTTP/1.1\r\nHost: hop.test\r\nConnection: close, X-Hop-Listed\r\n' +
        'Keep-Alive: timeout=30\r\nTE: gzip\r\nProxy-Connection: keep-alive\r\nX-Hop-Listed: secret\r\n' +
        'X-Kept: yes\r\n\r\n',
    );
    assert.equal(parseResponse(r).status, 200);
    const h = seen();
    for (const name of ['keep-alive', 'te', 'proxy-connection', 'x-hop-listed', 'upgrade']) {
      assert.equal(h[name], undefined, `${name} reached the upstream`);
    }
    assert.doesNotMatch(h.connection ?? '', /x-hop-listed|close/i);
    assert.equal(h['x-kept'], 'yes');
  });

  test('an h2c Upgrade from curl is not forwarded: the upstream sees neither Upgrade nor HTTP2-Settings', async () => {
    const r = await curl(['--http2', '-H', 'x-kept: yes', `${proxy.url('main')}/plain`]);
    assert.equal(r.status, 200);
    const h = seen();
    assert.equal(h.upgrade, undefined);
    assert.equal(h['http2-settings'], undefined);
    assert.doesNotMatch(h.connection ?? '', /upgrade|http2-settings/i);
    assert.equal(h['x-kept'], 'yes');
  });

  test("the upstream's connection-level response headers never reach the client", async () => {
    const text = await rawExchange(
      proxy.port('main'),
      'GET /hop-response HTTP/1.1\r\nHost: hop.test\r\nConnection: close\r\n\r\n',
    );
    const r = parseResponse(text);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok');
    assert.equal(r.headers['x-kept'], 'yes');
    assert.equal(r.headers.connection, 'close');
    for (const name of ['keep-alive', 'proxy-connection', 'x-resp-listed', 'upgrade', 'te']) {
      assert.equal(r.headers[name], undefined, `${name} reached the client:\n${text}`);
    }
  });

  test('on a keep-alive connection the client sees only the proxy’s own keep-alive, not the upstream’s', async () => {
    const r = await get('main', '/hop-response');
    assert.equal(r.status, 200);
    assert.doesNotMatch(r.headers['keep-alive'] ?? '', /max=7|timeout=99/);
    assert.doesNotMatch(r.headers.connection ?? '', /x-resp-listed/i);
    assert.equal(r.headers['x-resp-listed'], undefined);
  });
});

describe('x-forwarded-proto, x-forwarded-for and x-request-id', () => {
  test('x-forwarded-proto is set when absent, and kept from a trusted client by default', async () => {
    await get('main', '/plain');
    assert.equal(seen()['x-forwarded-proto'], 'http');
    await get('main', '/plain', { 'x-forwarded-proto': 'https' });
    assert.equal(seen()['x-forwarded-proto'], 'https');
  });

  test('with use_remote_address the client’s x-forwarded-proto is overwritten', async () => {
    await get('edge', '/', { 'x-forwarded-proto': 'https' });
    assert.equal(seen()['x-forwarded-proto'], 'http');
  });

  test('x-request-id is generated when absent (a fresh UUID per request) and kept when present', async () => {
    await get('main', '/plain');
    const first = seen()['x-request-id'];
    assert.match(String(first), UUID);
    await get('main', '/plain');
    const second = seen()['x-request-id'];
    assert.match(String(second), UUID);
    assert.notEqual(first, second);
    await get('main', '/plain', { 'x-request-id': 'client-chosen-id' });
    assert.equal(seen()['x-request-id'], 'client-chosen-id');
  });

  test('x-forwarded-for is not appended by default', async () => {
    await get('main', '/plain');
    assert.equal(seen()['x-forwarded-for'], undefined);
    await get('main', '/plain', { 'x-forwarded-for': '10.0.0.1' });
    assert.equal(seen()['x-forwarded-for'], '10.0.0.1');
  });

  test('x-forwarded-for gets the client address appended with use_remote_address: true', async () => {
    await get('edge', '/');
    assert.equal(seen()['x-forwarded-for'], '127.0.0.1');
    await get('edge', '/', { 'x-forwarded-for': '10.0.0.1' });
    assert.equal(seen()['x-forwarded-for'], '10.0.0.1,127.0.0.1');
  });
});

// gRPC through the proxy with real @grpc/grpc-js clients and servers: all four call kinds over h2c and TLS,
// status trailers, deadlines, gRPC-shaped local replies, retries on gRPC codes, per-status stats.

import assert from 'node:assert/strict';
import { connect as h2connect, type IncomingHttpHeaders } from 'node:http2';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type Certs, makeCerts } from './support/certs.js';
import {
  bootstrap,
  deadCluster,
  httpListener,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { serving, trusting, upstreamTls, withTls } from './support/tls_config.js';
import { closedPort } from './support/upstream.js';

const HTTP2_UPSTREAM = {
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
};

const bytes = (b: Buffer): Buffer => b;
function method(
  name: string,
  requestStream: boolean,
  responseStream: boolean,
): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  };
}

/** A service of raw byte messages: no .proto needed. */
const ECHO = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
  Fail: method('Fail', false, false),
  Slow: method('Slow', false, false),
  Flaky: method('Flaky', false, false),
};

type EchoClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => EchoClient;

let server: grpc.Server;
let serverPort = 0;
let tlsServer: grpc.Server | undefined;
let flakyCalls = 0;
let certs: Certs;
let proxy: RunningProxy;
const clients: grpc.Client[] = [];

before(async () => {
  certs = await makeCerts();
  server = new grpc.Server();
  server.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const m = new grpc.Metadata();
      m.set('x-served-by', 'echo');
      call.sendMetadata(m);
      cb(null, Buffer.concat([Buffer.from('echo:'), call.request]));
    },
    ServerStream: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const n = Number(call.request.toString());
      for (let i = 0; i < n; i++) call.write(Buffer.from(`m${i}`));
      call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      const parts: string[] = [];
      call.on('data', (d: Buffer) => parts.push(d.toString()));
      call.on('end', () => cb(null, Buffer.from(parts.join('+'))));
    },
    Bidi: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (d: Buffer) => call.write(Buffer.from(d.toString().toUpperCase())));
      call.on('end', () => call.end());
    },
    Fail: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing: ünïcode' });
    },
    Slow: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      setTimeout(() => cb(null, Buffer.from('late')), 3000).unref();
    },
    Flaky: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      flakyCalls++;
      if (flakyCalls % 2 === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'try again' });
      else cb(null, Buffer.from('ok after retry'));
    },
  });
  serverPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  // The same service behind TLS, for origination: the proxy speaks h2 over TLS to it.
  const secure = new grpc.Server();
  tlsServer = secure;
  secure.addService(ECHO, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) =>
      cb(null, Buffer.concat([Buffer.from('tls:'), call.request])),
  });
  const tlsPort = await new Promise<number>((resolve, reject) =>
    secure.bindAsync(
      '127.0.0.1:0',
      grpc.ServerCredentials.createSsl(null, [
        { cert_chain: Buffer.from(certs.server.cert), private_key: Buffer.from(certs.server.key) },
      ]),
      (e, p) => (e ? reject(e) : resolve(p)),
    ),
  );
  const dead = await closedPort();
  const plain = httpListener(
    'grpc',
    routes([
      {
        match: { prefix: '/test.Echo/Flaky' },
        route: { cluster: 'echo', retry_policy: { retry_on: 'unavailable', num_retries: 2 } },
      },
      { match: { prefix: '/test.Echo/' }, route: { cluster: 'echo' } },
      { match: { prefix: '/dead.Service/' }, route: { cluster: 'dead' } },
    ]),
  );
  const tls = withTls(
    httpListener('grpc_tls', routes([{ match: { prefix: '/' }, route: { cluster: 'echo' } }]), {
      stat_prefix: 'tls',
    }),
    serving(certs.server, { alpn_protocols: ['h2', 'http/1.1'] }),
  );
  const toTls = httpListener(
    'grpc_to_tls',
    routes([{ match: { prefix: '/' }, route: { cluster: 'echo_tls' } }]),
    {
      stat_prefix: 'to_tls',
    },
  );
  proxy = await startProxy(
    bootstrap(
      [plain, tls, toTls],
      [
        staticCluster('echo', [serverPort], HTTP2_UPSTREAM),
        deadCluster('dead', dead, HTTP2_UPSTREAM),
        staticCluster('echo_tls', [tlsPort], {
          ...HTTP2_UPSTREAM,
          ...upstreamTls({
            sni: 'localhost',
            ...trusting(certs.ca, {
              match_typed_subject_alt_names: [
                { san_type: 'URI', matcher: { exact: 'spiffe://cluster.local/ns/default/sa/web' } },
              ],
            }),
          }),
        }),
      ],
    ),
  );
});

after(async () => {
  for (const c of clients) c.close();
  await proxy?.close();
  server?.forceShutdown();
  tlsServer?.forceShutdown();
  await certs?.close();
});

function client(listener = 'grpc', tls = false): EchoClient {
  const address = `localhost:${proxy.port(listener)}`;
  const creds = tls
    ? grpc.credentials.createSsl(Buffer.from(certs.ca.cert))
    : grpc.credentials.createInsecure();
  const c = new EchoClient(address, creds);
  clients.push(c);
  return c;
}

function unary(c: EchoClient, name: string, msg: string, opts: grpc.CallOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    c[name]!(Buffer.from(msg), new grpc.Metadata(), opts, (err: grpc.ServiceError | null, v?: Buffer) =>
      err ? reject(err) : resolve(v!.toString()),
    );
  });
}

async function allFourKinds(c: EchoClient): Promise<void> {
  assert.equal(await unary(c, 'Unary', 'hi'), 'echo:hi');

  const streamed: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = c.ServerStream!(Buffer.from('5')) as grpc.ClientReadableStream<Buffer>;
    call.on('data', (d: Buffer) => streamed.push(d.toString()));
    call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
    call.on('error', reject);
  });
  assert.deepEqual(streamed, ['m0', 'm1', 'm2', 'm3', 'm4']);

  const joined = await new Promise<string>((resolve, reject) => {
    const call = c.ClientStream!((err: grpc.ServiceError | null, v?: Buffer) =>
      err ? reject(err) : resolve(v!.toString()),
    ) as grpc.ClientWritableStream<Buffer>;
    for (const p of ['a', 'b', 'c']) call.write(Buffer.from(p));
    call.end();
  });
  assert.equal(joined, 'a+b+c');

  const echoed: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = c.Bidi!() as grpc.ClientDuplexStream<Buffer, Buffer>;
    let sent = 0;
    const next = (): void => {
      if (sent === 3) return void call.end();
      call.write(Buffer.from(`x${sent++}`));
    };
    // Ping-pong: each answer must come back through the proxy before the next message goes out.
    call.on('data', (d: Buffer) => {
      echoed.push(d.toString());
      next();
    });
    call.on('status', (s: grpc.StatusObject) => (s.code === 0 ? resolve() : reject(new Error(s.details))));
    call.on('error', reject);
    next();
  });
  assert.deepEqual(echoed, ['X0', 'X1', 'X2']);
}

test('unary, server-streaming, client-streaming and bidirectional calls through h2c', async () => {
  await allFourKinds(client());
  assert.ok(proxy.stat('cluster.echo.upstream_cx_http2_total') >= 1);
  assert.ok(proxy.stat('http.ingress.downstream_rq_http2_total') >= 4);
});

test('the same four call kinds over TLS with ALPN h2', async () => {
  await allFourKinds(client('grpc_tls', true));
  assert.ok(proxy.stat('http.tls.downstream_cx_ssl_total') >= 1);
  assert.ok(proxy.stat('http.tls.downstream_rq_http2_total') >= 4);
});

test('calls reach an upstream over TLS (h2 by ALPN, CA and URI SAN verified)', async () => {
  assert.equal(await unary(client('grpc_to_tls'), 'Unary', 'hi'), 'tls:hi');
  assert.ok(proxy.stat('cluster.echo_tls.upstream_cx_http2_total') >= 1);
  assert.ok(proxy.stat('cluster.echo_tls.ssl.handshake') >= 1);
});

test('grpc-status, grpc-message and response metadata arrive as the server sent them', async () => {
  const c = client();
  const err = await unary(c, 'Fail', 'x').then(
    () => assert.fail('expected an error'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, grpc.status.NOT_FOUND);
  assert.equal(err.details, 'no such thing: ünïcode');
  const md = await new Promise<grpc.Metadata>((resolve, reject) => {
    const call = c.Unary!(
      Buffer.from('m'),
      (e: grpc.ServiceError | null) => e && reject(e),
    ) as grpc.ClientUnaryCall;
    call.on('metadata', resolve);
  });
  assert.deepEqual(md.get('x-served-by'), ['echo']);
});

/** One raw HTTP/2 gRPC request: what the proxy answers, headers and trailers, with no client-side deadline. */
async function rawCall(
  path: string,
  extra: Record<string, string> = {},
): Promise<{ headers: IncomingHttpHeaders; trailers: IncomingHttpHeaders | undefined }> {
  const session = h2connect(`http://127.0.0.1:${proxy.port('grpc')}`);
  try {
    return await new Promise((resolve, reject) => {
      const req = session.request({
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        ...extra,
      });
      let headers: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      req.on('response', (h) => {
        headers = h;
      });
      req.on('trailers', (t) => {
        trailers = t;
      });
      req.on('data', () => undefined);
      req.on('end', () => resolve({ headers, trailers }));
      req.on('error', reject);
      // A gRPC message: uncompressed flag, 4-byte length, payload.
      req.end(Buffer.from([0, 0, 0, 0, 1, 0x61]));
    });
  } finally {
    session.close();
  }
}

test('grpc-timeout is the route timeout: the proxy answers DEADLINE_EXCEEDED itself', async () => {
  const before = proxy.stat('cluster.echo.upstream_rq_timeout');
  const r = await rawCall('/test.Echo/Slow', { 'grpc-timeout': '150m' });
  assert.equal(r.headers[':status'], 200);
  // A trailers-only answer: the status is in the headers.
  assert.equal(r.headers['grpc-status'], '4');
  assert.match(decodeURIComponent(String(r.headers['grpc-message'])), /grpc-timeout of 150 ms/);
  assert.equal(proxy.stat('cluster.echo.upstream_rq_timeout'), before + 1);
  // grpc-js sees the same as DEADLINE_EXCEEDED.
  const err = await unary(client(), 'Slow', 'x', { deadline: Date.now() + 200 }).then(
    () => assert.fail('expected a deadline error'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, grpc.status.DEADLINE_EXCEEDED);
});

test('local replies to gRPC calls are gRPC errors: UNAVAILABLE with no upstream, UNIMPLEMENTED with no route', async () => {
  const r = await rawCall('/dead.Service/Call');
  assert.equal(r.headers[':status'], 200);
  assert.equal(r.headers['content-type'], 'application/grpc');
  assert.equal(r.headers['grpc-status'], '14');
  assert.match(decodeURIComponent(String(r.headers['grpc-message'])), /upstream connect error/);

  const missing = await rawCall('/nowhere.Service/Call');
  assert.equal(missing.headers[':status'], 200);
  assert.equal(missing.headers['grpc-status'], '12');

  const DeadClient = grpc.makeGenericClientConstructor(
    { Call: { ...method('Call', false, false), path: '/dead.Service/Call' } },
    'Dead',
  ) as unknown as new (
    a: string,
    c: grpc.ChannelCredentials,
  ) => EchoClient;
  const dc = new DeadClient(`localhost:${proxy.port('grpc')}`, grpc.credentials.createInsecure());
  clients.push(dc);
  const err = await unary(dc, 'Call', 'x').then(
    () => assert.fail('expected an error'),
    (e: grpc.ServiceError) => e,
  );
  assert.equal(err.code, grpc.status.UNAVAILABLE);
  assert.match(err.details, /upstream connect error/);
});

test('retry_on unavailable retries a call the upstream answered UNAVAILABLE', async () => {
  flakyCalls = 0;
  const retriesBefore = proxy.stat('cluster.echo.upstream_rq_retry');
  assert.equal(await unary(client(), 'Flaky', 'x'), 'ok after retry');
  assert.equal(flakyCalls, 2);
  assert.equal(proxy.stat('cluster.echo.upstream_rq_retry'), retriesBefore + 1);
});

test('calls are counted per gRPC status, with a grpc_response_status label in Prometheus', async () => {
  const ok = proxy.stat('http.ingress.grpc_response_status.0');
  const notFound = proxy.stat('http.ingress.grpc_response_status.5');
  const c = client();
  await unary(c, 'Unary', 'a');
  await unary(c, 'Fail', 'b').catch(() => undefined);
  assert.equal(proxy.stat('http.ingress.grpc_response_status.0'), ok + 1);
  assert.equal(proxy.stat('http.ingress.grpc_response_status.5'), notFound + 1);
  const text = await (await fetch(`${proxy.adminUrl}/stats/prometheus`)).text();
  assert.match(
    text,
    /envoy_http_grpc_response_status\{grpc_response_status="5",envoy_http_conn_manager_prefix="ingress"\} \d+/,
  );
});

// Integration: a cluster's transport_socket_matches choose each host's transport socket from its EDS metadata, as
// Istio's automatic mTLS needs — mutual TLS (certificates by SDS) to hosts labelled tlsMode istio, plaintext to the
// others, in one cluster — and the istio.alpn filter sets the ALPN those TLS connections offer, per upstream protocol.

import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createH2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { ProxyServer } from '../src/dataplane/server.js';
import { type Certs, CLIENT_SPIFFE_ID, makeCerts, SERVER_SANS } from './support/certs.js';
import { until } from './support/child.js';
import type { Json } from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';
import {
  adsBootstrap,
  type ControlPlane,
  edsCluster,
  get,
  type Resources,
  rdsListener,
  startControlPlane,
  startXdsProxy,
} from './support/xds.js';

const ADS = { ads: {}, resource_api_version: 'V3' };
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';
const ALPN = 'type.googleapis.com/istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const H2_OPTIONS = {
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
    '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
    explicit_http_config: { http2_protocol_options: {} },
  },
};
const ISTIO = { 'envoy.transport_socket_match': { tlsMode: 'istio' } };
const b64 = (pem: string) => Buffer.from(pem).toString('base64');

/** Istio's pair of matches: mutual TLS with the SDS secrets default and ROOTCA for tlsMode istio, else plaintext. */
const ISTIO_MATCHES: Json[] = [
  {
    name: 'tlsMode-istio',
    match: { tlsMode: 'istio' },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
        '@type': UPSTREAM_TLS,
        common_tls_context: {
          tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: ADS }],
          combined_validation_context: {
            default_validation_context: {
              match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: SERVER_SANS.uri } }],
            },
            validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: ADS },
          },
          alpn_protocols: ['istio-peer-exchange', 'istio'],
        },
        sni: 'outbound_.80_._.web.default.svc.cluster.local',
      },
    },
  },
  {
    name: 'tlsMode-disabled',
    match: {},
    transport_socket: { name: 'envoy.transport_sockets.raw_buffer', typed_config: { '@type': RAW } },
  },
];

const ALPN_FILTER: Json = {
  name: 'istio.alpn',
  typed_config: {
    '@type': ALPN,
    alpn_override: [
      { alpn_override: ['istio-http/1.0', 'istio'] },
      { upstream_protocol: 'HTTP11', alpn_override: ['istio-http/1.1', 'istio'] },
      { upstream_protocol: 'HTTP2', alpn_override: ['istio-h2', 'istio'] },
    ],
  },
};

/** An endpoint on 127.0.0.1, with LbEndpoint metadata when given. */
function lbEndpoint(port: number, metadata?: Json): Json {
  return {
    endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } },
    ...(metadata && { metadata: { filter_metadata: metadata } }),
  };
}

function assignmentOf(name: string, lbEndpoints: Json[]): Json {
  return {
    cluster_name: name,
    endpoints: [{ locality: { region: 'local' }, load_balancing_weight: 1, lb_endpoints: lbEndpoints }],
  };
}

/** What a peer saw of each TLS connection: the ALPN offered, the client's URI SAN, and the SNI. */
interface Handshake {
  readonly alpn: string[];
  readonly clientSan: string;
  readonly sni: string | false | null;
}

/**
 * A mutual-TLS HTTP server (HTTP/1.1 or HTTP/2 inside TLS) with the test server certificate, requiring a client
 * certificate from the test CA. It records every handshake and selects the first ALPN offered, as a sidecar does.
 */
interface TlsPeer {
  readonly port: number;
  readonly handshakes: Handshake[];
  close(): Promise<void>;
}

async function startTlsPeer(certs: Certs, name: string, kind: 'h1' | 'h2'): Promise<TlsPeer> {
  const handshakes: Handshake[] = [];
  // ALPNCallback does not name its socket; the handshakes here are one at a time, so they pair up in order.
  const offered: string[][] = [];
  const answer = (_req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => {
    res.setHeader('x-upstream', name);
    res.end(name);
  };
  const app = kind === 'h1' ? createHttpServer(answer) : createH2Server(answer);
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({
    key: certs.server.key,
    cert: certs.server.cert,
    ca: certs.ca.cert,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNCallback: ({ protocols }) => {
      offered.push(protocols);
      return protocols[0];
    },
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    handshakes.push({
      alpn: offered.shift() ?? [],
      clientSan: socket.getPeerCertificate().subjectaltname ?? '',
      sni: socket.servername,
    });
    app.emit('connection', socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    handshakes,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/**
 * One port that answers HTTP/1.1 in plaintext and inside mutual TLS alike (by the first byte, as an Istio sidecar
 * in PERMISSIVE mode does), recording how each request came.
 */
interface DualPeer {
  readonly port: number;
  readonly requests: ('tls' | 'plaintext')[];
  close(): Promise<void>;
}

async function startDualPeer(certs: Certs): Promise<DualPeer> {
  const requests: DualPeer['requests'] = [];
  const app = createHttpServer((req, res) => {
    requests.push((req.socket as Partial<TLSSocket>).encrypted ? 'tls' : 'plaintext');
    res.setHeader('x-upstream', 'dual');
    res.end('dual');
  });
  const tls = createTlsServer({
    key: certs.server.key,
    cert: certs.server.cert,
    ca: certs.ca.cert,
    requestCert: true,
    rejectUnauthorized: true,
  });
  tls.on('secureConnection', (s: TLSSocket) => app.emit('connection', s));
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((socket) => {
    // The proxy may close first: a late write of the TLS layer's close_notify is no failure of the peer.
    socket.on('error', () => undefined);
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.once('data', (first: Buffer) => {
      if (first[0] !== 0x16) {
        socket.unshift(first);
        app.emit('connection', socket);
        return;
      }
      // TLS over a JS stream, so the bytes already read are not lost under the TLS socket.
      const stream = new Duplex({
        read: () => socket.resume(),
        write: (chunk, _enc, cb) => {
          if (socket.writable) socket.write(chunk);
          cb();
        },
        final: (cb) => socket.end(cb),
        destroy: (err, cb) => {
          socket.destroy();
          cb(err);
        },
      });
      stream.on('error', () => undefined);
      stream.push(first);
      socket.on('data', (c: Buffer) => {
        if (!stream.push(c)) socket.pause();
      });
      socket.on('end', () => stream.push(null));
      socket.on('close', () => stream.destroy());
      tls.emit('connection', stream);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    requests,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

let certs: Certs;
let plain: Upstream;
let tlsH1: TlsPeer;
let tlsH2: TlsPeer;
let dual: DualPeer;
let cp: ControlPlane;
let proxy: ProxyServer;
let base: Resources;

const secrets: Json[] = [];

function setEndpoints(flipMetadata: Json | undefined): void {
  cp.set({
    ...base,
    endpoints: [
      ...(base.endpoints ?? []).filter((e) => e.cluster_name !== 'flip'),
      assignmentOf('flip', [lbEndpoint(dual.port, flipMetadata)]),
    ],
    secrets,
  });
}

const stat = (name: string): number => {
  for (const c of proxy.stats.allCounters()) if (c.name === name) return c.value;
  return 0;
};

before(async () => {
  certs = await makeCerts();
  plain = await startUpstream('plain');
  tlsH1 = await startTlsPeer(certs, 'tls-h1', 'h1');
  tlsH2 = await startTlsPeer(certs, 'tls-h2', 'h2');
  dual = await startDualPeer(certs);
  const route = (prefix: string, cluster: string) => ({ match: { prefix }, route: { cluster } });
  base = {
    clusters: [
      edsCluster('web-h1', { transport_socket_matches: ISTIO_MATCHES }),
      edsCluster('web-h2', {
        transport_socket_matches: ISTIO_MATCHES,
        typed_extension_protocol_options: H2_OPTIONS,
      }),
      edsCluster('flip', { transport_socket_matches: ISTIO_MATCHES }),
    ],
    endpoints: [
      assignmentOf('web-h1', [lbEndpoint(tlsH1.port, ISTIO), lbEndpoint(plain.port)]),
      assignmentOf('web-h2', [lbEndpoint(tlsH2.port, ISTIO)]),
      assignmentOf('flip', [lbEndpoint(dual.port)]),
    ],
    listeners: [
      rdsListener('plain', 'routes'),
      rdsListener('alpn', 'routes', {
        hcm: {
          http_filters: [
            ALPN_FILTER,
            { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
          ],
        },
      }),
    ],
    routes: [
      {
        name: 'routes',
        virtual_hosts: [
          {
            name: 'all',
            domains: ['*'],
            routes: [route('/h1', 'web-h1'), route('/h2', 'web-h2'), route('/flip', 'flip')],
          },
        ],
      },
    ],
  };
  // No secrets yet: the clusters warm until their matches' secrets arrive.
  cp = await startControlPlane(base);
  proxy = await startXdsProxy(adsBootstrap([cp.port]));
});

after(async () => {
  await proxy?.close();
  await cp?.close();
  await Promise.all([plain?.close(), tlsH1?.close(), tlsH2?.close(), dual?.close()]);
  await certs?.close();
});

const port = (listener: string) => proxy.listenerAddress(listener)!.port;

describe('transport_socket_matches', () => {
  it("a cluster warms until the SDS secrets of its matches' TLS contexts arrive", async () => {
    await until('web-h1 to be warming', () => proxy.clusterManager.isWarming('web-h1'));
    assert.equal(proxy.clusterManager.get('web-h1'), undefined, 'not serving before the secrets arrive');
    secrets.push(
      {
        name: 'default',
        tls_certificate: {
          certificate_chain: { inline_bytes: b64(certs.client.cert) },
          private_key: { inline_bytes: b64(certs.client.key) },
        },
      },
      { name: 'ROOTCA', validation_context: { trusted_ca: { inline_bytes: b64(certs.ca.cert) } } },
    );
    cp.set({ ...base, secrets });
    await proxy.live;
    assert.ok(proxy.clusterManager.get('web-h1'));
  });

  it('one cluster: mutual TLS to the host labelled tlsMode istio, plaintext to the other', async () => {
    const seen: Record<string, number> = {};
    for (let i = 0; i < 6; i++) {
      const r = await get(port('plain'), '/h1');
      assert.equal(r.status, 200, r.body);
      seen[r.upstream ?? '-'] = (seen[r.upstream ?? '-'] ?? 0) + 1;
    }
    assert.ok((seen['tls-h1'] ?? 0) > 0 && (seen.plain ?? 0) > 0, JSON.stringify(seen));
    assert.equal((seen['tls-h1'] ?? 0) + (seen.plain ?? 0), 6, JSON.stringify(seen));
    assert.ok(tlsH1.handshakes.length >= 1);
    for (const h of tlsH1.handshakes) {
      assert.equal(h.clientSan, `URI:${CLIENT_SPIFFE_ID}`, 'the SDS certificate is presented');
      assert.equal(h.sni, 'outbound_.80_._.web.default.svc.cluster.local');
      assert.deepEqual(
        h.alpn,
        ['istio-peer-exchange', 'istio'],
        "without istio.alpn: the context's own ALPN",
      );
    }
    assert.equal(plain.requests.length, seen.plain, 'the plaintext host got plain HTTP');
    assert.equal(stat('cluster.web-h1.tlsMode-istio.total_match_count'), 1);
    assert.equal(stat('cluster.web-h1.tlsMode-disabled.total_match_count'), 1);
    assert.equal(stat('cluster.web-h1.default.total_match_count'), 0);
    assert.ok(stat('cluster.web-h1.ssl.handshake') >= 1);
  });

  it('/clusters lists both hosts, and /config_dump?include_eds echoes the endpoint metadata', async () => {
    const admin = `http://127.0.0.1:${proxy.adminAddress!.port}`;
    const clusters = await (await fetch(`${admin}/clusters`)).text();
    assert.match(clusters, new RegExp(`web-h1::127\\.0\\.0\\.1:${tlsH1.port}::`));
    assert.match(clusters, new RegExp(`web-h1::127\\.0\\.0\\.1:${plain.port}::`));
    const dump = (await (await fetch(`${admin}/config_dump?resource=dynamic_endpoint_configs`)).json()) as {
      configs: { endpoint_config: Json }[];
    };
    const web = dump.configs.find((c) => c.endpoint_config.cluster_name === 'web-h1');
    assert.ok(web, 'the EDS resource of web-h1');
    const lbs = (web.endpoint_config.endpoints as { lb_endpoints: Json[] }[])[0]!.lb_endpoints;
    assert.deepEqual(lbs[0]!.metadata, { filter_metadata: ISTIO });
    assert.equal(lbs[1]!.metadata, undefined);
  });

  it('istio.alpn: an HTTP/1.1 cluster offers [istio-http/1.1, istio] on connections of its own', async () => {
    const before = tlsH1.handshakes.length;
    let tlsAnswered = false;
    for (let i = 0; i < 4 && !tlsAnswered; i++) {
      const r = await get(port('alpn'), '/h1');
      assert.equal(r.status, 200, r.body);
      tlsAnswered = r.upstream === 'tls-h1';
    }
    assert.ok(tlsAnswered);
    const fresh = tlsH1.handshakes.slice(before);
    assert.equal(fresh.length, 1, 'a new connection: the pooled one offered another ALPN');
    assert.deepEqual(fresh[0]!.alpn, ['istio-http/1.1', 'istio']);
    // Back on the listener without the filter: its own pooled connection, not the one opened for the override.
    for (let i = 0; i < 4; i++) assert.equal((await get(port('plain'), '/h1')).status, 200);
    for (let i = 0; i < 4; i++) assert.equal((await get(port('alpn'), '/h1')).status, 200);
    assert.equal(tlsH1.handshakes.length, before + 1, 'each ALPN kept its connection');
  });

  it('istio.alpn: an HTTP/2 cluster offers [istio-h2, istio]; without the filter, h2', async () => {
    const r = await get(port('alpn'), '/h2');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.upstream, 'tls-h2');
    assert.deepEqual(tlsH2.handshakes.at(-1)?.alpn, ['istio-h2', 'istio']);
    const p = await get(port('plain'), '/h2');
    assert.equal(p.status, 200, p.body);
    assert.deepEqual(tlsH2.handshakes.at(-1)?.alpn, ['h2']);
    assert.equal(tlsH2.handshakes.length, 2);
    for (const h of tlsH2.handshakes) assert.equal(h.clientSan, `URI:${CLIENT_SPIFFE_ID}`);
  });

  it("EDS changing a host's metadata switches its socket for new requests: plaintext, TLS, plaintext", async () => {
    const flipHost = () => proxy.clusterManager.get('flip')!.allHosts()[0]!;
    assert.equal((await get(port('plain'), '/flip')).status, 200);
    assert.deepEqual(dual.requests, ['plaintext']);

    setEndpoints(ISTIO);
    await until('the flip host to take the TLS socket', () => flipHost().tls !== undefined);
    assert.equal((await get(port('plain'), '/flip')).status, 200);
    assert.equal((await get(port('alpn'), '/flip')).status, 200);
    assert.deepEqual(
      dual.requests,
      ['plaintext', 'tls', 'tls'],
      'the pooled plaintext connection is not reused',
    );
    assert.equal(stat('cluster.flip.tlsMode-istio.total_match_count'), 1);

    setEndpoints(undefined);
    await until('the flip host to go back to plaintext', () => flipHost().tls === undefined);
    assert.equal((await get(port('plain'), '/flip')).status, 200);
    assert.deepEqual(dual.requests, ['plaintext', 'tls', 'tls', 'plaintext']);
    assert.equal(stat('cluster.flip.tlsMode-disabled.total_match_count'), 2);
  });
});

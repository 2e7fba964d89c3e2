// Istio's standard metrics from a real sidecar configured as Istio configures Envoy (istio.stats with
// stats.PluginConfig): requests over mutual TLS with a SPIFFE client certificate (curl over HTTP/1.1, node over
// HTTP/2) and in plaintext on an inbound listener, an outbound listener, and TCP connections through tcp_proxy,
// read back from the admin's /stats/prometheus.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { type Certs, type KeyPair, makeCerts, SERVER_SANS } from './support/certs.js';
import { until } from './support/child.js';
import { curl } from './support/clients.js';
import { h2Connect, h2Request } from './support/h2.js';
import {
  bootstrap,
  HCM_TYPE,
  type Json,
  ROUTER_TYPE,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
  TCP_PROXY_TYPE,
  TLS_INSPECTOR,
} from './support/proxy.js';
import { downstreamTlsSocket, serving } from './support/tls_config.js';
import { startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const WEB = 'spiffe://cluster.local/ns/frontend/sa/web';
const STATS = 'type.googleapis.com/stats.PluginConfig';
const SERVICE = 'api.backend.svc.cluster.local';

let certs: Certs;
let web: KeyPair;
let backend: Upstream;
let echo: { port: number; close(): Promise<void> };
let proxy: RunningProxy;

/** A client certificate with the URI SAN `uri`, signed by the test CA (openssl, as test/support does). */
async function issueClient(name: string, uri: string, serial: number): Promise<KeyPair> {
  const conf = join(certs.dir, `${name}.cnf`);
  writeFileSync(
    conf,
    `[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = unused\n[ext]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\nsubjectAltName = URI:${uri}\n`,
  );
  const certFile = join(certs.dir, `${name}.crt`);
  const keyFile = join(certs.dir, `${name}.key`);
  const args = ['req', '-config', conf, '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  args.push('-nodes', '-keyout', keyFile, '-out', certFile, '-subj', `/CN=${name}`, '-days', '30');
  args.push('-extensions', 'ext', '-set_serial', String(serial));
  args.push('-CA', certs.ca.certFile, '-CAkey', certs.ca.keyFile);
  await new Promise<void>((resolve, reject) =>
    execFile('openssl', args, (err, _out, stderr) =>
      err
        ? reject(new Error(`openssl failed (it is required by this test): ${stderr || err.message}`))
        : resolve(),
    ),
  );
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, cert, key };
}

const istioStats = (config: Json = {}): Json => ({
  name: 'istio.stats',
  typed_config: { '@type': STATS, ...config },
});

function hcm(cluster: string): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: 'inbound_0.0.0.0_8080',
      route_config: routes([
        { match: { prefix: '/teapot' }, direct_response: { status: 418 } },
        { match: { prefix: '/' }, route: { cluster } },
      ]),
      http_filters: [
        istioStats(),
        { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } },
      ],
    },
  };
}

function tcpProxy(cluster: string): Json {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: 'tcp', cluster },
  };
}

/** Istio's inbound TLS: a client certificate from the mesh CA is required. */
function mtls(alpn: string[]): Json {
  return downstreamTlsSocket(
    serving(
      certs.server,
      { alpn_protocols: alpn, validation_context: { trusted_ca: { filename: certs.ca.certFile } } },
      { require_client_certificate: true },
    ),
  );
}

const address = { socket_address: { address: '127.0.0.1', port_value: 0 } };

/** An ALLOW policy list that allows nothing. */
const DENY_ALL: Json = {
  name: 'envoy.filters.network.rbac',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC',
    stat_prefix: 'tcp.',
    rules: { action: 'ALLOW' },
  },
};

before(async () => {
  certs = await makeCerts();
  web = await issueClient('web', WEB, 0x7001);
  backend = await startUpstream('api');
  echo = await startTcpServer((s) => s.pipe(s));
  const inbound = 'inbound|8080||';
  const outbound = `outbound|8080||${SERVICE}`;
  const echoOut = 'outbound|9000||echo.backend.svc.cluster.local';
  const config = bootstrap(
    [
      {
        name: 'virtualInbound',
        address,
        traffic_direction: 'INBOUND',
        listener_filters: [TLS_INSPECTOR],
        filter_chains: [
          {
            name: 'mtls',
            filter_chain_match: { transport_protocol: 'tls' },
            transport_socket: mtls(['h2', 'http/1.1']),
            filters: [hcm(inbound)],
          },
          {
            name: 'plaintext',
            filter_chain_match: { transport_protocol: 'raw_buffer' },
            filters: [hcm(inbound)],
          },
        ],
      },
      {
        name: 'inbound-tcp',
        address,
        traffic_direction: 'INBOUND',
        filter_chains: [{ transport_socket: mtls([]), filters: [istioStats(), tcpProxy('inbound|9000||')] }],
      },
      {
        // Every connection refused by RBAC: istio.stats before it, and after it.
        name: 'denied-tcp',
        address,
        traffic_direction: 'INBOUND',
        filter_chains: [{ filters: [istioStats(), DENY_ALL, tcpProxy('inbound|9000||')] }],
      },
      {
        name: 'denied-tcp-after-rbac',
        address,
        traffic_direction: 'INBOUND',
        filter_chains: [{ filters: [DENY_ALL, istioStats(), tcpProxy('inbound|9000||')] }],
      },
      {
        name: 'outbound-http',
        address,
        traffic_direction: 'OUTBOUND',
        filter_chains: [{ filters: [hcm(outbound)] }],
      },
      {
        name: 'outbound-tcp',
        address,
        traffic_direction: 'OUTBOUND',
        filter_chains: [{ filters: [istioStats({ tcp_reporting_duration: '0.050s' }), tcpProxy(echoOut)] }],
      },
    ],
    [
      staticCluster(inbound, [backend.port]),
      staticCluster(outbound, [backend.port]),
      staticCluster('inbound|9000||', [echo.port]),
      staticCluster(echoOut, [echo.port]),
    ],
  );
  config.node = {
    id: 'sidecar~127.0.0.1~api-v1-abc.backend~backend.svc.cluster.local',
    cluster: 'api.backend',
    metadata: {
      NAMESPACE: 'backend',
      WORKLOAD_NAME: 'api-v1',
      CLUSTER_ID: 'Kubernetes',
      ISTIO_VERSION: '1.24.0',
      LABELS: { app: 'api', version: 'v1' },
    },
  };
  proxy = await startProxy(config);
});

after(async () => {
  await proxy?.close();
  await backend?.close();
  await echo?.close();
  await certs?.close();
});

async function prometheus(): Promise<string> {
  const res = await fetch(`${proxy.adminUrl}/stats/prometheus`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of the one series of `family` whose labels include all of `labels`; undefined when none does. */
function value(text: string, family: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith(`${family}{`) && want.every((w) => l.includes(w)));
  assert.ok(lines.length <= 1, `several series match ${want.join(',')}:\n${lines.join('\n')}`);
  return lines.length === 0 ? undefined : Number(lines[0]!.slice(lines[0]!.lastIndexOf(' ') + 1));
}

/** Every label of the inbound mutual TLS request from the web client, in Istio's order. */
const INBOUND_MTLS_LABELS = [
  'reporter="destination"',
  'source_workload="unknown"',
  'source_canonical_service="unknown"',
  'source_canonical_revision="latest"',
  'source_workload_namespace="frontend"',
  `source_principal="${WEB}"`,
  'source_app="unknown"',
  'source_version="unknown"',
  'source_cluster="unknown"',
  'destination_workload="api-v1"',
  'destination_workload_namespace="backend"',
  `destination_principal="${SERVER_SANS.uri}"`,
  'destination_app="api"',
  'destination_version="v1"',
  `destination_service="${SERVICE}"`,
  'destination_canonical_service="api"',
  'destination_canonical_revision="v1"',
  `destination_service_name="${SERVICE}"`,
  'destination_service_namespace="backend"',
  'destination_cluster="Kubernetes"',
  'request_protocol="http"',
  'response_code="200"',
  'grpc_response_status=""',
  'response_flags="-"',
  'connection_security_policy="mutual_tls"',
].join(',');

test('a request over mutual TLS is counted with the client certificate as source_principal (curl, HTTP/1.1)', async () => {
  const port = proxy.port('virtualInbound');
  const res = await curl([
    '--cacert',
    certs.ca.certFile,
    '--cert',
    web.certFile,
    '--key',
    web.keyFile,
    '--http1.1',
    '--resolve',
    `localhost:${port}:127.0.0.1`,
    '-H',
    `Host: ${SERVICE}`,
    `https://localhost:${port}/hello`,
  ]);
  assert.equal(res.status, 200);
  const text = await prometheus();
  assert.ok(
    text.includes(`istio_requests_total{${INBOUND_MTLS_LABELS}} 1\n`),
    `no such series in:\n${text
      .split('\n')
      .filter((l) => l.startsWith('istio_requests_total'))
      .join('\n')}`,
  );
  assert.match(text, /^# TYPE istio_requests_total counter$/m);
  assert.match(text, /^# TYPE istio_request_duration_milliseconds histogram$/m);
  assert.doesNotMatch(text, /envoy_istio_request|envoy_istiocustom/);
  for (const family of [
    'istio_request_duration_milliseconds',
    'istio_request_bytes',
    'istio_response_bytes',
  ]) {
    assert.ok(text.includes(`${family}_count{${INBOUND_MTLS_LABELS}} 1\n`), `${family}_count`);
    // Envoy's default buckets, which Istio keeps.
    assert.ok(text.includes(`${family}_bucket{${INBOUND_MTLS_LABELS},le="0.5"} `), `${family} buckets`);
    assert.ok(
      text.includes(`${family}_bucket{${INBOUND_MTLS_LABELS},le="3600000"} 1\n`),
      `${family} last bucket`,
    );
  }
  const requestBytes = value(text, 'istio_request_bytes_sum', { source_principal: WEB });
  const responseBytes = value(text, 'istio_response_bytes_sum', { source_principal: WEB });
  // The head's names and values at least (the path, the Host), and the upstream's JSON body.
  assert.ok(requestBytes !== undefined && requestBytes > SERVICE.length + '/hello'.length);
  assert.ok(responseBytes !== undefined && responseBytes > 50);
  assert.match(text, /^istio_build\{component="proxy",tag="1\.24\.0"\} 1$/m);
});

test('HTTP/2 over the same chain reports the same identity', async () => {
  const port = proxy.port('virtualInbound');
  const session = await h2Connect(`https://localhost:${port}`, {
    ca: certs.ca.cert,
    cert: web.cert,
    key: web.key,
    servername: 'localhost',
  });
  try {
    const res = await h2Request(session, { ':path': '/h2', ':authority': SERVICE });
    assert.equal(res.status, 200);
    const teapot = await h2Request(session, { ':path': '/teapot', ':authority': SERVICE });
    assert.equal(teapot.status, 418);
  } finally {
    session.close();
  }
  const text = await prometheus();
  assert.ok(text.includes(`istio_requests_total{${INBOUND_MTLS_LABELS}} 2\n`));
  assert.equal(
    value(text, 'istio_requests_total', {
      source_principal: WEB,
      connection_security_policy: 'mutual_tls',
      response_code: '418',
    }),
    1,
  );
});

test('a plaintext request on the inbound listener is connection_security_policy none', async () => {
  const res = await curl([
    '-H',
    `Host: ${SERVICE}`,
    `http://127.0.0.1:${proxy.port('virtualInbound')}/plain`,
  ]);
  assert.equal(res.status, 200);
  const text = await prometheus();
  assert.equal(
    value(text, 'istio_requests_total', {
      reporter: 'destination',
      source_principal: 'unknown',
      source_workload_namespace: 'unknown',
      destination_principal: 'unknown',
      destination_service: SERVICE,
      response_code: '200',
      connection_security_policy: 'none',
    }),
    1,
  );
});

test('an outbound listener reports as the source, the service from the cluster name', async () => {
  // The Host says one thing; the cluster, Istio's outbound|port|subset|host, names the service.
  const res = await curl(['-H', 'Host: api:8080', `http://127.0.0.1:${proxy.port('outbound-http')}/out`]);
  assert.equal(res.status, 200);
  const text = await prometheus();
  assert.equal(
    value(text, 'istio_requests_total', {
      reporter: 'source',
      source_workload: 'api-v1',
      source_workload_namespace: 'backend',
      source_app: 'api',
      source_version: 'v1',
      source_cluster: 'Kubernetes',
      destination_workload: 'unknown',
      destination_service: SERVICE,
      destination_service_name: 'api',
      destination_service_namespace: 'backend',
      response_code: '200',
      connection_security_policy: 'unknown',
    }),
    1,
  );
});

test('a TCP connection over mutual TLS through tcp_proxy: opened, bytes, closed', async () => {
  const port = proxy.port('inbound-tcp');
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: certs.ca.cert,
    cert: web.cert,
    key: web.key,
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  socket.write('hello');
  await new Promise<void>((resolve) => socket.once('data', () => resolve()));
  const labels = {
    reporter: 'destination',
    source_principal: WEB,
    source_workload_namespace: 'frontend',
    destination_principal: SERVER_SANS.uri,
    destination_service: 'api',
    request_protocol: 'tcp',
    response_code: '0',
    connection_security_policy: 'mutual_tls',
  };
  assert.equal(value(await prometheus(), 'istio_tcp_connections_opened_total', labels), 1);
  socket.end();
  await until('the connection reported closed', async () => {
    return value(await prometheus(), 'istio_tcp_connections_closed_total', labels) === 1;
  });
  const text = await prometheus();
  assert.equal(value(text, 'istio_tcp_received_bytes_total', labels), 5);
  assert.equal(value(text, 'istio_tcp_sent_bytes_total', labels), 5);
  assert.match(text, /^# TYPE istio_tcp_connections_opened_total counter$/m);
});

test('an open TCP connection reports its bytes every tcp_reporting_duration', async () => {
  const socket: Socket = netConnect(proxy.port('outbound-tcp'), '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  try {
    socket.write('abc');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    const labels = {
      reporter: 'source',
      destination_service: 'echo.backend.svc.cluster.local',
      destination_service_name: 'echo',
      request_protocol: 'tcp',
      connection_security_policy: 'unknown',
    };
    await until('the bytes of the open connection reported', async () => {
      const text = await prometheus();
      return (
        value(text, 'istio_tcp_received_bytes_total', labels) === 3 &&
        value(text, 'istio_tcp_sent_bytes_total', labels) === 3
      );
    });
    const text = await prometheus();
    assert.equal(value(text, 'istio_tcp_connections_opened_total', labels), 1);
    assert.equal(value(text, 'istio_tcp_connections_closed_total', labels), 0);
  } finally {
    socket.destroy();
  }
});

test('connections an RBAC filter refuses are counted opened and closed, before it or after it', async () => {
  const labels = {
    reporter: 'destination',
    source_principal: 'unknown',
    destination_service: 'api',
    request_protocol: 'tcp',
    connection_security_policy: 'none',
  };
  for (const [listener, n] of [
    ['denied-tcp', 1],
    ['denied-tcp-after-rbac', 2],
  ] as const) {
    const socket = netConnect(proxy.port(listener), '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await until(`${listener} counted`, async () => {
      const text = await prometheus();
      return (
        value(text, 'istio_tcp_connections_opened_total', labels) === n &&
        value(text, 'istio_tcp_connections_closed_total', labels) === n
      );
    });
  }
});

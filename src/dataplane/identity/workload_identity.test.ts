// The workload identity against a real in-process CA and a real sidecar listener: the renewal schedule; a renewal
// (driven by calling what its timer calls) gives new handshakes the new certificate while an established connection
// stays up; a failed renewal is counted and the current certificate keeps serving.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect, type TLSSocket } from 'node:tls';
import { translateBootstrap } from '../../config/bootstrap.js';
import type { CertificateAuthority } from '../../controlplane/ca/authority.js';
import { openAuthority } from '../../controlplane/ca/load.js';
import type { CaServer } from '../../controlplane/ca/server.js';
import { listenTestCa } from '../../controlplane/ca/test_support.js';
import { JoinTokenStore } from '../../controlplane/ca/tokens.js';
import { DataDir } from '../../controlplane/state/data_dir.js';
import { requestCertificate, type WorkloadCertificate } from '../../identity/client.js';
import { Logger } from '../observe/log.js';
import { ProxyServer } from '../server.js';
import { backoffMs, renewalDelayMs } from './schedule.js';

let tmp: string;
let ca: CertificateAuthority;
let tokens: JoinTokenStore;
let caServer: CaServer;
let caAddress: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'remora-workload-identity-'));
  const dataDir = await DataDir.open(join(tmp, 'data'));
  ca = await openAuthority({
    dataDir,
    trustDomain: 'cluster.local',
    maxTtlMs: 3600_000,
    log: () => undefined,
  });
  tokens = new JoinTokenStore(dataDir.tokensDir);
  caServer = await listenTestCa(ca, tokens);
  caAddress = `127.0.0.1:${caServer.port}`;
});
after(async () => {
  await caServer?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function token(sa: string): Promise<string> {
  const identity = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: sa };
  return (await tokens.create({ identity, ttlMs: 600_000, uses: 1, caPin: ca.rootPin })).token;
}

test('renewal is due at 50 % ± 10 % of the lifetime; retries back off up to their cap', () => {
  const from = new Date(1_000_000);
  const to = new Date(1_000_000 + 3600_000);
  assert.equal(renewalDelayMs(from, to, 1_000_000, 0.5), 1800_000);
  assert.equal(renewalDelayMs(from, to, 1_000_000, 0), 1440_000);
  assert.ok(renewalDelayMs(from, to, 1_000_000, 0.999_999) <= 2160_000);
  assert.ok(renewalDelayMs(from, to, 1_000_000, 0.999_999) < 3600_000, 'always before expiry');
  assert.equal(renewalDelayMs(from, to, 1_000_000 + 3000_000, 0.5), 0, 'overdue: now');
  const b = { baseMs: 100, maxMs: 1000 };
  assert.equal(backoffMs(1, b, 0.999), 100);
  assert.equal(backoffMs(3, b, 0.999), 400);
  assert.equal(backoffMs(20, b, 0.999), 1000);
  assert.ok(backoffMs(20, b, 0) >= 500);
});

/** Opens an mTLS connection to the sidecar with `client`'s certificate; resolves once the handshake is done. */
function mtls(port: number, client: WorkloadCertificate): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        ca: client.rootsPem,
        cert: client.certChainPem,
        key: client.keyPem,
        checkServerIdentity: () => undefined,
      },
      () => resolve(s),
    );
    s.once('error', reject);
  });
}

/** One HTTP/1.1 request on an open connection; resolves with the status line. */
function get(s: TLSSocket): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const onData = (d: Buffer) => {
      got += d.toString();
      if (got.includes('\r\n\r\n')) {
        s.off('data', onData);
        resolve(got.split('\r\n')[0]!);
      }
    };
    s.on('data', onData);
    s.once('error', reject);
    s.write('GET / HTTP/1.1\r\nhost: web\r\n\r\n');
  });
}

test('renewal: new handshakes get the new certificate, an established connection stays up', async () => {
  const client = await requestCertificate({ address: caAddress, token: await token('client') });
  // The validator takes `default` and `ROOTCA` only as SDS over ADS (or static secrets); the ADS side is then
  // dropped, leaving a static listener that gets both names from the workload identity.
  const config = translateBootstrap({
    node: { id: 'web', cluster: 'web' },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }],
      },
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: {
      clusters: [
        {
          name: 'xds',
          type: 'STATIC',
          load_assignment: {
            cluster_name: 'xds',
            endpoints: [
              {
                lb_endpoints: [
                  { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: 1 } } } },
                ],
              },
            ],
          },
        },
      ],
      listeners: [
        {
          name: 'inbound',
          address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type':
                      'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'inbound',
                    route_config: {
                      virtual_hosts: [
                        {
                          name: 'all',
                          domains: ['*'],
                          routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }],
                        },
                      ],
                    },
                    http_filters: [
                      {
                        name: 'envoy.filters.http.router',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                        },
                      },
                    ],
                  },
                },
              ],
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type':
                    'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_certificate_sds_secret_configs: [{ name: 'default', sds_config: { ads: {} } }],
                    validation_context_sds_secret_config: { name: 'ROOTCA', sds_config: { ads: {} } },
                  },
                },
              },
            },
          ],
        },
      ],
    },
  });
  assert.ok(config.ok, JSON.stringify(config));
  const proxy = await ProxyServer.start(
    { ...config.value, dynamicResources: undefined },
    {
      drainTimeMs: 100,
      logger: new Logger('off'),
      workloadIdentity: {
        caAddress,
        credential: await (async () => {
          const t = await token('web');
          return () => t;
        })(),
      },
    },
  );
  try {
    await proxy.live;
    const identity = proxy.identity!;
    const first = identity.current()!;
    assert.equal(first.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
    const port = proxy.listenerAddress('inbound')!.port;
    const established = await mtls(port, client);
    assert.equal(established.getPeerCertificate().serialNumber, first.serialNumber);
    assert.match(await get(established), / 200 /);

    // What the renewal timer runs: the single-use token is spent, so this is renewal by the current certificate.
    await identity.renewNow();
    const second = identity.current()!;
    assert.notEqual(second.serialNumber, first.serialNumber);
    assert.equal(second.spiffeId, first.spiffeId);
    const stat = (name: string) =>
      [...proxy.stats.allCounters(), ...proxy.stats.allGauges()].find((s) => s.name === name)?.value;
    assert.equal(stat('workload_identity.issue_success'), 1);
    assert.equal(stat('workload_identity.renewal_success'), 1);
    assert.ok((stat('workload_identity.seconds_until_cert_expiring') ?? 0) > 3000);

    const fresh = await mtls(port, client);
    assert.equal(fresh.getPeerCertificate().serialNumber, second.serialNumber);
    assert.match(await get(fresh), / 200 /);
    assert.match(await get(established), / 200 /, 'the connection made before the renewal still serves');
    fresh.destroy();

    // A renewal that cannot reach the CA is counted; the certificate in use keeps serving.
    await caServer.close();
    await identity.renewNow();
    assert.equal(stat('workload_identity.renewal_failure'), 1);
    assert.equal(identity.current()!.serialNumber, second.serialNumber);
    const after = await mtls(port, client);
    assert.equal(after.getPeerCertificate().serialNumber, second.serialNumber);
    after.destroy();
    established.destroy();
  } finally {
    await proxy.close();
  }
});

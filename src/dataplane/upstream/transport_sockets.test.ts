// Unit tests: how a cluster picks each host's transport socket from transport_socket_matches and the host's
// metadata (Envoy's order: every match on the endpoint's metadata, then on the locality's, then the cluster's own).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster } from '../../config/cluster.js';
import type { FilterMetadata } from '../../config/model.js';
import { formatErrors } from '../../config/result.js';
import { Logger } from '../observe/log.js';
import { StatsStore } from '../observe/stats.js';
import { Cluster } from './cluster.js';
import { jsonEqual, TransportSockets } from './transport_sockets.js';

const TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const RAW = 'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer';

/** A TLS socket told apart from the others by its SNI (no certificates needed to build one). */
const tls = (sni: string) => ({ name: 'tls', typed_config: { '@type': TLS, sni } });
const raw = { name: 'raw', typed_config: { '@type': RAW } };
const labels = (match: Record<string, unknown>): FilterMetadata => ({
  'envoy.transport_socket_match': match,
});

function sockets(extra: Record<string, unknown>, store = new StatsStore()): TransportSockets {
  const r = translateCluster(
    { name: 'web', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, ...extra },
    'c',
  );
  assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
  return new TransportSockets(r.value, { store, logger: new Logger('off') });
}

test('the endpoint metadata is tried against every match before the locality metadata; then the default', () => {
  const store = new StatsStore();
  const s = sockets(
    {
      transport_socket: tls('default'),
      transport_socket_matches: [
        { name: 'istio', match: { tlsMode: 'istio' }, transport_socket: tls('istio') },
        { name: 'prod', match: { env: 'prod', tier: { a: [1, 'x'] } }, transport_socket: tls('prod') },
        { name: 'plain', match: { tlsMode: 'disabled' }, transport_socket: raw },
      ],
    },
    store,
  );
  const sni = (e?: FilterMetadata, l?: FilterMetadata) => {
    const t = s.resolve(e, l);
    return t === undefined ? 'plaintext' : t.config.sni;
  };
  assert.equal(sni(labels({ tlsMode: 'istio', other: 1 })), 'istio');
  assert.equal(
    sni(labels({ tier: { a: [1, 'x'] }, env: 'prod' })),
    'prod',
    'Struct values compare by content',
  );
  assert.equal(sni(labels({ tier: { a: [1] }, env: 'prod' })), 'default');
  assert.equal(
    sni(undefined, labels({ tlsMode: 'istio' })),
    'istio',
    "the locality's when the endpoint's match none",
  );
  assert.equal(sni(labels({ env: 'prod', tier: { a: [1, 'x'] } }), labels({ tlsMode: 'istio' })), 'prod');
  assert.equal(sni(labels({ tlsMode: 'disabled' })), 'plaintext');
  assert.equal(sni({ other: { tlsMode: 'istio' } }), 'default', 'only envoy.transport_socket_match is read');
  assert.equal(sni(), 'default');
  const count = (n: string) => store.counter(`cluster.web.${n}.total_match_count`).value;
  assert.deepEqual(
    ['istio', 'prod', 'plain', 'default'].map(count),
    [2, 2, 1, 3],
    'each resolution counts, as Envoy counts each host',
  );
  assert.equal(s.peek(labels({ tlsMode: 'istio' }), undefined)?.config.sni, 'istio');
  assert.equal(count('istio'), 2, 'peek does not count');
  s.close();
});

test('a match without labels takes every host, even one whose locality names another match', () => {
  const s = sockets({
    transport_socket_matches: [
      { name: 'all', match: {}, transport_socket: raw },
      { name: 'istio', match: { tlsMode: 'istio' }, transport_socket: tls('istio') },
    ],
  });
  assert.equal(s.resolve(undefined, labels({ tlsMode: 'istio' })), undefined);
  assert.equal(s.contexts().length, 1);
  s.close();
});

test('without matches every host takes the cluster transport_socket, and no match stats are made', () => {
  const store = new StatsStore();
  const s = sockets({ transport_socket: tls('own') }, store);
  assert.equal(s.resolve(labels({ tlsMode: 'istio' }), undefined)?.config.sni, 'own');
  assert.equal(s.hasMatches, false);
  assert.deepEqual(
    [...store.allCounters()].filter((c) => c.name.endsWith('total_match_count')),
    [],
  );
  s.close();
});

test('EDS: a host takes the socket of its metadata, and another one when new metadata selects another', async () => {
  const r = translateCluster(
    {
      name: 'web',
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} } },
      transport_socket_matches: [
        { name: 'istio', match: { tlsMode: 'istio' }, transport_socket: tls('istio') },
        { name: 'plain', transport_socket: raw },
      ],
    },
    'c',
  );
  assert.ok(r.ok);
  const cluster = new Cluster(r.value, new StatsStore());
  const assign = (metadata?: FilterMetadata, locality?: FilterMetadata) =>
    cluster.setAssignment({
      clusterName: 'web',
      policy: {
        overprovisioningFactor: 140,
        dropOverload: undefined,
        endpointStaleAfterMs: undefined,
        weightedPriorityHealth: false,
      },
      localities: [
        {
          priority: 0,
          weight: 1,
          ...(locality && { metadata: locality }),
          endpoints: [
            {
              address: { address: '10.0.0.1', port: 80 },
              weight: 1,
              hostname: undefined,
              health: 'HEALTHY',
              ...(metadata && { metadata }),
            },
          ],
        },
      ],
    });
  assign(labels({ tlsMode: 'istio' }));
  const host = cluster.allHosts()[0]!;
  assert.equal(host.tls?.config.sni, 'istio');
  assert.deepEqual(host.metadata, labels({ tlsMode: 'istio' }));
  const pool = cluster.pool(host, 'HTTP/1.1');
  assign(labels({ tlsMode: 'istio' }));
  assert.equal(cluster.pool(host, 'HTTP/1.1'), pool, 'unchanged metadata keeps the pool');
  assign(undefined, labels({ other: 1 }));
  assert.equal(cluster.allHosts()[0], host, 'the same host, counters kept');
  assert.equal(host.tls, undefined);
  assert.deepEqual(host.localityMetadata, labels({ other: 1 }));
  assert.notEqual(cluster.pool(host, 'HTTP/1.1'), pool, 'a new pool for the new socket');
  await cluster.destroy();
});

test('jsonEqual compares as protobuf Values do', () => {
  assert.ok(jsonEqual({ a: [1, { b: null }], c: 'x' }, { c: 'x', a: [1, { b: null }] }));
  assert.ok(!jsonEqual({ a: 1 }, { a: 1, b: undefined }));
  assert.ok(!jsonEqual([1], { 0: 1 }));
  assert.ok(!jsonEqual('1', 1));
});

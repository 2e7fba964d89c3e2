// Tests of what Istio's labels are made of: the reporter, this proxy's workload from its node metadata, the
// namespace of a SPIFFE ID, the destination service, the label values per reporter, and the series they make.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ISTIO_LABELS } from '../../config/istio_stats.js';
import type { IstioStatsConfig } from '../../config/model.js';
import { StatsStore } from '../observe/stats.js';
import { renderPrometheus } from '../observe/stats_render.js';
import { type ConnectionIdentity, labelKey, labelValues, type TrafficFacts } from './labels.js';
import { HostNames, IstioSeries } from './series.js';
import { destinationService, localWorkload, namespaceOfPrincipal, reporterOf } from './workload.js';

const CONFIG: IstioStatsConfig = {
  reporter: 'UNSPECIFIED',
  disableHostHeaderFallback: false,
  tcpReportingDurationMs: 5000,
  dropped: [],
  tagsRemoved: {},
};

test('the reporter follows the listener direction unless the config says SERVER_GATEWAY', () => {
  assert.equal(reporterOf(CONFIG, 'INBOUND'), 'destination');
  assert.equal(reporterOf(CONFIG, 'OUTBOUND'), 'source');
  assert.equal(reporterOf(CONFIG, 'UNSPECIFIED'), 'source');
  assert.equal(reporterOf({ ...CONFIG, reporter: 'SERVER_GATEWAY' }, 'INBOUND'), 'waypoint');
});

test("the local workload comes from Istio's node metadata, with the injector's fallbacks", () => {
  const full = localWorkload({
    id: 'x',
    cluster: 'x',
    metadata: {
      NAMESPACE: 'shop',
      WORKLOAD_NAME: 'cart-v2',
      CLUSTER_ID: 'east',
      ISTIO_VERSION: '1.24.0',
      LABELS: {
        app: 'cart',
        version: 'v2',
        'service.istio.io/canonical-name': 'cart-svc',
        'service.istio.io/canonical-revision': 'r7',
      },
    },
  });
  assert.deepEqual(full, {
    workload: 'cart-v2',
    namespace: 'shop',
    app: 'cart',
    version: 'v2',
    canonicalService: 'cart-svc',
    canonicalRevision: 'r7',
    cluster: 'east',
    istioVersion: '1.24.0',
  });
  const fallbacks = localWorkload({
    id: 'x',
    cluster: 'x',
    metadata: { WORKLOAD_NAME: 'job', LABELS: 'bad' },
  });
  assert.equal(fallbacks.canonicalService, 'job');
  assert.equal(fallbacks.canonicalRevision, 'latest');
  assert.equal(fallbacks.namespace, 'unknown');
  assert.equal(fallbacks.app, 'unknown');
  const byApp = localWorkload({ id: 'x', cluster: 'x', metadata: { LABELS: { app: 'a', version: 'v9' } } });
  assert.equal(byApp.canonicalService, 'a');
  assert.equal(byApp.canonicalRevision, 'v9');
});

test('the namespace of a SPIFFE ID', () => {
  assert.equal(namespaceOfPrincipal('spiffe://cluster.local/ns/frontend/sa/web'), 'frontend');
  assert.equal(namespaceOfPrincipal('spiffe://cluster.local/ns/edge'), 'edge');
  assert.equal(namespaceOfPrincipal('spiffe://example.org/web'), '');
  assert.equal(namespaceOfPrincipal(''), '');
});

test("the destination service: Istio's cluster name over the Host header", () => {
  const host = () => 'reviews:9080';
  assert.deepEqual(destinationService(host, 'outbound|9080|v1|reviews.shop.svc.cluster.local', 'r'), {
    host: 'reviews.shop.svc.cluster.local',
    name: 'reviews',
    namespace: 'shop',
  });
  assert.deepEqual(destinationService(host, 'inbound|9080||', undefined), {
    host: 'reviews:9080',
    name: 'reviews:9080',
    namespace: '',
  });
  assert.deepEqual(
    destinationService(() => '', 'outbound|443||example.com', undefined),
    {
      host: 'example.com',
      name: 'example',
      namespace: '',
    },
  );
  assert.equal(destinationService(host, 'PassthroughCluster', undefined).name, 'PassthroughCluster');
  assert.equal(destinationService(host, 'PassthroughCluster', undefined).host, 'reviews:9080');
  assert.equal(destinationService(host, 'web', 'block_all').name, 'BlackHoleCluster');
  assert.equal(destinationService(host, 'web', 'allow_any').name, 'PassthroughCluster');
  assert.deepEqual(
    destinationService(() => '', 'web', undefined),
    { host: '', name: '', namespace: '' },
  );
  // The Host header is read only when the cluster names no host.
  let asked = false;
  destinationService(
    () => {
      asked = true;
      return 'x';
    },
    'outbound|80||a.b.svc.cluster.local',
    undefined,
  );
  assert.equal(asked, false);
});

const LOCAL = localWorkload({
  id: 'x',
  cluster: 'x',
  metadata: { NAMESPACE: 'backend', WORKLOAD_NAME: 'api-v1', LABELS: { app: 'api', version: 'v1' } },
});
const MTLS: ConnectionIdentity = {
  peerPrincipal: 'spiffe://cluster.local/ns/frontend/sa/web',
  peerNamespace: 'frontend',
  localPrincipal: 'spiffe://cluster.local/ns/backend/sa/api',
  mutualTls: true,
};
const FACTS: TrafficFacts = {
  service: { host: 'api.backend.svc.cluster.local', name: 'api', namespace: 'backend' },
  protocol: 'grpc',
  responseCode: '200',
  grpcStatus: '0',
  responseFlags: '-',
};

function labels(values: readonly string[]): Record<string, string> {
  assert.equal(values.length, ISTIO_LABELS.length);
  return Object.fromEntries(ISTIO_LABELS.map((l, i) => [l, values[i]!]));
}

test('label values: the destination reports the peer certificate and its own workload', () => {
  const l = labels(labelValues('destination', LOCAL, MTLS, FACTS));
  assert.equal(l.reporter, 'destination');
  assert.equal(l.source_principal, MTLS.peerPrincipal);
  assert.equal(l.source_workload_namespace, 'frontend');
  assert.equal(l.source_workload, 'unknown');
  assert.equal(l.destination_workload, 'api-v1');
  assert.equal(l.destination_principal, MTLS.localPrincipal);
  assert.equal(l.destination_service, 'api.backend.svc.cluster.local');
  assert.equal(l.destination_service_namespace, 'backend');
  assert.equal(l.request_protocol, 'grpc');
  assert.equal(l.grpc_response_status, '0');
  assert.equal(l.connection_security_policy, 'mutual_tls');
  const plain = labels(labelValues('destination', LOCAL, { ...MTLS, mutualTls: false }, FACTS));
  assert.equal(plain.connection_security_policy, 'none');
});

test('label values: the source reports its own workload and unknown security policy', () => {
  const none: ConnectionIdentity = {
    peerPrincipal: '',
    peerNamespace: '',
    localPrincipal: '',
    mutualTls: false,
  };
  const l = labels(labelValues('source', LOCAL, none, FACTS));
  assert.equal(l.reporter, 'source');
  assert.equal(l.source_workload, 'api-v1');
  assert.equal(l.source_principal, 'unknown');
  assert.equal(l.destination_workload, 'unknown');
  assert.equal(l.destination_service_name, 'api');
  assert.equal(l.destination_service_namespace, 'backend');
  assert.equal(l.connection_security_policy, 'unknown');
  const w = labels(labelValues('waypoint', LOCAL, MTLS, FACTS));
  assert.equal(w.reporter, 'waypoint');
  assert.equal(w.destination_workload, 'unknown');
  assert.equal(w.destination_service, 'api.backend.svc.cluster.local');
  assert.equal(w.connection_security_policy, 'mutual_tls');
});

test('one series per label set; dropped metrics and removed labels are left out', () => {
  const store = new StatsStore();
  const series = new IstioSeries(store, {
    ...CONFIG,
    dropped: ['request_bytes'],
    tagsRemoved: { requests_total: ['source_principal'] },
  });
  const values = () => labelValues('destination', LOCAL, MTLS, FACTS);
  const a = series.request(labelKey(MTLS, FACTS), values);
  const b = series.request(labelKey(MTLS, FACTS), values);
  assert.equal(a, b);
  assert.equal(a.requestBytes, undefined);
  a.requests!.inc();
  b.requests!.inc();
  a.duration!.record(3);
  const other = series.request(labelKey(MTLS, { ...FACTS, responseCode: '503' }), () =>
    labelValues('destination', LOCAL, MTLS, { ...FACTS, responseCode: '503' }),
  );
  other.requests!.inc();
  const text = renderPrometheus(store);
  const requests = text.split('\n').filter((l) => l.startsWith('istio_requests_total{'));
  assert.equal(requests.length, 2);
  assert.ok(requests.every((l) => !l.includes('source_principal=')));
  assert.ok(requests.some((l) => l.includes('response_code="200"') && l.endsWith(' 2')));
  assert.match(
    text,
    /istio_request_duration_milliseconds_count\{[^}]*source_principal="spiffe:\/\/cluster\.local\/ns\/frontend\/sa\/web"[^}]*\} 1/,
  );
  assert.doesNotMatch(text, /istio_request_bytes/);
});

test('Host header values are bounded', () => {
  const store = new StatsStore();
  const overflow = store.counter('overflow');
  const hosts = new HostNames(2, overflow);
  assert.equal(hosts.admit('a'), 'a');
  assert.equal(hosts.admit('b'), 'b');
  assert.equal(hosts.admit('a'), 'a');
  assert.equal(hosts.admit('c'), '');
  assert.equal(hosts.admit(''), '');
  assert.equal(overflow.value, 1);
});

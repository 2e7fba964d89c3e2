// Proxy identity from the xDS node (Istio's metadata keys, Istio's id form), refusals, groups and their keys;
// and the encoder's sharing of equal resources.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { XDS_TYPE_URLS } from '../../xds/protos.js';
import { encodeConfig, ResourceEncoder } from './encode.js';
import { groupKey, proxyGroup, proxyIdentity } from './identity.js';

test('metadata: NAMESPACE, LABELS, WORKLOAD_NAME, SERVICE_ACCOUNT, INSTANCE_IPS', () => {
  const r = proxyIdentity({
    id: 'reviews-1',
    cluster: 'reviews.shop',
    metadata: {
      NAMESPACE: 'shop',
      LABELS: { version: 'v1', app: 'reviews' },
      WORKLOAD_NAME: 'reviews-v1',
      SERVICE_ACCOUNT: 'reviews',
      INSTANCE_IPS: '10.0.0.5, fd00::5',
    },
  });
  assert.ok(r.ok);
  assert.deepEqual(r.value, {
    id: 'reviews-1',
    cluster: 'reviews.shop',
    kind: 'sidecar',
    namespace: 'shop',
    labels: { app: 'reviews', version: 'v1' },
    ipFamilies: ['v4', 'v6'],
    workloadName: 'reviews-v1',
    serviceAccount: 'reviews',
    ips: ['10.0.0.5', 'fd00::5'],
  });
});

test("Istio's node id gives namespace, workload and IP when metadata does not", () => {
  const r = proxyIdentity({ id: 'sidecar~10.1.2.3~productpage-v1-abc.bookinfo~bookinfo.svc.cluster.local' });
  assert.ok(r.ok);
  assert.equal(r.value.namespace, 'bookinfo');
  assert.equal(r.value.workloadName, 'productpage-v1-abc');
  assert.deepEqual(r.value.ips, ['10.1.2.3']);
  const plain = proxyIdentity({ id: 'just-a-name' });
  assert.ok(plain.ok);
  assert.equal(plain.value.namespace, 'default');
  assert.deepEqual(plain.value.labels, {});
});

test('proxyless gRPC clients: GENERATOR grpc, or a gRPC user agent', () => {
  const a = proxyIdentity({ id: 'x', metadata: { GENERATOR: 'grpc' } });
  const b = proxyIdentity({ id: 'x', user_agent_name: 'gRPC Node Pure JS' });
  const c = proxyIdentity({ id: 'x', user_agent_name: 'envoy' });
  assert.ok(a.ok && b.ok && c.ok);
  assert.deepEqual([a.value.kind, b.value.kind, c.value.kind], ['grpc', 'grpc', 'sidecar']);
});

test('malformed metadata is refused with every field path', () => {
  const r = proxyIdentity({
    id: '',
    metadata: { NAMESPACE: 'Not_A_Namespace', LABELS: { app: 3 }, INSTANCE_IPS: 'x', SERVICE_ACCOUNT: 7 },
  });
  assert.ok(!r.ok);
  assert.deepEqual(r.errors.map((e) => e.path).sort(), [
    'node.id',
    'node.metadata.INSTANCE_IPS[0]',
    'node.metadata.LABELS.app',
    'node.metadata.NAMESPACE',
    'node.metadata.SERVICE_ACCOUNT',
  ]);
  const labels = proxyIdentity({ id: 'a', metadata: { LABELS: 'app=x' } });
  assert.ok(!labels.ok);
  assert.match(labels.errors[0]!.message, /expected an object of label names to strings/);
});

test('group keys: equal for proxies the generator cannot tell apart, different otherwise', () => {
  const key = (node: Record<string, unknown>) => {
    const r = proxyIdentity({ id: 'p', ...node });
    assert.ok(r.ok);
    return groupKey(r.value);
  };
  const base = { metadata: { NAMESPACE: 'shop', LABELS: { app: 'a' }, INSTANCE_IPS: '10.0.0.1' } };
  assert.equal(
    key(base),
    key({
      ...base,
      id: 'other',
      metadata: { ...base.metadata, INSTANCE_IPS: '10.0.0.2', WORKLOAD_NAME: 'w' },
    }),
  );
  assert.notEqual(key(base), key({ metadata: { ...base.metadata, LABELS: { app: 'b' } } }));
  assert.notEqual(key(base), key({ metadata: { ...base.metadata, NAMESPACE: 'other' } }));
  assert.notEqual(key(base), key({ metadata: { ...base.metadata, INSTANCE_IPS: 'fd00::1' } }));
  assert.notEqual(key(base), key({ ...base, user_agent_name: 'gRPC Go' }));
  assert.match(key(base), /^sidecar~shop~[0-9a-f]{12}$/);
  // The group is exactly what the key covers.
  const id = proxyIdentity({ id: 'p', ...base });
  assert.ok(id.ok);
  assert.deepEqual(Object.keys(proxyGroup(id.value)).sort(), ['ipFamilies', 'kind', 'labels', 'namespace']);
});

test('the encoder encodes each distinct resource once and forgets what two rounds did not use', () => {
  const enc = new ResourceEncoder();
  const cluster = (name: string) => ({ name, type: 'STATIC', connect_timeout: '1s' });
  const a = enc.encode(XDS_TYPE_URLS.cluster, cluster('a'));
  const again = enc.encode(XDS_TYPE_URLS.cluster, cluster('a'));
  assert.ok(a.ok && again.ok);
  assert.equal(a.value, again.value, 'the same object');
  enc.encode(XDS_TYPE_URLS.cluster, cluster('b'));
  enc.nextRound();
  enc.encode(XDS_TYPE_URLS.cluster, cluster('a'));
  enc.nextRound();
  assert.equal(enc.size, 1, '"b" was not used in the last two rounds');
  const bad = encodeConfig({ clusters: [{ name: 'x', no_such_field: 1 }] });
  assert.ok(!bad.ok);
  assert.deepEqual(bad.errors, [
    { path: 'clusters["x"].no_such_field', message: 'unknown field "no_such_field"' },
  ]);
});

test('INTERCEPTION_MODE NONE: bind address (default 127.0.0.1) and inbound listener address, part of the group key', () => {
  const none = proxyIdentity({
    id: 'a',
    metadata: {
      INTERCEPTION_MODE: 'NONE',
      OUTBOUND_BIND_ADDRESS: '127.0.0.2',
      INBOUND_LISTENER_ADDRESS: '[::1]:15006',
    },
  });
  assert.ok(none.ok);
  assert.deepEqual(none.value.interception, {
    mode: 'NONE',
    outboundBindAddress: '127.0.0.2',
    inbound: { address: '::1', port: 15006 },
  });
  const plain = proxyIdentity({ id: 'b', metadata: { INTERCEPTION_MODE: 'NONE' } });
  assert.ok(plain.ok);
  assert.deepEqual(plain.value.interception, {
    mode: 'NONE',
    outboundBindAddress: '127.0.0.1',
    inbound: undefined,
  });
  const redirect = proxyIdentity({ id: 'c', metadata: { INTERCEPTION_MODE: 'REDIRECT' } });
  assert.ok(redirect.ok);
  assert.equal(redirect.value.interception, undefined);
  const keys = [none.value, plain.value, redirect.value].map(groupKey);
  assert.equal(new Set(keys).size, 3, 'each interception setting is its own group');
  assert.deepEqual(proxyGroup(none.value).interception, none.value.interception);
});

test('interception metadata: unsupported modes, bad addresses, NONE-only keys in capture mode', () => {
  const r = proxyIdentity({
    id: 'x',
    metadata: {
      INTERCEPTION_MODE: 'NONE',
      OUTBOUND_BIND_ADDRESS: 'localhost',
      INBOUND_LISTENER_ADDRESS: '127.0.0.1',
    },
  });
  assert.ok(!r.ok);
  assert.deepEqual(
    r.errors.map((e) => e.path),
    ['node.metadata.OUTBOUND_BIND_ADDRESS', 'node.metadata.INBOUND_LISTENER_ADDRESS'],
  );
  const tproxy = proxyIdentity({
    id: 'x',
    metadata: { INTERCEPTION_MODE: 'TPROXY', OUTBOUND_BIND_ADDRESS: '127.0.0.2' },
  });
  assert.ok(!tproxy.ok);
  assert.match(tproxy.errors[0]!.message, /"TPROXY" is not supported/);
  assert.match(tproxy.errors[1]!.message, /only read with INTERCEPTION_MODE NONE/);
});

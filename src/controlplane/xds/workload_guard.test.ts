import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identityProblem, renderGuardMetrics } from './workload_guard.js';

const WEB = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' };

test('a node may have the configuration of its certificate: namespace from metadata, its id, or the default', () => {
  assert.equal(identityProblem(WEB, { id: 'a', metadata: { NAMESPACE: 'shop' } }), undefined);
  assert.equal(
    identityProblem(WEB, { id: 'a', metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'web' } }),
    undefined,
  );
  assert.equal(identityProblem(WEB, { id: 'sidecar~10.0.0.1~web-1.shop~shop.svc.cluster.local' }), undefined);
  // No namespace said anywhere is `default`, which is not shop.
  assert.match(identityProblem(WEB, { id: 'a' })!, /claims namespace "default"/);
  assert.equal(
    identityProblem({ ...WEB, namespace: 'default' }, { id: 'a', metadata: { SERVICE_ACCOUNT: 'web' } }),
    undefined,
  );
});

test('another namespace or service account is refused, naming both', () => {
  assert.equal(
    identityProblem(WEB, { id: 'a', metadata: { NAMESPACE: 'bank' } }),
    'the node claims namespace "bank", but its certificate is spiffe://cluster.local/ns/shop/sa/web (namespace "shop")',
  );
  assert.equal(
    identityProblem(WEB, { id: 'sidecar~10.0.0.1~x.bank~bank.svc.cluster.local' }),
    'the node claims namespace "bank", but its certificate is spiffe://cluster.local/ns/shop/sa/web (namespace "shop")',
  );
  assert.equal(
    identityProblem(WEB, { id: 'a', metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'admin' } }),
    'the node claims service account "admin", but its certificate is spiffe://cluster.local/ns/shop/sa/web (service account "web")',
  );
  assert.match(
    identityProblem(WEB, { id: 'a', metadata: { NAMESPACE: 42 } })!,
    /^the node cannot be read: node\.metadata\.NAMESPACE/,
  );
});

test('counters render as remora_xds_mtls_*_total', () => {
  const text = renderGuardMetrics({ admitted: 2, unauthenticated: 1, permission_denied: 0 });
  assert.match(text, /^remora_xds_mtls_admitted_total 2$/m);
  assert.match(text, /^remora_xds_mtls_unauthenticated_total 1$/m);
  assert.match(text, /^# TYPE remora_xds_mtls_permission_denied_total counter$/m);
});

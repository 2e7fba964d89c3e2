// Which PeerAuthentication mode and which AuthorizationPolicies apply to a workload.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { AuthorizationPolicyObject, PeerAuthenticationObject } from './objects.js';
import { authorizationPoliciesFor, mtlsFor } from './security.js';

function objects<T>(yaml: string): T[] {
  const r = parseManifests(yaml, { source: 'test' });
  assert.deepEqual(r.errors, []);
  return r.objects as T[];
}

/** Built directly, without manifests. */
const pa = (
  namespace: string,
  name: string,
  mode: PeerAuthenticationObject['mode'],
  selector?: Record<string, string>,
  portLevel: PeerAuthenticationObject['portLevel'] = {},
): PeerAuthenticationObject => ({
  kind: 'PeerAuthentication',
  meta: { name, namespace, labels: {} },
  origin: { source: 'test' },
  selector,
  mode,
  portLevel,
});

test('mTLS: PERMISSIVE by default; workload over namespace over mesh; UNSET inherits; ports override', () => {
  assert.deepEqual(mtlsFor([], 'shop', {}), { mode: 'PERMISSIVE', ports: {} });
  const policies = [
    pa('istio-system', 'default', 'STRICT'),
    pa('legacy', 'default', 'DISABLE'),
    pa('shop', 'db', 'UNSET', { app: 'db' }, { 5432: 'PERMISSIVE', 9000: 'STRICT' }),
    pa('shop', 'web', 'PERMISSIVE', { app: 'web' }),
  ];
  assert.deepEqual(mtlsFor(policies, 'shop', { app: 'api' }), { mode: 'STRICT', ports: {} });
  assert.deepEqual(mtlsFor(policies, 'legacy', { app: 'api' }), { mode: 'DISABLE', ports: {} });
  assert.deepEqual(mtlsFor(policies, 'shop', { app: 'web', v: '1' }), { mode: 'PERMISSIVE', ports: {} });
  // UNSET inherits STRICT; 9000 is STRICT already, so only 5432 differs.
  assert.deepEqual(mtlsFor(policies, 'shop', { app: 'db' }), {
    mode: 'STRICT',
    ports: { 5432: 'PERMISSIVE' },
  });
});

test('authorization: root-namespace and own-namespace policies whose selector matches', () => {
  const ap = (ns: string, name: string, selector: string) => `---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${name}, namespace: ${ns}}
spec: {${selector}action: DENY, rules: [{}]}
`;
  const policies = objects<AuthorizationPolicyObject>(
    ap('istio-system', 'mesh', '') +
      ap('istio-system', 'mesh-api', 'selector: {matchLabels: {app: api}}, ') +
      ap('shop', 'ns', '') +
      ap('shop', 'web-only', 'selector: {matchLabels: {app: web}}, ') +
      ap('other', 'elsewhere', ''),
  );
  const names = (ns: string, labels: Record<string, string>) =>
    authorizationPoliciesFor(policies, ns, labels).map((p) => `${p.meta.namespace}/${p.meta.name}`);
  assert.deepEqual(names('shop', { app: 'api' }), ['istio-system/mesh', 'istio-system/mesh-api', 'shop/ns']);
  assert.deepEqual(names('shop', { app: 'web' }), ['istio-system/mesh', 'shop/ns', 'shop/web-only']);
  assert.deepEqual(names('third', {}), ['istio-system/mesh']);
});

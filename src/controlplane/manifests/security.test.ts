// PeerAuthentication and AuthorizationPolicy manifests: Istio's fields, and every error with its path.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MeshObject } from '../model/objects.js';
import { formatManifestError, parseManifests } from './parse.js';

const ORIGIN = { source: 'test', file: 'mesh.yaml' };

function parsed(text: string): { objects: MeshObject[]; errors: string[] } {
  const r = parseManifests(text, ORIGIN);
  return { objects: r.objects, errors: r.errors.map(formatManifestError) };
}

test('PeerAuthentication: mesh-wide, namespace and workload modes with port-level overrides', () => {
  const r = parsed(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: legacy, namespace: shop}
spec:
  selector: {matchLabels: {app: legacy}}
  mtls: {mode: UNSET}
  portLevelMtls:
    "8080": {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: empty, namespace: shop}
`);
  assert.deepEqual(r.errors, []);
  const [mesh, legacy, empty] = r.objects;
  assert.deepEqual(mesh, {
    kind: 'PeerAuthentication',
    meta: { name: 'default', namespace: 'istio-system', labels: {} },
    origin: ORIGIN,
    selector: undefined,
    mode: 'PERMISSIVE',
    portLevel: {},
  });
  assert.ok(legacy?.kind === 'PeerAuthentication');
  assert.deepEqual(legacy.selector, { app: 'legacy' });
  assert.equal(legacy.mode, 'UNSET');
  assert.deepEqual(legacy.portLevel, { 8080: 'DISABLE' });
  assert.ok(empty?.kind === 'PeerAuthentication' && empty.mode === 'UNSET');
});

test('PeerAuthentication: bad modes, ports and port-level modes without a selector are refused (STRICT is a mode)', () => {
  const r = parsed(`
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: bad, namespace: shop}
spec:
  mtls: {mode: STRICTER}
  portLevelMtls:
    "0": {mode: DISABLE}
    http: {mode: DISABLE}
    "9000": {mode: STRICT}
`);
  const p = 'mesh.yaml: PeerAuthentication shop/bad: spec.';
  assert.deepEqual(r.objects, []);
  assert.deepEqual(r.errors, [
    `${p}mtls.mode: unsupported value "STRICTER" (expected one of UNSET, DISABLE, PERMISSIVE, STRICT)`,
    `${p}portLevelMtls["0"]: "0" is not a port number (1-65535)`,
    `${p}portLevelMtls.http: "http" is not a port number (1-65535)`,
    `${p}portLevelMtls: port-level mTLS needs a selector (Istio applies it to selected workloads only)`,
  ]);
});

test('AuthorizationPolicy: sources, operations and conditions as Istio writes them', () => {
  const r = parsed(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api-from-frontend, namespace: shop}
spec:
  selector: {matchLabels: {app: api}}
  action: ALLOW
  rules:
  - from:
    - source: {namespaces: [frontend], principals: ["cluster.local/ns/frontend/sa/*"]}
    to:
    - operation: {methods: [GET], paths: ["/api/*"], ports: ["8080", 9090]}
    when:
    - {key: "request.headers[x-tenant]", values: [gold]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: locked}
spec: {}
`);
  assert.deepEqual(r.errors, []);
  const [allow, deny, denyAll] = r.objects;
  assert.ok(allow?.kind === 'AuthorizationPolicy');
  assert.equal(allow.action, 'ALLOW');
  assert.deepEqual(allow.rules[0]!.from, [
    {
      principals: ['cluster.local/ns/frontend/sa/*'],
      notPrincipals: undefined,
      namespaces: ['frontend'],
      notNamespaces: undefined,
      ipBlocks: undefined,
      notIpBlocks: undefined,
      remoteIpBlocks: undefined,
      notRemoteIpBlocks: undefined,
    },
  ]);
  assert.deepEqual(allow.rules[0]!.to[0]!.ports, ['8080', '9090']);
  assert.deepEqual(allow.rules[0]!.when, [
    { key: 'request.headers[x-tenant]', values: ['gold'], notValues: undefined },
  ]);
  assert.ok(deny?.kind === 'AuthorizationPolicy' && deny.action === 'DENY');
  assert.deepEqual(deny.rules[0]!.to[0]!.paths, ['/admin', '/admin/*']);
  assert.ok(denyAll?.kind === 'AuthorizationPolicy');
  assert.deepEqual([denyAll.action, denyAll.rules, denyAll.selector], ['ALLOW', [], undefined]);
});

test('AuthorizationPolicy: what Remora cannot enforce is refused with its path', () => {
  const r = parsed(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad, namespace: shop}
spec:
  action: CUSTOM
  provider: {name: ext-authz}
  rules:
  - from:
    - source: {requestPrincipals: ["*"], ipBlocks: ["10.0.0.0/33", "not-an-ip"]}
    - {}
    to:
    - operation: {paths: ["/a*b"], methods: ["GET POST"], ports: ["http"]}
    when:
    - {key: "request.auth.claims[iss]", values: [x]}
    - {key: source.region, values: [eu]}
    - {key: "request.headers[x-a]"}
`);
  const p = 'mesh.yaml: AuthorizationPolicy shop/bad: spec.';
  assert.deepEqual(r.objects, []);
  assert.deepEqual(r.errors, [
    `${p}provider: external authorization (CUSTOM) ("provider") is not supported by Remora yet`,
    `${p}action: value "CUSTOM" is not supported by Remora yet (supported: ALLOW, DENY)`,
    `${p}rules[0].from[0].source.requestPrincipals: request principals (JWT, RequestAuthentication) ("requestPrincipals") is not supported by Remora yet`,
    `${p}rules[0].from[0].source.ipBlocks[0]: "10.0.0.0/33": the prefix length must be 0-32`,
    `${p}rules[0].from[0].source.ipBlocks[1]: "not-an-ip" is not an IP address or CIDR block`,
    `${p}rules[0].from[1].source: missing required field`,
    `${p}rules[0].to[0].operation.ports[0]: "http" is not a port number (1-65535)`,
    `${p}rules[0].to[0].operation.methods[0]: "GET POST" is not an HTTP method`,
    `${p}rules[0].to[0].operation.paths[0]: "/a*b": "*" is allowed only at the start or the end`,
    `${p}rules[0].when[0].key: "request.auth.claims[iss]": request authentication (JWT) is not supported by Remora yet`,
    `${p}rules[0].when[1].key: unsupported key "source.region" (expected request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, destination.ip, destination.port, connection.sni, request.method)`,
    `${p}rules[0].when[2]: one of values, notValues is required`,
  ]);
});

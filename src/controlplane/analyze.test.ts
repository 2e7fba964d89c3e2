// `analyzeDir`: every cross-object problem with its code, file and field path; a clean directory has none.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analyzeDir, formatProblem, runAnalyze } from './analyze.js';
import { parseManifests } from './manifests/parse.js';
import type { HttpRoute, VirtualServiceObject } from './model/objects.js';
import { unreachableRoutes } from './route_coverage.js';

let root: string;
let n = 0;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'remora-analyze-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** A fresh directory holding `files`. */
function dir(files: Record<string, string>): string {
  const d = join(root, `case-${++n}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(d, name, '..'), { recursive: true });
    writeFileSync(join(d, name), text);
  }
  return d;
}

async function problems(files: Record<string, string>): Promise<string[]> {
  const a = await analyzeDir(dir(files));
  return a.problems.map(formatProblem);
}

function assertHas(lines: string[], ...parts: string[]): void {
  assert.ok(
    lines.some((l) => parts.every((p) => l.includes(p))),
    `expected a line with ${parts.map((p) => JSON.stringify(p)).join(' and ')}, got:\n  ${lines.join('\n  ')}`,
  );
}

const SERVICES = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: shop}
spec: {address: 10.0.0.1, labels: {app: reviews, version: v1}}
---
apiVersion: v1
kind: Service
metadata: {name: ratings, namespace: shop}
spec: {ports: [{name: http, port: 9080}]}
`;

test('a consistent mesh has no problems; the example mesh is clean', async () => {
  assert.deepEqual(
    await problems({
      'services.yaml': SERVICES,
      'policy/reviews.yaml': `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}]}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - match: [{uri: {prefix: /v1}}]
    route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]
  - route: [{destination: {host: reviews}}]
`,
    }),
    [],
  );
  const example = fileURLToPath(new URL('../../../examples/mesh', import.meta.url));
  assert.deepEqual((await analyzeDir(example)).problems, []);
});

test('unknown hosts, subsets, ports and namespaces; subsets without endpoints', async () => {
  const lines = await problems({
    'services.yaml': SERVICES,
    'vs.yaml': `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews, namespace: shop}
spec:
  hosts: [reviews, nowhere]
  http:
  - match: [{uri: {prefix: /a}}]
    route:
    - destination: {host: reviews, subset: v9}
      weight: 50
    - destination: {host: ratings, subset: v1, port: {number: 8080}}
      weight: 50
  - route: [{destination: {host: details}}]
`,
    'dr.yaml': `
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews, namespace: shop}
spec: {host: reviews, subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ghost, namespace: shop}
spec: {host: ghost.shop.svc.cluster.local}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ratings, namespace: shop}
spec: {host: ratings, subsets: [{name: v1, labels: {version: v1}}]}
`,
    'sidecar.yaml': `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: shop}
spec: {egress: [{hosts: ["./*", "payments/*", "*/api.example.com"]}]}
`,
    'slice.yaml': `
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orphan, namespace: shop, labels: {kubernetes.io/service-name: details}}
addressType: IPv4
endpoints: []
`,
  });
  const vs = 'vs.yaml: VirtualService shop/reviews: ';
  assertHas(lines, vs, 'spec.hosts[1]: unknown host "nowhere"', '[RA0201 unknown-host]');
  assertHas(
    lines,
    vs,
    'spec.http[0].route[0].destination.subset: unknown subset "v9"',
    'defines "v1", "v2"',
    '[RA0202 unknown-subset]',
  );
  assertHas(
    lines,
    vs,
    'spec.http[0].route[1].destination.port.number: ratings.shop.svc.cluster.local does not expose port 8080 (its ports: 9080)',
    '[RA0204 unknown-port]',
  );
  assertHas(lines, vs, 'spec.http[1].route[0].destination.host: unknown host "details"', '[RA0201');
  assertHas(
    lines,
    'dr.yaml: DestinationRule shop/reviews: spec.subsets[1]: subset "v2" selects no endpoints: none of the 1 endpoints',
    '[RA0203 subset-without-endpoints]',
  );
  assertHas(
    lines,
    'dr.yaml: DestinationRule shop/ratings: spec.subsets[0]: subset "v1" selects no endpoints: ratings.shop.svc.cluster.local has no endpoints',
  );
  assertHas(lines, 'dr.yaml: DestinationRule shop/ghost: spec.host: unknown host', '[RA0201');
  assertHas(
    lines,
    'sidecar.yaml: Sidecar shop/default: spec.egress[0].hosts[1]: namespace "payments" does not exist',
    '[RA0205 unknown-namespace]',
  );
  assertHas(
    lines,
    'sidecar.yaml: Sidecar shop/default: spec.egress[0].hosts[2]: unknown host "*/api.example.com"',
    '[RA0201',
  );
  assertHas(
    lines,
    'slice.yaml: EndpointSlice shop/orphan: metadata.labels["kubernetes.io/service-name"]: no Service "details"',
    '[RA0206 unknown-service]',
  );
  assert.equal(lines.length, 10, lines.join('\n'));
});

test('conflicts: two VirtualServices or DestinationRules for one host, two default Sidecars, shadowed routes', async () => {
  const lines = await problems({
    'services.yaml': SERVICES,
    'a.yaml': `
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: a, namespace: shop}
spec:
  hosts: [reviews]
  http:
  - name: everything
    match: [{uri: {prefix: /}}]
    route: [{destination: {host: reviews}}]
  - name: api
    match: [{uri: {prefix: /api}, headers: {x-user: {exact: a}}}]
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: b, namespace: shop}
spec:
  hosts: [reviews.shop.svc.cluster.local]
  http: [{route: [{destination: {host: reviews}}]}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: one, namespace: shop}
spec: {host: reviews}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: two, namespace: shop}
spec: {host: reviews.shop.svc.cluster.local}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s1, namespace: shop}
spec: {egress: [{hosts: ["./*"]}]}
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: s2, namespace: shop}
spec: {egress: [{hosts: ["./*"]}]}
`,
  });
  assertHas(
    lines,
    'a.yaml: VirtualService shop/b: spec.hosts[0]: host "reviews.shop.svc.cluster.local" is also routed by VirtualService shop/a',
    '[RA0301 conflicting-virtual-services]',
  );
  assertHas(
    lines,
    'a.yaml: VirtualService shop/a: spec.http[1]: this route can never match: http[0] ("everything") before it catches every request it would',
    '[RA0302 unreachable-route]',
  );
  assertHas(
    lines,
    'a.yaml: DestinationRule shop/two: spec.host: host "reviews.shop.svc.cluster.local" also has DestinationRule shop/one',
    '[RA0303 conflicting-destination-rules]',
  );
  assertHas(
    lines,
    'a.yaml: Sidecar shop/s2: spec: namespace "shop" already has a Sidecar without workloadSelector',
    '[RA0304 conflicting-sidecars]',
  );
  assert.equal(lines.length, 4, lines.join('\n'));
});

test('authorization policies that can never match', async () => {
  const lines = await problems({
    'mesh.yaml': SERVICES,
    'authz.yaml': `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: nobody, namespace: shop}
spec:
  selector: {matchLabels: {app: gone}}
  rules:
  - from: [{source: {namespaces: [frontend, shop]}}]
    to: [{operation: {paths: ["api/*", "/ok", "*.css"], methods: [get, POST]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews, namespace: istio-system}
spec: {selector: {matchLabels: {app: reviews}}, action: DENY, rules: [{}]}
`,
  });
  const p = 'authz.yaml: AuthorizationPolicy shop/nobody: spec.';
  const found = lines
    .filter((l) => l.includes('AuthorizationPolicy'))
    .map((l) => l.slice(l.indexOf('authz.yaml')));
  assert.deepEqual(found.sort(), [
    `${p}rules[0].from[0].source.namespaces[0]: namespace "frontend" does not exist (no object is in it) [RA0205 unknown-namespace]`,
    `${p}rules[0].to[0].operation.methods[0]: "get" never matches: methods are case-sensitive ("GET") [RA0306 policy-never-matches]`,
    `${p}rules[0].to[0].operation.paths[0]: "api/*" never matches: request paths start with "/" [RA0306 policy-never-matches]`,
    `${p}selector.matchLabels: selects no workload: nothing in namespace "shop" has labels {"app":"gone"} [RA0306 policy-never-matches]`,
  ]);
});

test('STRICT mTLS on a workload without a mesh identity refuses everything', async () => {
  const strict = (ns: string, extra = '') => `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: ${ns}}
spec: {mtls: {mode: STRICT}${extra}}
`;
  const meshed = `${SERVICES}---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: ratings-v1, namespace: shop}
spec: {address: 10.0.0.2, labels: {app: ratings, security.istio.io/tlsMode: istio}}
`;
  const found = await problems({ 'mesh.yaml': meshed, 'pa.yaml': strict('istio-system') });
  assert.deepEqual(
    found.map((l) => l.slice(l.indexOf('pa.yaml'))),
    [
      'pa.yaml: PeerAuthentication istio-system/default: spec.mtls.mode: STRICT refuses all traffic to ' +
        'WorkloadEntry shop/reviews-v1: without the label "security.istio.io/tlsMode: istio" it has no mesh ' +
        'identity, so clients send it plaintext [RA0307 strict-without-identity]',
    ],
  );
  // Another namespace's STRICT does not reach it.
  assert.deepEqual(await problems({ 'mesh.yaml': meshed, 'pa.yaml': strict('other') }), []);
  const demo = fileURLToPath(new URL('../../../examples/mesh-demo', import.meta.url));
  assert.deepEqual((await analyzeDir(demo)).problems, []);
});

test("a rule on callers' identities for workloads without a mesh identity never matches", async () => {
  const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: from-frontend, namespace: shop}
spec:
  selector: {matchLabels: {app: reviews}}
  rules: [{from: [{source: {namespaces: [shop]}}]}, {to: [{operation: {methods: [GET]}}]}]
`;
  const found = await problems({ 'mesh.yaml': SERVICES, 'authz.yaml': policy });
  assert.deepEqual(
    found.map((l) => l.slice(l.indexOf('authz.yaml'))),
    [
      'authz.yaml: AuthorizationPolicy shop/from-frontend: spec.rules[0].from: never matches: it asks for the ' +
        "caller's identity, but WorkloadEntry shop/reviews-v1 has no mesh identity (label " +
        '"security.istio.io/tlsMode: istio"), so callers come in plaintext, unidentified [RA0306 policy-never-matches]',
    ],
  );
  // With the label, its callers come over mTLS with their identity.
  const meshed = SERVICES.replace(
    'labels: {app: reviews, version: v1}',
    'labels: {app: reviews, version: v1, security.istio.io/tlsMode: istio}',
  );
  assert.notEqual(meshed, SERVICES);
  assert.deepEqual(await problems({ 'mesh.yaml': meshed, 'authz.yaml': policy }), []);
});

test('schema problems come first, with their codes; a duplicate object across files is reported', async () => {
  const lines = await problems({
    '1.yaml': SERVICES,
    '2.yaml':
      'apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec: {ports: [{port: 1}]}\n',
    '3.yaml': 'apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: 80, bogus: 1}]}\n',
    '4.yml': 'a: [\n',
    '5.json': '{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}',
    'notes.txt': 'not a manifest',
    '.hidden.yaml': 'not: [valid',
  });
  assertHas(
    lines,
    '2.yaml: Service shop/reviews is also defined in',
    '1.yaml: ignored here',
    '[RA0104 duplicate-object]',
  );
  assertHas(
    lines,
    '3.yaml: Service default/x: spec.ports[0].bogus: unknown field "bogus"',
    '[RA0102 invalid-field]',
  );
  assertHas(lines, '4.yml: document 1: YAML syntax error', '[RA0101 yaml-syntax]');
  assertHas(lines, '5.json: Deployment default/web: kind:', '[RA0103 unknown-kind]');
  assert.equal(lines.length, 4, lines.join('\n'));
});

test('runAnalyze: exit 0 and one summary line when clean, 1 and every problem otherwise', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = (a: string[]) => ({ write: (t: string) => a.push(t) });
  const clean = dir({ 's.yaml': SERVICES });
  assert.equal(await runAnalyze(clean, io(out), io(err)), 0);
  assert.deepEqual(err, []);
  assert.equal(
    out.join(''),
    `${clean}: clean: 2 services, 1 endpoint, 1 workload, 0 VirtualServices, 0 DestinationRules, 0 Sidecars\n`,
  );
  out.length = 0;
  const bad = dir({
    's.yaml': `${SERVICES}---\napiVersion: v1\nkind: Service\nmetadata: {name: b}\nspec: {ports: [{port: 0}]}\n`,
  });
  assert.equal(await runAnalyze(bad, io(out), io(err)), 1);
  assert.deepEqual(out, []);
  assert.match(
    err.join(''),
    /spec\.ports\[0\]\.port: must be between 1 and 65535, got 0 \[RA0102 invalid-field\]\n.*: 1 problem\n$/,
  );
  err.length = 0;
  assert.equal(await runAnalyze(join(root, 'missing'), io(out), io(err)), 1);
  assert.match(err.join(''), /missing: no such directory/);
});

function routes(http: string): readonly HttpRoute[] {
  const text = `apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n${http}`;
  const r = parseManifests(text, { source: 't' });
  assert.deepEqual(r.errors, []);
  return (r.objects[0] as VirtualServiceObject).http;
}

test('route coverage: prefixes, exact paths, regexes, headers, methods, ports, case', () => {
  const shadowed = (http: string) => unreachableRoutes(routes(http)).map((u) => [u.index, u.shadowedBy]);
  const R = (match: string) => `  - match: [${match}]\n    route: [{destination: {host: a}}]\n`;
  const ANY = '  - route: [{destination: {host: a}}]\n';
  assert.deepEqual(shadowed(ANY + ANY), [[1, [0]]]);
  assert.deepEqual(shadowed(R('{uri: {prefix: /a}}') + R('{uri: {exact: /a/b}}')), [[1, [0]]]);
  assert.deepEqual(shadowed(R('{uri: {prefix: /a/b}}') + R('{uri: {prefix: /a}}')), []);
  assert.deepEqual(
    shadowed(R('{uri: {regex: "/a/[0-9]+"}}') + R('{uri: {exact: /a/42}}') + R('{uri: {exact: /a/x}}')),
    [[1, [0]]],
  );
  assert.deepEqual(
    shadowed(R('{headers: {x: {}}}') + R('{headers: {x: {exact: "1"}}, method: {exact: GET}}')),
    [[1, [0]]],
  );
  assert.deepEqual(shadowed(R('{headers: {x: {exact: "1"}}}') + R('{headers: {y: {exact: "1"}}}')), []);
  assert.deepEqual(shadowed(R('{method: {exact: GET}}') + R('{method: {exact: POST}}')), []);
  assert.deepEqual(shadowed(R('{port: 80}') + R('{port: 81}') + R('{port: 80, uri: {prefix: /x}}')), [
    [2, [0]],
  ]);
  // Case-sensitive /a does not catch a case-insensitive /a/b (which also takes /A/B).
  assert.deepEqual(shadowed(R('{uri: {prefix: /a}}') + R('{uri: {prefix: /a/b}, ignoreUriCase: true}')), []);
  assert.deepEqual(shadowed(R('{uri: {prefix: /a}, ignoreUriCase: true}') + R('{uri: {prefix: /A/b}}')), [
    [1, [0]],
  ]);
  // A route with two matches is dead only when each is caught, possibly by different earlier routes.
  assert.deepEqual(
    shadowed(
      R('{uri: {prefix: /a}}') + R('{uri: {prefix: /b}}') + R('{uri: {prefix: /a/1}}, {uri: {prefix: /b/1}}'),
    ),
    [[2, [0, 1]]],
  );
  assert.deepEqual(shadowed(R('{uri: {prefix: /a}}') + R('{uri: {prefix: /a/1}}, {uri: {prefix: /c}}')), []);
});

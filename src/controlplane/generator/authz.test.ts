// AuthorizationPolicies to RBAC filters: Istio's translation of sources, operations, conditions and actions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseManifests } from '../manifests/parse.js';
import type { AuthorizationPolicyObject } from '../model/objects.js';
import { inboundAuthz } from './authz.js';

// biome-ignore lint/suspicious/noExplicitAny: reading deep into generated JSON in assertions
type Json = Record<string, any>;

function policies(yaml: string): AuthorizationPolicyObject[] {
  const r = parseManifests(yaml, { source: 'test' });
  assert.deepEqual(r.errors, []);
  return r.objects as AuthorizationPolicyObject[];
}

const GET_API_FROM_FRONTEND = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: api, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {namespaces: [frontend]}}]
    to: [{operation: {methods: [GET], paths: ["/api/*"]}}]
`;

const DENY_ADMIN = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-admin, namespace: istio-system}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin", "/admin/*"], notPorts: ["9090"]}}]}]
`;

test('no policy: no filter', () => {
  assert.deepEqual(inboundAuthz([]), { http: [], network: [] });
});

test('"only GET /api/* from namespace frontend": one ALLOW filter; TCP allows nothing (the rule needs HTTP)', () => {
  const { http, network } = inboundAuthz(policies(GET_API_FROM_FRONTEND));
  assert.equal(http.length, 1);
  const h = http[0] as Json;
  assert.equal(h.name, 'envoy.filters.http.rbac');
  assert.deepEqual(h.typed_config.rules, {
    policies: {
      'ns[shop]-policy[api]-rule[0]': {
        permissions: [
          {
            and_rules: {
              rules: [
                { header: { name: ':method', string_match: { exact: 'GET' } } },
                { url_path: { path: { prefix: '/api/' } } },
              ],
            },
          },
        ],
        principals: [
          {
            authenticated: {
              principal_name: { safe_regex: { regex: 'spiffe://[^/]+/ns/frontend/sa/.+' } },
            },
          },
        ],
      },
    },
  });
  const n = network[0] as Json;
  assert.equal(n.name, 'envoy.filters.network.rbac');
  // ALLOW with no policy: nothing is allowed (ALLOW, protobuf's zero, is left out as its JSON writer does).
  assert.deepEqual(n.typed_config.rules, {});
});

test('"deny /admin for everyone": DENY before ALLOW; on TCP the DENY keeps its non-HTTP part', () => {
  const { http, network } = inboundAuthz([...policies(GET_API_FROM_FRONTEND), ...policies(DENY_ADMIN)]);
  assert.deepEqual(
    http.map((f) => (f as Json).typed_config.rules.action ?? 'ALLOW'),
    ['DENY', 'ALLOW'],
  );
  const deny = (http[0] as Json).typed_config.rules.policies['ns[istio-system]-policy[no-admin]-rule[0]'];
  assert.deepEqual(deny, {
    permissions: [
      {
        and_rules: {
          rules: [
            { not_rule: { destination_port: 9090 } },
            {
              or_rules: {
                rules: [
                  { url_path: { path: { exact: '/admin' } } },
                  { url_path: { path: { prefix: '/admin/' } } },
                ],
              },
            },
          ],
        },
      },
    ],
    principals: [{ any: true }],
  });
  const tcpDeny = (network[0] as Json).typed_config.rules.policies[
    'ns[istio-system]-policy[no-admin]-rule[0]'
  ];
  assert.deepEqual(tcpDeny.permissions, [{ not_rule: { destination_port: 9090 } }]);
});

test('allow-all and deny-all shorthands, principals, IP blocks and conditions', () => {
  const all = inboundAuthz(
    policies(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: shop}
spec: {rules: [{}]}
`),
  );
  assert.deepEqual((all.http[0] as Json).typed_config.rules.policies, {
    'ns[shop]-policy[allow-all]-rule[0]': { permissions: [{ any: true }], principals: [{ any: true }] },
  });
  const none = inboundAuthz(
    policies(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-all, namespace: shop}
`),
  );
  assert.deepEqual((none.http[0] as Json).typed_config.rules, {});
  const rich = inboundAuthz(
    policies(`
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: rich, namespace: shop}
spec:
  rules:
  - from:
    - source: {principals: ["cluster.local/ns/a/sa/b", "*"]}
    - source: {ipBlocks: ["10.0.0.0/8"], notIpBlocks: ["10.1.2.3"]}
    to: [{operation: {hosts: ["api.example.com"], ports: ["8080"]}}]
    when:
    - {key: "request.headers[X-Tenant]", values: ["gold*"]}
    - {key: source.principal, notValues: ["*/sa/banned"]}
`),
  );
  const p = (rich.http[0] as Json).typed_config.rules.policies['ns[shop]-policy[rich]-rule[0]'];
  assert.deepEqual(p.permissions, [
    {
      and_rules: {
        rules: [
          {
            and_rules: {
              rules: [
                { destination_port: 8080 },
                {
                  header: {
                    name: ':authority',
                    string_match: { exact: 'api.example.com', ignore_case: true },
                  },
                },
              ],
            },
          },
          { header: { name: 'x-tenant', string_match: { prefix: 'gold' } } },
        ],
      },
    },
  ]);
  assert.deepEqual(p.principals, [
    {
      and_ids: {
        ids: [
          {
            or_ids: {
              ids: [
                {
                  or_ids: {
                    ids: [
                      { authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/a/sa/b' } } },
                      { authenticated: { principal_name: { safe_regex: { regex: '.+' } } } },
                    ],
                  },
                },
                {
                  and_ids: {
                    ids: [
                      { direct_remote_ip: { address_prefix: '10.0.0.0', prefix_len: 8 } },
                      { not_id: { direct_remote_ip: { address_prefix: '10.1.2.3', prefix_len: 32 } } },
                    ],
                  },
                },
              ],
            },
          },
          { not_id: { authenticated: { principal_name: { suffix: '/sa/banned' } } } },
        ],
      },
    },
  ]);
});

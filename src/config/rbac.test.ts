// Tests of the RBAC translation: both filters' typed_config, the rules, every permission and principal, the chain
// positions they may take, and every error with its field path.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateListener } from './listener.js';
import type { FilterChainConfig, HttpRbacConfig, ListenerConfig, NetworkRbacConfig } from './model.js';
import { MAX_RBAC_DEPTH } from './rbac.js';
import { formatErrors } from './result.js';
import { TYPE_URLS } from './typed_config.js';

const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': TYPE_URLS.router } };
const ROUTES = {
  virtual_hosts: [
    { name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'web' } }] },
  ],
};
const TCP = {
  name: 'envoy.filters.network.tcp_proxy',
  typed_config: { '@type': TYPE_URLS.tcpProxy, stat_prefix: 'tcp', cluster: 'db' },
};

function httpRbacFilter(config: Record<string, unknown>, name = 'envoy.filters.http.rbac'): unknown {
  return { name, typed_config: { '@type': TYPE_URLS.httpRbac, ...config } };
}

function networkRbacFilter(config: Record<string, unknown>, name = 'envoy.filters.network.rbac'): unknown {
  return { name, typed_config: { '@type': TYPE_URLS.networkRbac, ...config } };
}

function hcm(httpFilters: unknown[]): unknown {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': TYPE_URLS.httpConnectionManager,
      stat_prefix: 'in',
      route_config: ROUTES,
      http_filters: httpFilters,
    },
  };
}

function listener(filters: unknown[]): unknown {
  return {
    name: 'l',
    address: { socket_address: { address: '127.0.0.1', port_value: 8080 } },
    filter_chains: [{ filters }],
  };
}

function translate(filters: unknown[]): ListenerConfig {
  const r = translateListener(listener(filters), 'l');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function errors(filters: unknown[]): string[] {
  const r = translateListener(listener(filters), 'l');
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

function chain(filters: unknown[]): FilterChainConfig {
  return translate(filters).filterChains[0]!;
}

/** The HTTP RBAC config of a listener whose HCM has one RBAC filter (then the router). */
function httpRbac(config: Record<string, unknown>): HttpRbacConfig {
  const c = chain([hcm([httpRbacFilter(config), ROUTER])]);
  assert.equal(c.filter.kind, 'http_connection_manager');
  if (c.filter.kind !== 'http_connection_manager') return assert.fail();
  const rbac = c.filter.hcm.httpFilters[0]!.rbac;
  assert.ok(rbac);
  return rbac;
}

/** The errors of an HCM with one RBAC filter of `config`. */
function httpRbacErrors(config: Record<string, unknown>): string[] {
  return errors([hcm([httpRbacFilter(config), ROUTER])]);
}

const H = 'l.filter_chains[0].filters[0].typed_config.http_filters[0].typed_config';

/** One policy of `permission` and `principal`. */
function onePolicy(permission: unknown, principal: unknown = { any: true }): Record<string, unknown> {
  return {
    rules: { action: 'ALLOW', policies: { p: { permissions: [permission], principals: [principal] } } },
  };
}

test('an HTTP RBAC filter before the router: rules, shadow rules, stat prefixes; policies sorted by name', () => {
  const rbac = httpRbac({
    rules: {
      action: 'DENY',
      policies: {
        'zz-last': { permissions: [{ any: true }], principals: [{ any: true }] },
        'B-upper': { permissions: [{ destination_port: 8080 }], principals: [{ authenticated: {} }] },
        'a-first': {
          permissions: [{ url_path: { path: { prefix: '/admin' } } }],
          principals: [{ not_id: { remote_ip: { address_prefix: '10.1.2.3', prefix_len: 8 } } }],
        },
      },
    },
    shadow_rules: { policies: {} },
    rules_stat_prefix: 'deny.',
    shadow_rules_stat_prefix: 'dry_',
    track_per_rule_stats: true,
  });
  // Byte order, as Envoy's std::map: upper case before lower case.
  assert.deepEqual(
    rbac.rules?.policies.map((p) => p.name),
    ['B-upper', 'a-first', 'zz-last'],
  );
  assert.equal(rbac.rules?.action, 'DENY');
  assert.deepEqual(rbac.rules?.policies[1], {
    name: 'a-first',
    permissions: [{ kind: 'url_path', path: { kind: 'prefix', value: '/admin', ignoreCase: false } }],
    principals: [
      { kind: 'not', id: { kind: 'remote_ip', range: { addressPrefix: '10.0.0.0', prefixLen: 8 } } },
    ],
  });
  assert.deepEqual(rbac.rules?.policies[0]?.principals, [
    { kind: 'authenticated', principalName: undefined },
  ]);
  // shadow_rules: {} is ALLOW with no policy (it would deny everything, were it enforced).
  assert.deepEqual(rbac.shadowRules, { action: 'ALLOW', policies: [] });
  assert.equal(rbac.rulesStatPrefix, 'deny.');
  assert.equal(rbac.shadowRulesStatPrefix, 'dry_');
  assert.equal(rbac.trackPerRuleStats, true);
});

test('an HTTP RBAC filter without rules enforces nothing', () => {
  assert.deepEqual(httpRbac({}), {
    rules: undefined,
    shadowRules: undefined,
    rulesStatPrefix: '',
    shadowRulesStatPrefix: '',
    trackPerRuleStats: false,
  });
});

test('every permission kind translates', () => {
  const permissions = [
    { any: true },
    { header: { name: ':method', string_match: { exact: 'GET' } } },
    { url_path: { path: { safe_regex: { regex: '/api/.*' } } } },
    { destination_ip: { address_prefix: '192.168.1.77', prefix_len: 24 } },
    { destination_port: 443 },
    { destination_port_range: { start: 8000, end: 9000 } },
    { requested_server_name: { suffix: '.example.com' } },
    { and_rules: { rules: [{ any: true }, { not_rule: { destination_port: 80 } }] } },
    { or_rules: { rules: [{ destination_port: 1 }] } },
  ];
  const rbac = httpRbac({
    rules: { policies: { p: { permissions, principals: [{ any: true }] } } },
  });
  assert.deepEqual(rbac.rules?.policies[0]?.permissions, [
    { kind: 'any' },
    {
      kind: 'header',
      header: {
        name: ':method',
        spec: { kind: 'string', matcher: { kind: 'exact', value: 'GET', ignoreCase: false } },
        invertMatch: false,
        treatMissingHeaderAsEmpty: false,
      },
    },
    { kind: 'url_path', path: { kind: 'safe_regex', value: '/api/.*', ignoreCase: false } },
    { kind: 'destination_ip', range: { addressPrefix: '192.168.1.0', prefixLen: 24 } },
    { kind: 'destination_port', port: 443 },
    { kind: 'destination_port_range', start: 8000, end: 9000 },
    { kind: 'requested_server_name', matcher: { kind: 'suffix', value: '.example.com', ignoreCase: false } },
    { kind: 'and', rules: [{ kind: 'any' }, { kind: 'not', rule: { kind: 'destination_port', port: 80 } }] },
    { kind: 'or', rules: [{ kind: 'destination_port', port: 1 }] },
  ]);
});

test('every principal kind translates; source_ip is the direct remote address', () => {
  const principals = [
    { any: true },
    { authenticated: { principal_name: { exact: 'spiffe://cluster.local/ns/frontend/sa/web' } } },
    { source_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } },
    { direct_remote_ip: { address_prefix: '::1', prefix_len: 128 } },
    { remote_ip: { address_prefix: '::ffff:10.0.0.0', prefix_len: 104 } },
    { header: { name: 'x-user', present_match: true } },
    { url_path: { path: { exact: '/' } } },
    { and_ids: { ids: [{ any: true }] } },
    { or_ids: { ids: [{ not_id: { any: true } }] } },
  ];
  const rbac = httpRbac({ rules: { policies: { p: { permissions: [{ any: true }], principals } } } });
  assert.deepEqual(rbac.rules?.policies[0]?.principals, [
    { kind: 'any' },
    {
      kind: 'authenticated',
      principalName: { kind: 'exact', value: 'spiffe://cluster.local/ns/frontend/sa/web', ignoreCase: false },
    },
    { kind: 'direct_remote_ip', range: { addressPrefix: '10.0.0.1', prefixLen: 32 } },
    { kind: 'direct_remote_ip', range: { addressPrefix: '0:0:0:0:0:0:0:1', prefixLen: 128 } },
    // An IPv4-mapped range is an IPv4 one, as a dual-stack peer is reported as IPv4.
    { kind: 'remote_ip', range: { addressPrefix: '10.0.0.0', prefixLen: 8 } },
    {
      kind: 'header',
      header: {
        name: 'x-user',
        spec: { kind: 'present', present: true },
        invertMatch: false,
        treatMissingHeaderAsEmpty: false,
      },
    },
    { kind: 'url_path', path: { kind: 'exact', value: '/', ignoreCase: false } },
    { kind: 'and', ids: [{ kind: 'any' }] },
    { kind: 'or', ids: [{ kind: 'not', id: { kind: 'any' } }] },
  ]);
});

test('camelCase field names are accepted', () => {
  const rbac = httpRbac({
    rules: {
      policies: {
        p: {
          permissions: [
            { destinationPortRange: { start: 1, end: 2 } },
            { urlPath: { path: { exact: '/x' } } },
          ],
          principals: [{ directRemoteIp: { addressPrefix: '127.0.0.1', prefixLen: 8 } }],
        },
      },
    },
    shadowRulesStatPrefix: 's.',
    trackPerRuleStats: false,
  });
  assert.equal(rbac.rules?.policies[0]?.permissions.length, 2);
  assert.equal(rbac.shadowRulesStatPrefix, 's.');
});

test('RBAC errors, each with its path', () => {
  const bad = {
    permissions: [
      { any: false },
      { destination_port: 70000 },
      { header: { name: ':x' } },
      { metadata: {} },
      { and_rules: { rules: [] } },
      { any: true, destination_port: 1 },
      {},
      { destination_port_range: { start: 10, end: 10 } },
      { destination_port_range: { start: -1, end: 65537 } },
      { uri_template: {} },
    ],
    principals: [
      { authenticated: { principal_name: { prefix: '' } } },
      { filter_state: {} },
      { url_path: {} },
      { remote_ip: { address_prefix: 'nope' } },
      5,
    ],
  };
  assert.deepEqual(
    httpRbacErrors({
      rules: {
        action: 'LOG',
        audit_logging_options: { audit_condition: 'ON_DENY' },
        policies: {
          'no-perm': { permissions: [], principals: [{ any: true }] },
          cel: { permissions: [{ any: true }], principals: [{ any: true }], condition: {} },
          bad,
          x: 3,
        },
      },
      shadow_rules: { action: 'ALLOW', policies: [] },
      matcher: {},
      shadow_matcher: {},
      bogus: 1,
    }),
    [
      `${H}.rules.action: LOG is not supported by Remora: it only sets the access_log_hint dynamic metadata, which Remora has no access log filter to read (ALLOW and DENY are supported)`,
      `${H}.rules.policies["no-perm"].permissions: must not be empty`,
      `${H}.rules.policies["cel"].condition: CEL conditions are not supported by Remora`,
      `${H}.rules.policies["bad"].permissions[0].any: must be true (leave the rule out instead)`,
      `${H}.rules.policies["bad"].permissions[1].destination_port: must be between 0 and 65535, got 70000`,
      `${H}.rules.policies["bad"].permissions[2].header.name: invalid header name ":x"`,
      `${H}.rules.policies["bad"].permissions[3].metadata: dynamic metadata matching is not supported by Remora (it keeps no dynamic metadata)`,
      `${H}.rules.policies["bad"].permissions[4].and_rules.rules: must not be empty`,
      `${H}.rules.policies["bad"].permissions[5]: only one of and_rules, or_rules, any, header, url_path, destination_ip, destination_port, destination_port_range, metadata, not_rule, requested_server_name, matcher, uri_template may be set (got any, destination_port)`,
      `${H}.rules.policies["bad"].permissions[6]: one of and_rules, or_rules, any, header, url_path, destination_ip, destination_port, destination_port_range, metadata, not_rule, requested_server_name, matcher, uri_template is required`,
      `${H}.rules.policies["bad"].permissions[7].destination_port_range: empty range: start (10) must be less than end (10)`,
      `${H}.rules.policies["bad"].permissions[8].destination_port_range.start: must be between 0 and 65536, got -1`,
      `${H}.rules.policies["bad"].permissions[8].destination_port_range.end: must be between 0 and 65536, got 65537`,
      `${H}.rules.policies["bad"].permissions[9].uri_template: this permission extension is not supported by Remora`,
      `${H}.rules.policies["bad"].principals[0].authenticated.principal_name.prefix: must not be empty`,
      `${H}.rules.policies["bad"].principals[1].filter_state: filter state matching is not supported by Remora (it keeps no filter state)`,
      `${H}.rules.policies["bad"].principals[2].url_path.path: missing required field`,
      `${H}.rules.policies["bad"].principals[3].remote_ip.address_prefix: must be an IP address, got "nope"`,
      `${H}.rules.policies["bad"].principals[4]: expected an object, got number`,
      `${H}.rules.policies["x"]: expected an object, got number`,
      `${H}.rules.audit_logging_options: field not supported by Remora`,
      `${H}.shadow_rules.policies: expected an object (a map of policy name to Policy), got array`,
      `${H}.matcher: the matcher API (xds.type.matcher.v3.Matcher) is not supported by Remora: write the policies in rules`,
      `${H}.shadow_matcher: the matcher API (xds.type.matcher.v3.Matcher) is not supported by Remora: write the policies in rules`,
      `${H}.bogus: unknown field "bogus"`,
    ],
  );
});

test('nesting deeper than the limit is an error, not a stack overflow', () => {
  let rule: unknown = { any: true };
  for (let i = 0; i < MAX_RBAC_DEPTH; i++) rule = { not_rule: rule };
  const deep = errors([hcm([httpRbacFilter(onePolicy(rule)), ROUTER])]);
  assert.equal(deep.length, 1);
  assert.match(deep[0]!, /\.permissions\[0\](\.not_rule){64}: nested deeper than 64 levels$/);
  let id: unknown = { any: true };
  for (let i = 0; i < 10_000; i++) id = { not_id: id };
  const deeper = errors([hcm([httpRbacFilter(onePolicy({ any: true }, id)), ROUTER])]);
  assert.match(deeper[0]!, /nested deeper than 64 levels$/);
  // One level less is fine.
  rule = { any: true };
  for (let i = 0; i < MAX_RBAC_DEPTH - 1; i++) rule = { not_rule: rule };
  assert.ok(httpRbac(onePolicy(rule)).rules);
});

test('HTTP filters: RBAC filters before the router, the router last', () => {
  const c = chain([hcm([httpRbacFilter({}, 'first'), httpRbacFilter({}, 'second'), ROUTER])]);
  assert.equal(c.filter.kind, 'http_connection_manager');
  if (c.filter.kind !== 'http_connection_manager') return;
  assert.deepEqual(
    c.filter.hcm.httpFilters.map((f) => [f.name, f.typeUrl]),
    [
      ['first', TYPE_URLS.httpRbac],
      ['second', TYPE_URLS.httpRbac],
      ['envoy.filters.http.router', TYPE_URLS.router],
    ],
  );
  const F = 'l.filter_chains[0].filters[0].typed_config.http_filters';
  assert.deepEqual(errors([hcm([ROUTER, httpRbacFilter({})])]), [
    `${F}[0]: the router filter must be the last HTTP filter`,
    `${F}[1]: the last HTTP filter must be the router (${TYPE_URLS.router}): it is what sends requests on`,
  ]);
  assert.deepEqual(errors([hcm([{ name: 'envoy.filters.http.rbac' }, ROUTER])]), [
    `${F}[0].name: HTTP filter "envoy.filters.http.rbac" needs a typed_config (only the router may omit it)`,
  ]);
});

test('a network RBAC filter before tcp_proxy or the HCM; several in order', () => {
  const c = chain([
    networkRbacFilter({
      stat_prefix: 'tcp.',
      rules: {
        action: 'DENY',
        policies: { p: { permissions: [{ any: true }], principals: [{ any: true }] } },
      },
      shadow_rules_stat_prefix: 'dry.',
      enforcement_type: 'CONTINUOUS',
    }),
    networkRbacFilter({ stat_prefix: 'second.' }, 'second'),
    TCP,
  ]);
  assert.equal(c.filter.kind, 'tcp_proxy');
  const expected: NetworkRbacConfig[] = [
    {
      name: 'envoy.filters.network.rbac',
      statPrefix: 'tcp.',
      rules: {
        action: 'DENY',
        policies: [{ name: 'p', permissions: [{ kind: 'any' }], principals: [{ kind: 'any' }] }],
      },
      shadowRules: undefined,
      shadowRulesStatPrefix: 'dry.',
      enforcementType: 'CONTINUOUS',
    },
    {
      name: 'second',
      statPrefix: 'second.',
      rules: undefined,
      shadowRules: undefined,
      shadowRulesStatPrefix: '',
      enforcementType: 'ONE_TIME_ON_FIRST_BYTE',
    },
  ];
  assert.deepEqual(c.rbac, expected);
  assert.equal(
    chain([networkRbacFilter({ stat_prefix: 'in.' }), hcm([ROUTER])]).filter.kind,
    'http_connection_manager',
  );
  // A chain without RBAC filters has no rbac field at all.
  assert.equal('rbac' in chain([TCP]), false);
});

test('network RBAC errors and the chain positions that are refused', () => {
  const N = 'l.filter_chains[0].filters';
  assert.deepEqual(
    errors([
      networkRbacFilter({
        enforcement_type: 'SOMETIMES',
        delay_deny: '1s',
        matcher: {},
        rules: { action: 'DENY', policies: { p: { permissions: [{ any: true }] } } },
      }),
      TCP,
    ]),
    [
      `${N}[0].typed_config.stat_prefix: missing required field`,
      `${N}[0].typed_config.rules.policies["p"].principals: missing required field`,
      `${N}[0].typed_config.enforcement_type: unsupported value "SOMETIMES" (expected one of ONE_TIME_ON_FIRST_BYTE, CONTINUOUS)`,
      `${N}[0].typed_config.matcher: the matcher API (xds.type.matcher.v3.Matcher) is not supported by Remora: write the policies in rules`,
      `${N}[0].typed_config.delay_deny: field not supported by Remora`,
    ],
  );
  const rbac = networkRbacFilter({ stat_prefix: 'tcp.' });
  assert.deepEqual(errors([rbac]), [
    `${N}[0]: a filter chain must end in http_connection_manager or tcp_proxy (envoy.filters.network.rbac only decides whether a connection may go on to one)`,
  ]);
  assert.deepEqual(errors([TCP, rbac]), [
    `${N}[0]: tcp_proxy must be the last network filter of its chain (only envoy.filters.network.rbac and istio.stats filters may come before it)`,
    `${N}[1]: a filter chain must end in http_connection_manager or tcp_proxy (envoy.filters.network.rbac only decides whether a connection may go on to one)`,
  ]);
  assert.deepEqual(errors([hcm([ROUTER]), TCP]), [
    `${N}[0]: http_connection_manager must be the last network filter of its chain (only envoy.filters.network.rbac and istio.stats filters may come before it)`,
  ]);
  // The HTTP filter's config is no network filter.
  assert.deepEqual(errors([httpRbacFilter({}), TCP]), [
    `${N}[0].typed_config.@type: unknown network filter type "${TYPE_URLS.httpRbac}"`,
  ]);
});

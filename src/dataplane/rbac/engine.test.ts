// Tests of the RBAC engine as pure functions: policy order and actions, every permission and principal, what a
// connection without a request matches, the details and labels Envoy prints, subjects in RFC 2253, stat names.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../../config/cidr.js';
import type {
  RbacPermissionConfig,
  RbacPrincipalConfig,
  RbacRulesConfig,
  StringMatcherConfig,
} from '../../config/model.js';
import { StatsStore, scopes } from '../observe/stats.js';
import type { PeerCertificate } from '../observe/stream_info.js';
import { rfc2253 } from './connection_facts.js';
import {
  compilePermission,
  compilePrincipal,
  deniedDetails,
  pathWithoutQuery,
  policyLabel,
  type RbacConnection,
  RbacEngine,
  type RbacInput,
} from './engine.js';
import { lastForwardedFor } from './http_filter.js';
import { RbacStats, statPrefixJoin } from './stats.js';

const exact = (value: string): StringMatcherConfig => ({ kind: 'exact', value, ignoreCase: false });
const prefix = (value: string): StringMatcherConfig => ({ kind: 'prefix', value, ignoreCase: false });

const WEB = 'spiffe://cluster.local/ns/frontend/sa/web';

function connection(over: Partial<RbacConnection> = {}): RbacConnection {
  return {
    directRemoteIp: parseIp('10.0.0.5'),
    localIp: parseIp('192.168.1.10'),
    localPort: 8080,
    requestedServerName: '',
    secure: false,
    peer: undefined,
    ...over,
  };
}

/** A request: `headers` by lower-case name (pseudo-headers included), `url` as received. */
function request(
  url: string,
  headers: Record<string, string> = {},
  conn: RbacConnection = connection(),
  remote?: string,
): RbacInput {
  const all: Record<string, string> = { ':method': 'GET', ':path': url, ...headers };
  return {
    connection: conn,
    header: (n) => all[n],
    urlPath: () => pathWithoutQuery(url),
    remoteIp: () => (remote === undefined ? conn.directRemoteIp : parseIp(remote)),
  };
}

/** A connection without a request, as the network filter asks. */
function bare(conn: RbacConnection = connection()): RbacInput {
  return {
    connection: conn,
    header: () => undefined,
    urlPath: () => undefined,
    remoteIp: () => conn.directRemoteIp,
  };
}

const perm = (p: RbacPermissionConfig) => compilePermission(p);
const who = (p: RbacPrincipalConfig) => compilePrincipal(p);

test('ALLOW: only a request some policy matches passes; DENY: a matching one is denied', () => {
  const policies: RbacRulesConfig['policies'] = [
    {
      name: 'get-api',
      permissions: [
        {
          kind: 'and',
          rules: [
            {
              kind: 'header',
              header: {
                name: ':method',
                spec: { kind: 'string', matcher: exact('GET') },
                invertMatch: false,
                treatMissingHeaderAsEmpty: false,
              },
            },
            { kind: 'url_path', path: prefix('/api/') },
          ],
        },
      ],
      principals: [{ kind: 'authenticated', principalName: exact(WEB) }],
    },
  ];
  const allow = new RbacEngine({ action: 'ALLOW', policies });
  const web = connection({ secure: true, peer: { uriSans: [WEB], dnsSans: [], subject: '' } });
  const ok = allow.match(request('/api/x?y=1', {}, web));
  assert.equal(ok, 'get-api');
  assert.equal(allow.allows(ok), true);
  // Another path, another method, another principal, or no TLS: no policy matches, so ALLOW denies.
  for (const input of [
    request('/admin', {}, web),
    request('/api/x', { ':method': 'POST' }, web),
    request(
      '/api/x',
      {},
      connection({ secure: true, peer: { uriSans: ['spiffe://x'], dnsSans: [], subject: '' } }),
    ),
    request('/api/x'),
  ]) {
    const m = allow.match(input);
    assert.equal(m, undefined);
    assert.equal(allow.allows(m), false);
  }
  const deny = new RbacEngine({
    action: 'DENY',
    policies: [
      {
        name: 'admin',
        permissions: [{ kind: 'url_path', path: prefix('/admin') }],
        principals: [{ kind: 'any' }],
      },
    ],
  });
  assert.equal(deny.allows(deny.match(request('/admin/users'))), false);
  assert.equal(deny.match(request('/admin/users')), 'admin');
  assert.equal(deny.allows(deny.match(request('/api'))), true);
  // No policy at all: ALLOW denies everything, DENY allows everything.
  assert.equal(new RbacEngine({ action: 'ALLOW', policies: [] }).allows(undefined), false);
  assert.equal(new RbacEngine({ action: 'DENY', policies: [] }).allows(undefined), true);
});

test('the first policy in the given (name) order is the one reported', () => {
  const any = { permissions: [{ kind: 'any' as const }], principals: [{ kind: 'any' as const }] };
  const e = new RbacEngine({
    action: 'DENY',
    policies: [
      { name: 'a', ...any },
      { name: 'b', ...any },
    ],
  });
  assert.equal(e.match(request('/')), 'a');
});

test('a policy needs a permission and a principal to match', () => {
  const e = new RbacEngine({
    action: 'ALLOW',
    policies: [
      {
        name: 'p',
        permissions: [
          { kind: 'destination_port', port: 1 },
          { kind: 'destination_port', port: 8080 },
        ],
        principals: [{ kind: 'direct_remote_ip', range: { addressPrefix: '10.0.0.0', prefixLen: 8 } }],
      },
    ],
  });
  assert.equal(e.match(request('/')), 'p');
  assert.equal(e.match(request('/', {}, connection({ directRemoteIp: parseIp('11.0.0.1') }))), undefined);
  assert.equal(e.match(request('/', {}, connection({ localPort: 9090 }))), undefined);
});

test('permissions: destination, SNI, path, header, and/or/not', () => {
  const c = connection({ requestedServerName: 'api.example.com' });
  assert.equal(
    perm({ kind: 'destination_ip', range: { addressPrefix: '192.168.1.0', prefixLen: 24 } })(
      request('/', {}, c),
    ),
    true,
  );
  assert.equal(
    perm({ kind: 'destination_ip', range: { addressPrefix: '192.168.2.0', prefixLen: 24 } })(
      request('/', {}, c),
    ),
    false,
  );
  // An IPv6 range never matches an IPv4 address.
  assert.equal(
    perm({ kind: 'destination_ip', range: { addressPrefix: '::', prefixLen: 0 } })(request('/', {}, c)),
    false,
  );
  assert.equal(perm({ kind: 'destination_port_range', start: 8000, end: 8081 })(request('/', {}, c)), true);
  assert.equal(perm({ kind: 'destination_port_range', start: 8000, end: 8080 })(request('/', {}, c)), false);
  assert.equal(
    perm({
      kind: 'requested_server_name',
      matcher: { kind: 'suffix', value: '.example.com', ignoreCase: false },
    })(request('/', {}, c)),
    true,
  );
  assert.equal(perm({ kind: 'requested_server_name', matcher: exact('') })(request('/')), true);
  // url_path is the path without query and fragment; the :path header keeps them.
  const path = perm({ kind: 'url_path', path: exact('/a/b') });
  assert.equal(path(request('/a/b?c=d')), true);
  assert.equal(path(request('/a/b#frag')), true);
  assert.equal(path(request('/a/b/')), false);
  const header = (name: string, m: StringMatcherConfig, invertMatch = false) =>
    perm({
      kind: 'header',
      header: { name, spec: { kind: 'string', matcher: m }, invertMatch, treatMissingHeaderAsEmpty: false },
    });
  assert.equal(header(':path', exact('/a/b?c=d'))(request('/a/b?c=d')), true);
  assert.equal(header(':path', exact('/a/b'))(request('/a/b?c=d')), false);
  assert.equal(header('x-tenant', exact('blue'))(request('/', { 'x-tenant': 'blue' })), true);
  assert.equal(header('x-tenant', exact('blue'), true)(request('/', { 'x-tenant': 'red' })), true);
  const any: RbacPermissionConfig = { kind: 'any' };
  const none: RbacPermissionConfig = { kind: 'not', rule: any };
  assert.equal(perm({ kind: 'and', rules: [any, none] })(request('/')), false);
  assert.equal(perm({ kind: 'or', rules: [none, any] })(request('/')), true);
  assert.equal(perm(none)(request('/')), false);
});

test('without a request (network filter) header rules see missing headers and path rules never match', () => {
  const missing = (spec: RbacPermissionConfig & { kind: 'header' }) => perm(spec)(bare());
  const header = (
    spec: { kind: 'present'; present: boolean } | { kind: 'string'; matcher: StringMatcherConfig },
    invertMatch = false,
  ) =>
    ({
      kind: 'header',
      header: { name: ':method', spec, invertMatch, treatMissingHeaderAsEmpty: false },
    }) as const;
  assert.equal(missing(header({ kind: 'string', matcher: exact('GET') })), false);
  // Envoy: a missing header fails every matcher, inverted or not, but present_match.
  assert.equal(missing(header({ kind: 'string', matcher: exact('GET') }, true)), false);
  assert.equal(missing(header({ kind: 'present', present: false })), true);
  assert.equal(missing(header({ kind: 'present', present: true }, true)), true);
  const path: RbacPermissionConfig = { kind: 'url_path', path: prefix('/') };
  assert.equal(perm(path)(bare()), false);
  assert.equal(perm({ kind: 'not', rule: path })(bare()), true);
  assert.equal(who({ kind: 'url_path', path: prefix('/') })(bare()), false);
});

test('authenticated: TLS required; URI SANs, then DNS SANs, then the subject', () => {
  const peer: PeerCertificate = {
    uriSans: ['spiffe://a/1', WEB],
    dnsSans: ['web.example.com'],
    subject: 'CN=web,O=example',
  };
  const tls = connection({ secure: true, peer });
  const byName = (m: StringMatcherConfig) => who({ kind: 'authenticated', principalName: m });
  assert.equal(byName(exact(WEB))(request('/', {}, tls)), true);
  assert.equal(byName(exact('web.example.com'))(request('/', {}, tls)), true);
  assert.equal(byName(exact('CN=web,O=example'))(request('/', {}, tls)), true);
  assert.equal(byName(exact('spiffe://other'))(request('/', {}, tls)), false);
  // The same certificate on a plaintext connection cannot be: without TLS nothing is authenticated.
  assert.equal(byName(exact(WEB))(request('/', {}, connection({ peer }))), false);
  // authenticated {} is any TLS connection, with or without a client certificate.
  const anyTls = who({ kind: 'authenticated', principalName: undefined });
  assert.equal(anyTls(request('/', {}, connection({ secure: true }))), true);
  assert.equal(anyTls(request('/')), false);
  // TLS without a client certificate: the name matched is "" (Envoy's empty subject).
  assert.equal(
    byName({ kind: 'safe_regex', value: '.*', ignoreCase: false })(
      request('/', {}, connection({ secure: true })),
    ),
    true,
  );
  assert.equal(byName(prefix('spiffe://'))(request('/', {}, connection({ secure: true }))), false);
});

test('remote_ip is the downstream address (x-forwarded-for without use_remote_address); direct_remote_ip the peer', () => {
  const range = { addressPrefix: '203.0.113.0', prefixLen: 24 };
  const input = request('/', {}, connection(), '203.0.113.7');
  assert.equal(who({ kind: 'remote_ip', range })(input), true);
  assert.equal(who({ kind: 'direct_remote_ip', range })(input), false);
  assert.equal(
    who({ kind: 'direct_remote_ip', range: { addressPrefix: '10.0.0.0', prefixLen: 8 } })(input),
    true,
  );
  assert.deepEqual(lastForwardedFor('198.51.100.1, 203.0.113.7'), parseIp('203.0.113.7'));
  assert.deepEqual(lastForwardedFor('::ffff:203.0.113.7'), parseIp('203.0.113.7'));
  assert.equal(lastForwardedFor('203.0.113.7:80'), undefined);
  assert.equal(lastForwardedFor('1.2.3.4,'), undefined);
  assert.equal(lastForwardedFor(undefined), undefined);
});

test('labels and response code details as Envoy prints them', () => {
  assert.equal(policyLabel(undefined), 'none');
  assert.equal(policyLabel(''), 'none');
  assert.equal(policyLabel('ns[foo]-policy[bar]-rule[0]'), 'ns[foo]-policy[bar]-rule[0]');
  assert.equal(deniedDetails(undefined), 'rbac_access_denied_matched_policy[none]');
  assert.equal(deniedDetails('deny admin\tnow'), 'rbac_access_denied_matched_policy[deny_admin_now]');
  assert.equal(pathWithoutQuery('/a?b#c'), '/a');
  assert.equal(pathWithoutQuery('/a#c?d'), '/a');
  assert.equal(pathWithoutQuery('*'), '*');
});

test('subjects in RFC 2253 form: last RDN first, "+" for multi-valued RDNs, non-ASCII as \\XX', () => {
  assert.equal(rfc2253('C=US\nO=Example\\, Inc.\nCN=web'), 'CN=web,O=Example\\, Inc.,C=US');
  assert.equal(rfc2253('O=Org\nCN=a + UID=b'), 'CN=a+UID=b,O=Org');
  assert.equal(rfc2253('CN=é'), 'CN=\\C3\\A9');
  assert.equal(rfc2253(''), '');
});

test('stat names: http.<prefix>.rbac.[rules prefix]allowed, shadow under the shadow prefix, per policy on demand', () => {
  assert.equal(statPrefixJoin('', 'a'), 'a');
  assert.equal(statPrefixJoin('x.', 'a'), 'x.a');
  assert.equal(statPrefixJoin('x', 'a'), 'x.a');
  const store = new StatsStore();
  const tag = scopes.http('inbound');
  const s = new RbacStats(store, tag, tag.prefix, 'deny', 'dry_', true);
  assert.equal(s.allowed.name, 'http.inbound.rbac.deny.allowed');
  assert.equal(s.allowed.statName, 'rbac.deny.allowed');
  assert.equal(s.shadowDenied.name, 'http.inbound.rbac.deny.dry_.shadow_denied');
  s.count(false, false, 'admin');
  s.count(true, true, undefined);
  s.count(true, false, 'p');
  const names = [...store.allCounters()]
    .filter((c) => c.value > 0)
    .map((c) => c.name)
    .sort();
  assert.deepEqual(names, [
    'http.inbound.rbac.deny.denied',
    'http.inbound.rbac.deny.dry_.policy.p.shadow_denied',
    'http.inbound.rbac.deny.dry_.shadow_allowed',
    'http.inbound.rbac.deny.dry_.shadow_denied',
    'http.inbound.rbac.deny.policy.admin.denied',
  ]);
  // The network filter's prefix is used as written.
  const n = new RbacStats(store, undefined, 'tcp.', '', '', false);
  assert.equal(n.denied.name, 'tcp.rbac.denied');
  assert.equal(new RbacStats(store, undefined, 'tcp', '', '', false).allowed.name, 'tcprbac.allowed');
});

// Tests of SAN parsing and Envoy's SAN matching (DNS wildcards, URI, IP, email; any matcher is enough).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { SanMatcherConfig, StringMatcherConfig } from '../../config/model.js';
import { compileSanMatchers, dnsNameMatch, parseSubjectAltNames, sanMismatch } from './san_match.js';

function m(
  sanType: SanMatcherConfig['sanType'],
  kind: StringMatcherConfig['kind'],
  value: string,
): SanMatcherConfig {
  return { sanType, matcher: { kind, value, ignoreCase: false } };
}

test("Node's subjectaltname text becomes typed names", () => {
  assert.deepEqual(
    parseSubjectAltNames(
      'DNS:localhost, DNS:*.example.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, ' +
        'URI:spiffe://cluster.local/ns/default/sa/web, email:web@example.test, DirName:CN=x',
    ),
    [
      { type: 'DNS', value: 'localhost' },
      { type: 'DNS', value: '*.example.test' },
      { type: 'IP_ADDRESS', value: '127.0.0.1' },
      { type: 'IP_ADDRESS', value: '::1' },
      { type: 'URI', value: 'spiffe://cluster.local/ns/default/sa/web' },
      { type: 'EMAIL', value: 'web@example.test' },
    ],
  );
  // Node quotes values with special characters as JSON strings; a comma inside one is not a separator.
  assert.deepEqual(parseSubjectAltNames('DNS:"a, b.example", URI:"spiffe://x/\\"q\\""'), [
    { type: 'DNS', value: 'a, b.example' },
    { type: 'URI', value: 'spiffe://x/"q"' },
  ]);
  assert.deepEqual(parseSubjectAltNames('IP Address:2001:DB8:0:0:0:0:0:1'), [
    { type: 'IP_ADDRESS', value: '2001:db8::1' },
  ]);
  assert.deepEqual(parseSubjectAltNames(undefined), []);
  assert.deepEqual(parseSubjectAltNames(''), []);
  // Malformed quoting: nothing, so nothing can match.
  assert.deepEqual(parseSubjectAltNames('DNS:ok, DNS:"unterminated'), []);
});

test("DNS names match as Envoy's dnsNameMatch: exact ignoring case, or a wildcard in the first label", () => {
  assert.ok(dnsNameMatch('api.example.com', 'api.example.com'));
  assert.ok(dnsNameMatch('API.Example.com', 'api.EXAMPLE.com'));
  assert.ok(dnsNameMatch('api.example.com', '*.example.com'));
  assert.ok(dnsNameMatch('api.example.com', 'ap*.example.com'));
  assert.ok(dnsNameMatch('api.example.com', '*i.example.com'));
  assert.ok(dnsNameMatch('api.example.com', 'a*i.example.com'));
  assert.ok(!dnsNameMatch('a.b.example.com', '*.example.com'), 'one label only');
  assert.ok(!dnsNameMatch('example.com', '*.example.com'));
  assert.ok(!dnsNameMatch('api.example.com', '*.*.com'));
  assert.ok(!dnsNameMatch('api.example.com', 'a**.example.com'));
  assert.ok(!dnsNameMatch('xn--x.example.com', 'xn--*.example.com'), 'no wildcard in an A-label');
  assert.ok(!dnsNameMatch('api.example.com', 'b*.example.com'));
  assert.ok(!dnsNameMatch('localhost', '*'));
  assert.ok(!dnsNameMatch('api.other.com', '*.example.com'));
});

test('matchers: any one matching any SAN of its type is enough', () => {
  const sans = parseSubjectAltNames(
    'DNS:*.example.test, IP Address:10.0.0.1, URI:spiffe://cluster.local/ns/default/sa/web, email:a@b.test',
  );
  const match = (list: SanMatcherConfig[]) => compileSanMatchers(list)(sans);
  assert.ok(match([m('DNS', 'exact', 'api.example.test')]), 'exact DNS against a wildcard SAN');
  assert.ok(!match([m('DNS', 'exact', 'a.b.example.test')]));
  assert.ok(match([m('DNS', 'suffix', '.example.test')]), 'other kinds compare the SAN text');
  assert.ok(!match([m('DNS', 'prefix', 'api')]), 'a wildcard SAN is text to a prefix matcher');
  assert.ok(match([m('URI', 'exact', 'spiffe://cluster.local/ns/default/sa/web')]));
  assert.ok(match([m('URI', 'safe_regex', 'spiffe://cluster\\.local/ns/[^/]+/sa/web')]));
  assert.ok(match([m('IP_ADDRESS', 'exact', '10.0.0.1')]));
  assert.ok(match([m('EMAIL', 'exact', 'a@b.test')]));
  assert.ok(!match([m('DNS', 'exact', '10.0.0.1')]), 'the type must match too');
  assert.ok(match([m('URI', 'exact', 'spiffe://nope'), m('IP_ADDRESS', 'exact', '10.0.0.1')]));
  assert.ok(!match([m('URI', 'exact', 'spiffe://nope'), m('EMAIL', 'prefix', 'x@')]));
  const ignoreCase: SanMatcherConfig = {
    sanType: 'URI',
    matcher: { kind: 'exact', value: 'SPIFFE://CLUSTER.LOCAL/NS/DEFAULT/SA/WEB', ignoreCase: true },
  };
  assert.ok(match([ignoreCase]));
  assert.ok(!compileSanMatchers([m('DNS', 'exact', 'x')])([]), 'no SANs, no match');
});

test('a mismatch says what was expected and what the certificate has', () => {
  const list = [m('URI', 'prefix', 'spiffe://other/'), m('DNS', 'exact', 'db.internal')];
  const text = 'DNS:localhost, URI:spiffe://cluster.local/ns/default/sa/web';
  assert.equal(
    sanMismatch(list, compileSanMatchers(list), text),
    'SAN mismatch: expected one of [URI prefix "spiffe://other/", DNS exact "db.internal"], got [DNS:localhost, URI:spiffe://cluster.local/ns/default/sa/web]',
  );
  const ok = [m('DNS', 'exact', 'localhost')];
  assert.equal(sanMismatch(ok, compileSanMatchers(ok), text), undefined);
});

// Tests of route matching config: path specifiers, header and query parameter matchers.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RouteMatchConfig } from './model.js';
import { formatErrors } from './result.js';
import { translateRouteConfiguration } from './route.js';

const ROUTE = 'rc.virtual_hosts[0].routes[0].match';

function routeConfig(match: unknown): unknown {
  return {
    name: 'rc',
    virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match, route: { cluster: 'c' } }] }],
  };
}

function matchOf(match: unknown): RouteMatchConfig {
  const r = translateRouteConfiguration(routeConfig(match), 'rc');
  if (!r.ok) assert.fail(formatErrors(r.errors));
  const action = r.value.virtualHosts[0]!.routes[0]!;
  return action.match;
}

function errorsOf(match: unknown): string[] {
  const r = translateRouteConfiguration(routeConfig(match), 'rc');
  assert.equal(r.ok, false);
  return r.ok ? [] : formatErrors(r.errors).split('\n');
}

test('path specifiers', () => {
  assert.deepEqual(matchOf({ prefix: '/api' }).path, { kind: 'prefix', value: '/api' });
  assert.deepEqual(matchOf({ path: '/exact' }).path, { kind: 'path', value: '/exact' });
  assert.deepEqual(matchOf({ safe_regex: { google_re2: {}, regex: '/v[0-9]+/.*' } }).path, {
    kind: 'safe_regex',
    regex: '/v[0-9]+/.*',
  });
  assert.deepEqual(matchOf({ safe_regex: { regex: 'x' } }).path, { kind: 'safe_regex', regex: 'x' });
  assert.deepEqual(matchOf({ path_separated_prefix: '/api' }).path, {
    kind: 'path_separated_prefix',
    value: '/api',
  });
  const m = matchOf({ prefix: '/' });
  assert.equal(m.caseSensitive, true);
  assert.deepEqual(m.headers, []);
  assert.deepEqual(m.queryParameters, []);
  assert.equal(matchOf({ prefix: '/', case_sensitive: false }).caseSensitive, false);
});

test('path specifier errors', () => {
  assert.deepEqual(errorsOf({}), [
    `${ROUTE}: one of prefix, path, safe_regex, path_separated_prefix, connect_matcher, path_match_policy is required`,
  ]);
  assert.deepEqual(errorsOf({ prefix: '/', path: '/a' }), [
    `${ROUTE}: only one of prefix, path, safe_regex, path_separated_prefix, connect_matcher, path_match_policy may be set (got prefix, path)`,
  ]);
  assert.deepEqual(errorsOf({ safe_regex: { regex: '(' } }), [
    `${ROUTE}.safe_regex.regex: invalid regex "(": Invalid regular expression: /(/: Unterminated group`,
  ]);
  assert.deepEqual(errorsOf({ safe_regex: { google_re2: { max_program_size: 100 }, regex: 'a' } }), [
    `${ROUTE}.safe_regex.google_re2.max_program_size: field not supported by Remora`,
  ]);
  assert.deepEqual(errorsOf({ path_separated_prefix: '/api/' }), [
    `${ROUTE}.path_separated_prefix: invalid value "/api/": must start with "/", not end with "/" and contain no "?" or "#"`,
  ]);
  assert.deepEqual(errorsOf({ prefix: '/', runtime_fraction: {} }), [
    `${ROUTE}.runtime_fraction: field not supported by Remora`,
  ]);
});

test('header matchers of every kind', () => {
  const m = matchOf({
    prefix: '/',
    headers: [
      { name: 'X-Exact', exact_match: 'a' },
      { name: 'x-prefix', prefix_match: 'p' },
      { name: 'x-suffix', suffix_match: 's' },
      { name: 'x-contains', contains_match: 'c' },
      { name: 'x-re', safe_regex_match: { regex: '^a+$' } },
      { name: 'x-present', present_match: false },
      { name: 'x-range', range_match: { start: '-5', end: 10 } },
      { name: 'x-string', string_match: { exact: 'E', ignore_case: true }, invert_match: true },
      { name: 'x-sm-prefix', string_match: { prefix: 'p' } },
      { name: 'x-sm-suffix', string_match: { suffix: 's' } },
      { name: 'x-sm-contains', string_match: { contains: 'c' }, treat_missing_header_as_empty: true },
      { name: 'x-sm-regex', string_match: { safe_regex: { regex: 'r.*' } } },
      { name: ':authority' },
    ],
  });
  const str = (kind: string, value: string, ignoreCase = false) => ({
    kind: 'string',
    matcher: { kind, value, ignoreCase },
  });
  const plain = { invertMatch: false, treatMissingHeaderAsEmpty: false };
  assert.deepEqual(m.headers, [
    { name: 'x-exact', spec: str('exact', 'a'), ...plain },
    { name: 'x-prefix', spec: str('prefix', 'p'), ...plain },
    { name: 'x-suffix', spec: str('suffix', 's'), ...plain },
    { name: 'x-contains', spec: str('contains', 'c'), ...plain },
    { name: 'x-re', spec: str('safe_regex', '^a+$'), ...plain },
    { name: 'x-present', spec: { kind: 'present', present: false }, ...plain },
    { name: 'x-range', spec: { kind: 'range', start: -5, end: 10 }, ...plain },
    { name: 'x-string', spec: str('exact', 'E', true), invertMatch: true, treatMissingHeaderAsEmpty: false },
    { name: 'x-sm-prefix', spec: str('prefix', 'p'), ...plain },
    { name: 'x-sm-suffix', spec: str('suffix', 's'), ...plain },
    {
      name: 'x-sm-contains',
      spec: str('contains', 'c'),
      invertMatch: false,
      treatMissingHeaderAsEmpty: true,
    },
    { name: 'x-sm-regex', spec: str('safe_regex', 'r.*'), ...plain },
    { name: ':authority', spec: { kind: 'present', present: true }, ...plain },
  ]);
});

test('header matcher errors', () => {
  const h = `${ROUTE}.headers`;
  assert.deepEqual(
    errorsOf({
      prefix: '/',
      headers: [
        { exact_match: 'a' },
        { name: 'x', exact_match: 'a', prefix_match: 'b' },
        { name: 'x', range_match: { start: 5, end: 5 } },
        { name: ':status' },
        { name: 'x', string_match: {} },
        { name: 'x', string_match: { prefix: '' } },
        { name: 'x', safe_regex_match: { regex: '[' } },
        { name: 'x', string_match: { exact: 'a' }, ignore_case: true },
      ],
    }),
    [
      `${h}[0].name: missing required field`,
      `${h}[1]: only one of exact_match, safe_regex_match, range_match, present_match, prefix_match, suffix_match, contains_match, string_match may be set (got exact_match, prefix_match)`,
      `${h}[2].range_match: empty range: start (5) must be less than end (5)`,
      `${h}[3].name: invalid header name ":status"`,
      `${h}[4].string_match: one of exact, prefix, suffix, contains, safe_regex, custom is required`,
      `${h}[5].string_match.prefix: must not be empty`,
      `${h}[6].safe_regex_match.regex: invalid regex "[": Invalid regular expression: /[/: Unterminated character class`,
      `${h}[7].ignore_case: unknown field "ignore_case"`,
    ],
  );
});

test('query parameter matchers', () => {
  const m = matchOf({
    prefix: '/',
    query_parameters: [
      { name: 'debug' },
      { name: 'v', string_match: { exact: '2' } },
      { name: 'p', present_match: true },
    ],
  });
  assert.deepEqual(m.queryParameters, [
    { name: 'debug', spec: { kind: 'present', present: true } },
    { name: 'v', spec: { kind: 'string', matcher: { kind: 'exact', value: '2', ignoreCase: false } } },
    { name: 'p', spec: { kind: 'present', present: true } },
  ]);
  assert.deepEqual(errorsOf({ prefix: '/', query_parameters: [{ name: '', present_match: 1 }] }), [
    `${ROUTE}.query_parameters[0].name: must not be empty`,
    `${ROUTE}.query_parameters[0].present_match: expected a boolean, got number`,
  ]);
});

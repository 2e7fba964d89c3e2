// Unit tests: header value options — %VARIABLE% names are checked when the config is read.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateRouteConfiguration } from './bootstrap.js';

function routeConfigWithValue(value: string): unknown {
  return {
    name: 'r',
    virtual_hosts: [
      {
        name: 'a',
        domains: ['*'],
        request_headers_to_add: [{ header: { key: 'x-a', value } }],
        routes: [{ match: { prefix: '/' }, direct_response: { status: 200 } }],
      },
    ],
  };
}

test('a known %VARIABLE% and a literal %% are accepted', () => {
  const r = translateRouteConfiguration(routeConfigWithValue('%DOWNSTREAM_REMOTE_ADDRESS% is 100%%'), 'rc');
  assert.equal(r.ok, true);
});

test('a misspelled %VARIABLE% is an error naming the field and the supported names', () => {
  const r = translateRouteConfiguration(routeConfigWithValue('%DOWNSTREAM_REMOTE_ADRESS%'), 'rc');
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.errors.length, 1);
  assert.equal(r.errors[0]!.path, 'rc.virtual_hosts[0].request_headers_to_add[0].header.value');
  assert.match(
    r.errors[0]!.message,
    /unknown variable %DOWNSTREAM_REMOTE_ADRESS% \(supported: %DOWNSTREAM_REMOTE_ADDRESS%/,
  );
});

// Join tokens and SPIFFE IDs as strings: a token round-trips with its identity and pin, and anything of another
// shape (a JWT, a truncated or edited token, a bad identity) is not read as one.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { identityFromKubernetesToken } from './client.js';
import { formatJoinToken, looksLikeJoinToken, parseJoinToken } from './join_token.js';
import { normalizePin } from './pem.js';
import { parseSpiffeId, spiffeId } from './spiffe.js';

const token = {
  id: '0123456789abcdef',
  secret: 'x'.repeat(43),
  caPin: `sha256:${'ab'.repeat(32)}`,
  identity: { trustDomain: 'corp.example', namespace: 'shop', serviceAccount: 'web.v2' },
};

test('a join token round-trips, dots in the trust domain and service account included', () => {
  const text = formatJoinToken(token);
  assert.match(text, /^rjt1\.0123456789abcdef\.x{43}\.(ab){32}\.[A-Za-z0-9_-]+$/);
  assert.ok(looksLikeJoinToken(text));
  assert.deepEqual(parseJoinToken(text), token);
});

test('other shapes are not join tokens', () => {
  const text = formatJoinToken(token);
  const parts = text.split('.');
  for (const bad of [
    'eyJhbGciOiJSUzI1NiJ9.e30.c2ln',
    parts.slice(0, 4).join('.'),
    `${text}.extra`,
    [parts[0], 'XYZ', ...parts.slice(2)].join('.'),
    [...parts.slice(0, 3), 'ab', parts[4]].join('.'),
    [...parts.slice(0, 4), Buffer.from('spiffe://corp.example/ns/Shop/sa/web').toString('base64url')].join(
      '.',
    ),
    [...parts.slice(0, 4), Buffer.from('https://example.com/').toString('base64url')].join('.'),
  ])
    assert.equal(parseJoinToken(bad), undefined, bad);
});

test('SPIFFE IDs of the mesh shape are read; others are not', () => {
  const id = spiffeId('cluster.local', { namespace: 'shop', serviceAccount: 'web' });
  assert.equal(id, 'spiffe://cluster.local/ns/shop/sa/web');
  assert.deepEqual(parseSpiffeId(id), {
    trustDomain: 'cluster.local',
    namespace: 'shop',
    serviceAccount: 'web',
  });
  for (const bad of [
    'spiffe://cluster.local',
    'spiffe://cluster.local/ns/shop/sa/web/x',
    'spiffe://Cluster/ns/a/sa/b',
    'spiffe://td/ns/-a/sa/b',
  ])
    assert.equal(parseSpiffeId(bad), undefined, bad);
});

test("a Kubernetes token's service account is read from its claims; pins are normalised", () => {
  const claims = Buffer.from(JSON.stringify({ sub: 'system:serviceaccount:shop:web' })).toString('base64url');
  assert.deepEqual(identityFromKubernetesToken(`e30.${claims}.sig`), {
    namespace: 'shop',
    serviceAccount: 'web',
  });
  const user = Buffer.from(JSON.stringify({ sub: 'alice' })).toString('base64url');
  assert.equal(identityFromKubernetesToken(`e30.${user}.sig`), undefined);
  assert.equal(identityFromKubernetesToken('opaque'), undefined);
  assert.equal(normalizePin('AB'.repeat(32)), `sha256:${'ab'.repeat(32)}`);
  assert.equal(normalizePin(`sha256:${'ab'.repeat(32)}`), `sha256:${'ab'.repeat(32)}`);
  assert.equal(normalizePin('sha256:abc'), undefined);
});

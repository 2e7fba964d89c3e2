// KeyedManifests: the last good objects of a key survive a bad value; duplicates across keys are reported.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KeyedManifests } from './keyed_manifests.js';

const svc = (name: string, port: number) =>
  `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "${name}"}, "spec": {"ports": [{"port": ${port}}]}}`;

function ports(k: KeyedManifests): string[] {
  return k
    .current()
    .objects.map((o) => (o.kind === 'Service' ? `${o.meta.name}:${o.ports[0]!.port}` : o.kind));
}

test('a bad value keeps the objects of the last good one it does not validly define', () => {
  const k = new KeyedManifests('etcd');
  assert.equal(k.setText('/a', `${svc('one', 80)}\n---\n${svc('two', 81)}`), true);
  assert.equal(
    k.setText('/a', `${svc('one', 80)}\n---\n${svc('two', 81)}`),
    false,
    'the same value is no change',
  );
  k.setText('/a', `${svc('one', 90)}\n---\n${svc('two', 0)}`);
  assert.deepEqual(ports(k), ['one:90', 'two:81']);
  const { problems } = k.current();
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.manifest?.file, '/a');
  assert.equal(problems[0]!.manifest?.path, 'spec.ports[0].port');
  k.setText('/a', svc('one', 91));
  assert.deepEqual(ports(k), ['one:91'], 'a good value replaces everything');
  assert.equal(k.delete('/a'), true);
  assert.deepEqual(ports(k), []);
});

test('an object defined under two keys is served from the first key in order; retain() drops the others', () => {
  const k = new KeyedManifests('etcd');
  k.setText('/b', svc('one', 82));
  k.setText('/a', svc('one', 80));
  k.setText('/c', svc('three', 83));
  assert.deepEqual(ports(k), ['one:80', 'three:83']);
  assert.match(
    k.current().problems[0]!.message,
    /^\/b: Service default\/one is also defined by \/a: ignored here$/,
  );
  assert.equal(k.retain(new Set(['/b'])), true);
  assert.deepEqual(ports(k), ['one:82']);
  assert.equal(k.retain(new Set(['/b'])), false);
});

test('a problem without a value keeps the last objects of the key', () => {
  const k = new KeyedManifests('consul');
  k.setText('/a', svc('one', 80));
  k.setProblem('/a', { code: 'RA0102', message: 'unreadable' });
  assert.deepEqual(ports(k), ['one:80']);
  assert.deepEqual(
    k.current().problems.map((p) => p.message),
    ['unreadable'],
  );
});

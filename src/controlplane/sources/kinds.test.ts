// The built-in kinds of the remote stores: options checked when the source is made, clients loaded when it starts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinSourceKinds } from './kinds.js';

test('etcd, kubernetes and consul check their options when made', async () => {
  const kinds = builtinSourceKinds();
  const etcd = kinds.create('etcd', {
    endpoints: 'http://127.0.0.1:2379, http://127.0.0.1:22379',
    prefix: '/mesh/',
  });
  assert.equal(etcd.name, 'etcd');
  await etcd.close();
  assert.throws(() => kinds.create('etcd', {}), /source "etcd" needs its endpoints/);
  assert.throws(() => kinds.create('etcd', { endpoints: [] }), /endpoints: expected a list of strings/);
  assert.throws(
    () => kinds.create('etcd', { endpoints: ['x'], prefix: 3 }),
    /prefix: expected a non-empty string/,
  );

  assert.equal(kinds.create('kubernetes', { kubeconfig: '/nowhere', istio: true }).name, 'kubernetes');
  assert.throws(() => kinds.create('kubernetes', { istio: 'yes' }), /istio: expected true or false/);

  assert.equal(kinds.create('consul', { address: 'http://127.0.0.1:8500', waitSeconds: 10 }).name, 'consul');
  assert.throws(() => kinds.create('consul', {}), /needs the agent's address/);
  assert.throws(
    () => kinds.create('consul', { address: 'x', waitSeconds: -1 }),
    /waitSeconds: expected a number/,
  );
});

test('a source whose client cannot be made fails at start, with the reason', async () => {
  const source = builtinSourceKinds().create('kubernetes', { kubeconfig: '/nonexistent/kubeconfig' });
  await assert.rejects(
    source.start(() => {}),
    /nonexistent\/kubeconfig/,
  );
  await source.close();
});

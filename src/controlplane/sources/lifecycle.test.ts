// Tests of the start deadline and the coalesced updates that the Kubernetes and Consul sources share.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Coalesced, settlesWithin } from './lifecycle.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

test('settlesWithin: true once ready settles, false when it never does, a rejection thrown', async () => {
  assert.equal(await settlesWithin(Promise.resolve('anything'), 60_000), true);
  assert.equal(await settlesWithin(new Promise(() => {}), 1), false);
  await assert.rejects(settlesWithin(Promise.reject(new Error('no')), 60_000), /no/);
});

test('Coalesced: nothing before open(); calls in one turn make one run; nothing after close()', async () => {
  let runs = 0;
  const c = new Coalesced(() => runs++);
  c.schedule();
  await turn();
  assert.equal(runs, 0, 'held until the first full read');
  c.open();
  assert.equal(runs, 1, 'open() runs at once');
  c.schedule();
  c.schedule();
  c.schedule();
  assert.equal(runs, 1, 'not run synchronously');
  await turn();
  assert.equal(runs, 2);
  c.schedule();
  await turn();
  assert.equal(runs, 3);
  c.schedule();
  c.close();
  await turn();
  c.schedule();
  c.open();
  await turn();
  assert.equal(runs, 3, 'a pending run is dropped, and nothing runs once closed');
});

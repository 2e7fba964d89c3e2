// Tests of one xDS type's state: per-resource acceptance, deletions of state-of-the-world types, duplicates,
// unchanged resources skipped, refusals by the running proxy, and the disk cache round trip.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type Any, encodeResource } from '../../xds/protos.js';
import { Logger } from '../observe/log.js';
import { cacheDirFor, XdsDiskCache } from './disk_cache.js';
import { CDS, RDS } from './resource_types.js';
import { type TypeChanges, TypeState } from './type_state.js';

function any(typeUrl: string, json: Record<string, unknown>): Any {
  const r = encodeResource(typeUrl, json);
  if (!r.ok) assert.fail(JSON.stringify(r.errors));
  return r.value;
}

const cluster = (name: string, extra: Record<string, unknown> = {}) =>
  any(CDS.typeUrl, { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, ...extra });

function recorder(refuse: Record<string, string> = {}) {
  const calls: TypeChanges[] = [];
  const apply = async (c: TypeChanges) => {
    calls.push(c);
    return new Map(Object.entries(refuse).filter(([n]) => c.upserted.some((r) => r.name === n)));
  };
  return { calls, apply };
}

const summary = (c: TypeChanges) => ({ upserted: c.upserted.map((r) => r.name), removed: [...c.removed] });

test('state of the world: invalid resources are refused one by one, the rest applied', async () => {
  const s = new TypeState(CDS, true);
  const r = recorder();
  const now = new Date();
  let errors = await s.process(
    {
      resources: [{ any: cluster('a') }, { any: cluster('b') }],
      version: 'v1',
      fullState: true,
      removed: [],
    },
    r.apply,
    now,
  );
  assert.deepEqual(errors, []);
  assert.equal(s.versionInfo, 'v1');
  // b changes to something invalid, c is new and valid, a is unchanged (not applied again).
  errors = await s.process(
    {
      resources: [
        { any: cluster('a') },
        { any: cluster('b', { lb_policy: 'CLUSTER_PROVIDED' }) },
        { any: cluster('c') },
      ],
      version: 'v2',
      fullState: true,
      removed: [],
    },
    r.apply,
    now,
  );
  assert.deepEqual(
    errors.map((e) => e.path),
    ['CDS["b"].lb_policy'],
  );
  assert.deepEqual(r.calls.map(summary), [
    { upserted: ['a', 'b'], removed: [] },
    { upserted: ['c'], removed: [] },
  ]);
  // The unchanged one is reported as received again (EDS re-arms endpoint_stale_after with it).
  assert.deepEqual(
    r.calls[1]!.resent.map((h) => h.name),
    ['a'],
  );
  // The NACK keeps the last accepted version; b keeps its old version; the refusal is remembered.
  assert.equal(s.versionInfo, 'v1');
  assert.equal(s.held.get('b')!.version, 'v1');
  assert.match(s.failures.get('b')!.details, /lb_policy/);
  // A response without a resource deletes it.
  errors = await s.process(
    {
      resources: [{ any: cluster('a') }, { any: cluster('c') }],
      version: 'v3',
      fullState: true,
      removed: [],
    },
    r.apply,
    now,
  );
  assert.deepEqual(errors, []);
  assert.deepEqual(summary(r.calls[2]!), { upserted: [], removed: ['b'] });
  assert.deepEqual([...s.held.keys()].sort(), ['a', 'c']);
  assert.equal(s.failures.size, 0);
});

test('duplicates, wrong types and resources the running proxy refuses are NACKed', async () => {
  const s = new TypeState(CDS, true);
  const r = recorder({ c: 'cannot read cert.pem' });
  const errors = await s.process(
    {
      resources: [
        { any: cluster('a') },
        { any: cluster('a') },
        { any: any(RDS.typeUrl, { name: 'r' }) },
        { any: cluster('c') },
      ],
      version: 'v1',
      fullState: true,
      removed: [],
    },
    r.apply,
    new Date(),
  );
  assert.deepEqual(
    errors.map((e) => `${e.path}: ${e.message}`),
    [
      'CDS["a"]: duplicate resource name',
      `CDS[2]: expected a resource of type ${CDS.typeUrl}, got "${RDS.typeUrl}"`,
      'CDS["c"]: cannot read cert.pem',
    ],
  );
  assert.deepEqual([...s.held.keys()], ['a']);
});

test('EDS/RDS: only subscribed names are taken, and nothing is deleted by omission', async () => {
  const s = new TypeState(RDS, false);
  s.names = new Set(['web']);
  const r = recorder();
  const route = (name: string) => any(RDS.typeUrl, { name, virtual_hosts: [] });
  await s.process(
    {
      resources: [{ any: route('web') }, { any: route('other') }],
      version: 'v1',
      fullState: false,
      removed: [],
    },
    r.apply,
    new Date(),
  );
  assert.deepEqual([...s.held.keys()], ['web']);
  await s.process({ resources: [], version: 'v2', fullState: false, removed: [] }, r.apply, new Date());
  assert.deepEqual([...s.held.keys()], ['web']);
  s.names = new Set();
  assert.deepEqual(s.dropUnsubscribed(), ['web']);
});

test('the disk cache writes each type atomically and reads back only its own node', async () => {
  const base = mkdtempSync(join(tmpdir(), 'remora-cache-'));
  try {
    const dir = cacheDirFor(base, 'sidecar~10.0.0.1~a/b');
    assert.equal(dir, join(base, 'sidecar%7e10.0.0.1%7ea%2fb'));
    const logger = new Logger('off');
    const cache = new XdsDiskCache(dir, 'n1', logger);
    assert.equal(await cache.load(CDS), undefined);
    cache.save(CDS, 'v1', [cluster('a')]);
    cache.save(CDS, 'v2', [cluster('a'), cluster('b')]);
    await cache.flush();
    assert.deepEqual(readdirSync(dir), ['cds.json']);
    const back = await cache.load(CDS);
    assert.equal(back?.version, 'v2');
    assert.equal(back?.resources.length, 2);
    assert.deepEqual(Buffer.from(back!.resources[1]!.value), Buffer.from(cluster('b').value));
    assert.equal(await new XdsDiskCache(dir, 'n2', logger).load(CDS), undefined);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

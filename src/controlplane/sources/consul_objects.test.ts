// consulObjects: a Consul service's instances as a Service and WorkloadEntries, through the manifest validators.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ServiceObject, WorkloadEntryObject } from '../model/objects.js';
import { type ConsulInstance, consulObjects, instancesOf } from './consul_objects.js';

const inst = (id: string, port: number, more: Partial<ConsulInstance> = {}): ConsulInstance => ({
  node: 'n1',
  id,
  address: `10.0.0.${id.length}`,
  port,
  meta: {},
  weight: undefined,
  passing: true,
  ...more,
});

const opts = { namespace: 'consul', source: 'consul', key: 'consul service "web"' };

test('one port (the lowest instance port), named by Meta.protocol; one WorkloadEntry per passing instance', () => {
  const r = consulObjects(
    'web',
    [
      inst('a', 9090, { meta: { protocol: 'GRPC', version: 'v1', 'bad key!': 'x', long: 'y'.repeat(64) } }),
      inst('bb', 8080, { weight: 5 }),
      inst('ccc', 8080, { passing: false }),
    ],
    opts,
  );
  assert.deepEqual(r.errors, []);
  const svc = r.objects[0] as ServiceObject;
  assert.deepEqual(
    svc.ports.map((p) => [p.name, p.port, p.meshProtocol]),
    [['grpc', 8080, 'GRPC']],
  );
  assert.deepEqual(svc.selector, { 'consul.remora.io/service': 'web' });
  const entries = r.objects.slice(1) as WorkloadEntryObject[];
  assert.deepEqual(
    entries.map((e) => [e.address, e.ports, e.labels, e.weight]),
    [
      [
        '10.0.0.1',
        { grpc: 9090 },
        { 'consul.remora.io/service': 'web', protocol: 'GRPC', version: 'v1' },
        undefined,
      ],
      ['10.0.0.2', { grpc: 8080 }, { 'consul.remora.io/service': 'web' }, 5],
    ],
  );
  assert.match(entries[0]!.meta.name, /^web-a-[0-9a-f]{8}$/);
});

test('no instances: the Service stays, without ports; a bad name reports the Service only', () => {
  const empty = consulObjects('web', [], opts);
  assert.deepEqual((empty.objects[0] as ServiceObject).ports, []);
  const bad = consulObjects('Web', [inst('a', 80)], opts);
  assert.deepEqual(bad.objects, []);
  assert.equal(bad.errors.length, 1);
  assert.equal(bad.errors[0]!.path, 'metadata.name');
});

test('health entries: the service address or else the node one, checks all passing', () => {
  const got = instancesOf([
    {
      Node: { Node: 'n1', Address: '10.9.0.1' },
      Service: { ID: 'x', Service: 'web', Address: '', Port: 80, Meta: { a: 'b' }, Weights: { Passing: 2 } },
      Checks: [{ Status: 'passing' }, { Status: 'warning' }],
    },
  ]);
  assert.deepEqual(got, [
    { node: 'n1', id: 'x', address: '10.9.0.1', port: 80, meta: { a: 'b' }, weight: 2, passing: false },
  ]);
  assert.throws(() => instancesOf({}), /expected a JSON list/);
  assert.throws(
    () => instancesOf([{ Node: {}, Service: { Port: 'x' } }]),
    /entry 0: Service.Port is not an integer/,
  );
});

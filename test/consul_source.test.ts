// Integration: the Consul source (blocking queries) against a FAKE Consul agent with Consul's blocking semantics.

import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { ConsulSource, type ConsulSourceOptions } from '../src/controlplane/sources/consul.js';
import { builtinSourceKinds } from '../src/controlplane/sources/kinds.js';
import { type MeshState, SourceRegistry } from '../src/controlplane/sources/registry.js';
import { until } from './support/child.js';
import { FakeConsul } from './support/fake_consul.js';
import { watchStates } from './support/states.js';
import { closedPort } from './support/upstream.js';

const WEB = 'web.consul.svc.cluster.local';

let agent: FakeConsul;

function endpoints(s: MeshState, host = WEB): string[] {
  return s.snapshot.endpoints(host).map((e) => `${e.address}:${Object.values(e.ports).join()}`);
}

function describe(s: MeshState): string {
  return JSON.stringify({
    services: s.snapshot.services.map((x) => `${x.hostname}:${x.ports.map((p) => `${p.name}/${p.port}`)}`),
    endpoints: endpoints(s),
    problems: s.problems.map((p) => `${p.code} ${p.message}`),
  });
}

async function open(options: Partial<ConsulSourceOptions> = {}) {
  const registry = new SourceRegistry().add(
    new ConsulSource({
      address: agent.url,
      waitSeconds: 5,
      backoff: { initialMs: 50, maxMs: 200 },
      ...options,
    }),
  );
  const states = watchStates(registry, describe);
  await registry.start();
  return { registry, states };
}

before(async () => {
  agent = new FakeConsul();
  await agent.start();
});

beforeEach(() => {
  // Each test starts from an empty catalog.
  for (const [service, ids] of Object.entries(agent.registered()))
    for (const id of ids) agent.deregister(service, id);
});

after(async () => {
  await agent?.stop();
});

test('the catalog and the healthy instances: a Service per service, a WorkloadEntry per passing instance', async () => {
  agent.register({
    service: 'web',
    id: 'web-1',
    address: '10.2.0.1',
    port: 8080,
    meta: { version: 'v1', protocol: 'http' },
  });
  agent.register({
    service: 'web',
    id: 'web-2',
    address: '10.2.0.2',
    port: 8080,
    meta: { version: 'v2' },
    weight: 3,
  });
  agent.register({ service: 'web', id: 'web-3', address: '10.2.0.3', port: 8080, status: 'critical' });
  // No service address: the node's.
  agent.register({ service: 'db', id: 'db-1', nodeAddress: '10.2.1.1', port: 5432, node: 'node-db' });
  const { registry, states } = await open();
  try {
    const s = states.last();
    assert.deepEqual(s.problems, []);
    const web = s.snapshot.service(WEB);
    assert.deepEqual(
      web?.ports.map((p) => [p.name, p.port, p.meshProtocol]),
      [['http', 8080, 'HTTP']],
    );
    assert.deepEqual(endpoints(s), ['10.2.0.1:8080', '10.2.0.2:8080']);
    const byAddress = new Map(s.snapshot.endpoints(WEB).map((e) => [e.address, e]));
    assert.equal(byAddress.get('10.2.0.1')?.labels.version, 'v1');
    assert.equal(byAddress.get('10.2.0.2')?.weight, 3);
    assert.deepEqual(endpoints(s, 'db.consul.svc.cluster.local'), ['10.2.1.1:5432']);
    assert.equal(s.snapshot.service('db.consul.svc.cluster.local')?.ports[0]?.meshProtocol, 'UNKNOWN');
  } finally {
    await registry.close();
  }
});

test('instances added, removed and failing their checks reach the snapshot within a second', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  const { registry, states } = await open();
  try {
    assert.deepEqual(endpoints(states.last()), ['10.2.0.1:8080']);
    agent.register({ service: 'web', id: 'web-2', address: '10.2.0.2', port: 8080 });
    await states.until('the added instance', (s) => endpoints(s).length === 2, 1000);
    agent.setStatus('web', 'web-1', 'critical');
    await states.until('the failing instance gone', (s) => endpoints(s).join() === '10.2.0.2:8080', 1000);
    // Consul's "passing" excludes warnings too.
    agent.setStatus('web', 'web-2', 'warning');
    await states.until('no healthy instance', (s) => endpoints(s).length === 0, 1000);
    assert.ok(states.last().snapshot.service(WEB), 'the service stays, with its port, while none is healthy');
    assert.equal(states.last().snapshot.service(WEB)?.ports[0]?.port, 8080);
    agent.setStatus('web', 'web-1', 'passing');
    await states.until('the instance back', (s) => endpoints(s).join() === '10.2.0.1:8080', 1000);
    agent.deregister('web', 'web-2');
    agent.register({ service: 'api', id: 'api-1', address: '10.2.2.1', port: 9000 });
    await states.until(
      'a new service',
      (s) => s.snapshot.service('api.consul.svc.cluster.local') !== undefined,
      1000,
    );
    agent.deregister('web', 'web-1');
    await states.until('the service gone', (s) => s.snapshot.service(WEB) === undefined, 1000);
  } finally {
    await registry.close();
  }
});

test('queries block: an idle agent sees a few blocking queries, not a busy loop', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  const { registry } = await open({ waitSeconds: 1, minIntervalMs: 0 });
  try {
    await until('a blocking catalog query', () => agent.count('blocking catalog') >= 1);
    const before = agent.count('health web');
    await new Promise((r) => setTimeout(r, 1500));
    // Each held for its 1 s wait: one or two more in 1.5 s, where a non-blocking loop would make hundreds.
    assert.ok(
      agent.count('health web') - before <= 3,
      `health queries: ${agent.count('health web') - before}`,
    );
    assert.ok(agent.count('blocking health web') >= 1);
  } finally {
    await registry.close();
  }
});

test('the agent restarting (its indexes starting lower) is reported, and the source catches up', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  agent.register({ service: 'web', id: 'web-2', address: '10.2.0.2', port: 8080 });
  agent.register({ service: 'old', id: 'old-1', address: '10.2.9.1', port: 80 });
  // A long wait: a source that kept blocking with its old, higher index would not see anything for 60 s.
  const { registry, states } = await open({ waitSeconds: 60 });
  try {
    await until('blocking queries', () => agent.count('blocking health web') >= 1);
    await agent.stop();
    const down = await states.until('the failure reported', (s) =>
      s.problems.some((p) => p.code === 'RA0402'),
    );
    assert.deepEqual(endpoints(down), ['10.2.0.1:8080', '10.2.0.2:8080'], 'the last objects keep serving');
    assert.match(
      down.problems[0]!.message,
      /^consul http:\/\/127\.0\.0\.1:\d+: \/v1\/.*serving the last objects read/,
    );
    // While it is away: one instance and one service leave, another instance comes; then it comes back renumbered.
    agent.deregister('web', 'web-1');
    agent.deregister('old', 'old-1');
    agent.register({ service: 'web', id: 'web-3', address: '10.2.0.3', port: 8080 });
    agent.renumber();
    await agent.start(agent.port);
    const back = await states.until(
      'the state after the restart, no problem',
      (s) =>
        endpoints(s).join() === '10.2.0.2:8080,10.2.0.3:8080' &&
        s.snapshot.service('old.consul.svc.cluster.local') === undefined &&
        s.problems.length === 0,
      5000,
    );
    assert.ok(back);
    // And blocking queries go on from the new, lower indexes.
    agent.register({ service: 'web', id: 'web-4', address: '10.2.0.4', port: 8080 });
    await states.until('a change after the restart', (s) => endpoints(s).includes('10.2.0.4:8080'), 1000);
  } finally {
    await registry.close();
  }
});

test('an index that goes backwards while connected resets the query, which then follows changes', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  agent.register({ service: 'web', id: 'web-2', address: '10.2.0.2', port: 8080 });
  const { registry, states } = await open({ waitSeconds: 1 });
  try {
    await until('blocking queries', () => agent.count('blocking health web') >= 1);
    agent.renumber();
    // The held queries answer after their wait with a lower index; the source must start over from 0.
    const plain = agent.count('health web') - agent.count('blocking health web');
    await until(
      'a plain read after the reset',
      () => agent.count('health web') - agent.count('blocking health web') > plain,
      5000,
    );
    agent.deregister('web', 'web-1');
    await states.until('the change after the reset', (s) => endpoints(s).join() === '10.2.0.2:8080', 1000);
  } finally {
    await registry.close();
  }
});

test('a service name that is not a DNS label is reported; the other services serve', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  agent.register({ service: 'Bad_Name', id: 'b-1', address: '10.2.3.1', port: 80 });
  agent.register({ service: 'named', id: 'n-1', address: 'host.example', port: 80 });
  const { registry, states } = await open();
  try {
    const s = states.last();
    assert.deepEqual(endpoints(s), ['10.2.0.1:8080']);
    const messages = s.problems.map((p) => p.message).sort();
    assert.equal(messages.length, 2, messages.join('\n'));
    assert.match(messages[0]!, /^consul service "Bad_Name": Service consul\/Bad_Name: metadata\.name: /);
    assert.match(
      messages[1]!,
      /^consul service "named": WorkloadEntry consul\/named-n-1-[0-9a-f]{8}: spec\.address: "host\.example" is not/,
    );
    assert.ok(
      s.snapshot.service('named.consul.svc.cluster.local'),
      'its Service serves, without that instance',
    );
  } finally {
    await registry.close();
  }
});

test('namespace, datacenter and token options', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  agent.token = 'secret';
  try {
    const { registry, states } = await open({ namespace: 'legacy', datacenter: 'dc1', token: 'secret' });
    try {
      assert.deepEqual(endpoints(states.last(), 'web.legacy.svc.cluster.local'), ['10.2.0.1:8080']);
    } finally {
      await registry.close();
    }
    await assert.rejects(
      open({ token: 'wrong', startTimeoutMs: 300 }),
      /consul http:\/\/127\.0\.0\.1:\d+: cannot read the catalog: \/v1\/catalog\/services: HTTP 403: ACL not found/,
    );
  } finally {
    agent.token = undefined;
  }
});

test('start() fails, naming the agent, when it cannot be reached', async () => {
  const port = await closedPort();
  await assert.rejects(
    new SourceRegistry()
      .add(
        new ConsulSource({
          address: `http://127.0.0.1:${port}`,
          startTimeoutMs: 300,
          backoff: { initialMs: 50 },
        }),
      )
      .start(),
    new RegExp(
      `consul http://127\\.0\\.0\\.1:${port}: cannot read the catalog: /v1/catalog/services: .*ECONNREFUSED`,
    ),
  );
});

test('made by the built-in source kinds, the client loaded when the source starts', async () => {
  agent.register({ service: 'web', id: 'web-1', address: '10.2.0.1', port: 8080 });
  const registry = new SourceRegistry().add(
    builtinSourceKinds().create('consul', { address: agent.url, waitSeconds: 5 }),
  );
  try {
    const state = await registry.start();
    assert.deepEqual(endpoints(state), ['10.2.0.1:8080']);
  } finally {
    await registry.close();
  }
});

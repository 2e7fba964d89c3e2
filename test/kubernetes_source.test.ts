// Integration: the Kubernetes source (client-node informers) against a FAKE API server speaking list+watch.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { generate } from '../src/controlplane/generator/generate.js';
import { proxyIdentity } from '../src/controlplane/generator/identity.js';
import { inboundClusterName, VIRTUAL_INBOUND } from '../src/controlplane/generator/names.js';
import type { MeshSnapshot } from '../src/controlplane/model/snapshot.js';
import { KubernetesSource, type KubernetesSourceOptions } from '../src/controlplane/sources/kubernetes.js';
import { type MeshState, SourceRegistry } from '../src/controlplane/sources/registry.js';
import { until } from './support/child.js';
import { FakeKubeApi, type KubeObject } from './support/fake_kube_api.js';
import { watchStates } from './support/states.js';

const HOST = 'reviews.shop.svc.cluster.local';

const service = (port = 9080): KubeObject => ({
  kind: 'Service',
  metadata: { name: 'reviews', namespace: 'shop', labels: { app: 'reviews' } },
  spec: {
    ports: [{ name: 'http', port, protocol: 'TCP', targetPort: 8080 }],
    selector: { app: 'reviews' },
    type: 'ClusterIP',
    clusterIP: '10.96.0.10',
    clusterIPs: ['10.96.0.10'],
    ipFamilies: ['IPv4'],
    ipFamilyPolicy: 'SingleStack',
    sessionAffinity: 'None',
    internalTrafficPolicy: 'Cluster',
  },
  status: { loadBalancer: {} },
});

const pod = (name: string, ip: string, version: string, sa = 'reviews'): KubeObject => ({
  kind: 'Pod',
  metadata: { name, namespace: 'shop', labels: { app: 'reviews', version }, generateName: 'reviews-' },
  spec: { serviceAccountName: sa, containers: [{ name: 'app', image: 'reviews:1' }] },
  status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] },
});

/** An EndpointSlice as the controller writes it: generated name, owner, targetRefs, conditions. */
const slice = (name: string, endpoints: { ip: string; pod?: string; ready?: boolean }[]): KubeObject => ({
  kind: 'EndpointSlice',
  metadata: {
    name,
    namespace: 'shop',
    generateName: 'reviews-',
    labels: {
      'kubernetes.io/service-name': 'reviews',
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'reviews', uid: 'u1' }],
  },
  addressType: 'IPv4',
  ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  endpoints: endpoints.map((e) => ({
    addresses: [e.ip],
    conditions: { ready: e.ready ?? true, serving: e.ready ?? true, terminating: false },
    nodeName: 'node-1',
    zone: 'zone-a',
    ...(e.pod ? { targetRef: { kind: 'Pod', namespace: 'shop', name: e.pod, uid: `uid-${e.pod}` } } : {}),
  })),
});

let api: FakeKubeApi;
let dir: string;
let kubeconfig: string;

function endpoints(s: MeshState): string[] {
  return s.snapshot
    .endpoints(HOST)
    .map((e) => `${e.address}${e.ready ? '' : '!'} ${JSON.stringify(e.labels)} ${e.serviceAccount ?? '-'}`);
}

function addresses(s: MeshState): string[] {
  return s.snapshot.endpoints(HOST).map((e) => e.address);
}

function describe(s: MeshState): string {
  return JSON.stringify({
    services: s.snapshot.services.map((x) => x.hostname),
    endpoints: endpoints(s),
    problems: s.problems.map((p) => `${p.code} ${p.message}`),
  });
}

async function open(options: Partial<KubernetesSourceOptions> = {}) {
  const registry = new SourceRegistry().add(
    new KubernetesSource({ kubeconfig, backoff: { initialMs: 50, maxMs: 200 }, ...options }),
  );
  const states = watchStates(registry, describe);
  await registry.start();
  return { registry, states };
}

/** Every object of the fake removed, so each test starts from an empty cluster. */
function clear(): void {
  for (const [kind, ns, name] of api.all()) api.remove(kind, ns, name);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-kube-'));
  api = new FakeKubeApi();
  await api.start();
  kubeconfig = api.writeKubeconfig(dir);
});

after(async () => {
  await api?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the initial list: Services and EndpointSlices validated, Pod labels and service accounts on endpoints', async () => {
  clear();
  api.apply(service());
  api.apply(pod('reviews-v1', '10.1.0.1', 'v1'));
  api.apply(pod('reviews-v2', '10.1.0.2', 'v2', 'reviews-v2'));
  // Not in the slice, or another namespace: never joined.
  api.apply({
    ...pod('other', '10.1.0.9', 'v9'),
    metadata: { name: 'other', namespace: 'elsewhere', labels: {} },
  });
  api.apply(
    slice('reviews-abc', [
      { ip: '10.1.0.1', pod: 'reviews-v1' },
      // No targetRef: joined by IP within the namespace.
      { ip: '10.1.0.2' },
      { ip: '10.1.0.3', ready: false },
    ]),
  );
  const { registry, states } = await open();
  try {
    const s = states.last();
    assert.deepEqual(s.problems, []);
    assert.equal(s.snapshot.service(HOST)?.ports[0]?.port, 9080);
    assert.deepEqual(endpoints(s), [
      '10.1.0.1 {"app":"reviews","version":"v1"} reviews',
      '10.1.0.2 {"app":"reviews","version":"v2"} reviews-v2',
      '10.1.0.3! {} -',
    ]);
    assert.equal(api.count('list Service'), 1);
    await until('three watches', () => api.openWatches() === 3);
  } finally {
    await registry.close();
  }
  await until('watches closed', () => api.openWatches() === 0);
});

test('added, modified and deleted objects reach the snapshot; Pod label changes reach endpoints', async () => {
  clear();
  api.apply(service());
  api.apply(pod('reviews-v1', '10.1.0.1', 'v1'));
  api.apply(slice('reviews-abc', [{ ip: '10.1.0.1', pod: 'reviews-v1' }]));
  const { registry, states } = await open();
  try {
    assert.deepEqual(addresses(states.last()), ['10.1.0.1']);
    api.apply(pod('reviews-v2', '10.1.0.2', 'v2'));
    api.apply(slice('reviews-def', [{ ip: '10.1.0.2', pod: 'reviews-v2' }]));
    await states.until('a second slice', (s) => addresses(s).length === 2, 1000);

    api.apply(pod('reviews-v2', '10.1.0.2', 'v3'));
    await states.until('the new label', (s) => endpoints(s).some((e) => e.includes('"version":"v3"')), 1000);

    api.apply(service(9090));
    await states.until('the new port', (s) => s.snapshot.service(HOST)?.ports[0]?.port === 9090, 1000);

    api.remove('EndpointSlice', 'shop', 'reviews-abc');
    await states.until('the first slice gone', (s) => addresses(s).join() === '10.1.0.2', 1000);
    api.remove('Service', 'shop', 'reviews');
    await states.until('the service gone', (s) => s.snapshot.service(HOST) === undefined, 1000);
  } finally {
    await registry.close();
  }
});

test('an invalid object is reported with its API path and field path; its last good version keeps serving', async () => {
  clear();
  api.apply(service());
  const { registry, states } = await open();
  try {
    api.apply({ ...service(), spec: { ...(service().spec as object), sessionAffinity: 'ClientIP' } });
    const s = await states.until('a problem', (x) => x.problems.length > 0, 1000);
    assert.equal(s.problems.length, 1);
    assert.equal(
      s.problems[0]!.message,
      '/api/v1/namespaces/shop/services/reviews: Service shop/reviews: spec.sessionAffinity: value "ClientIP" is not supported by Remora yet (supported: None)',
    );
    assert.ok(s.snapshot.service(HOST), 'the last good Service serves');
    api.apply(service(9091));
    const fixed = await states.until('fixed', (x) => x.problems.length === 0, 1000);
    assert.equal(fixed.snapshot.service(HOST)?.ports[0]?.port, 9091);
  } finally {
    await registry.close();
  }
});

test('a watch the server ends is resumed from its resourceVersion, without a new list', async () => {
  clear();
  api.apply(service());
  api.apply(slice('reviews-abc', [{ ip: '10.1.0.1' }]));
  const { registry, states } = await open();
  try {
    const lists = api.count('list EndpointSlice');
    const watches = api.count('watch EndpointSlice');
    await until('watches open', () => api.openWatches() === 3);
    api.dropWatches();
    // Made while no watch is open: the resumed watch must replay it from the history.
    api.apply(slice('reviews-abc', [{ ip: '10.1.0.1' }, { ip: '10.1.0.2' }]));
    await states.until('the change made between watches', (s) => addresses(s).length === 2, 2000);
    assert.ok(api.count('watch EndpointSlice') > watches);
    assert.equal(api.count('list EndpointSlice'), lists, 'resumed, not relisted');
    assert.equal(api.count('gone EndpointSlice'), 0);
  } finally {
    await registry.close();
  }
});

for (const http of [false, true]) {
  test(`a 410 Gone (${http ? 'HTTP status' : 'ERROR event'}) makes the informer list again, deletions included`, async () => {
    clear();
    api.goneAsHttpStatus = http;
    api.apply(service());
    api.apply(slice('reviews-abc', [{ ip: '10.1.0.1' }]));
    api.apply(slice('reviews-def', [{ ip: '10.1.0.2' }]));
    const { registry, states } = await open();
    try {
      const lists = api.count('list EndpointSlice');
      await until('watches open', () => api.openWatches() === 3);
      api.dropWatches();
      api.remove('EndpointSlice', 'shop', 'reviews-def');
      api.apply(slice('reviews-ghi', [{ ip: '10.1.0.3' }]));
      api.compact();
      const s = await states.until(
        'the relisted state',
        (x) => addresses(x).join() === '10.1.0.1,10.1.0.3',
        3000,
      );
      assert.ok(api.count('gone EndpointSlice') >= 1);
      assert.ok(api.count('list EndpointSlice') > lists, 'listed again');
      assert.deepEqual(s.problems, []);
      // And it keeps watching after the relist.
      api.apply(slice('reviews-abc', [{ ip: '10.1.0.4' }]));
      await states.until('a change after the relist', (x) => addresses(x).includes('10.1.0.4'), 2000);
    } finally {
      api.goneAsHttpStatus = false;
      await registry.close();
    }
    await until('watches closed', () => api.openWatches() === 0);
  });
}

test('the API server going away is reported; the source catches up when it is back', async () => {
  clear();
  api.apply(service());
  api.apply(slice('reviews-abc', [{ ip: '10.1.0.1' }]));
  const { registry, states } = await open();
  try {
    await api.stop();
    const down = await states.until('the failure reported', (s) =>
      s.problems.some((p) => p.code === 'RA0402'),
    );
    assert.deepEqual(addresses(down), ['10.1.0.1'], 'the last objects keep serving');
    assert.match(
      down.problems[0]!.message,
      /^kubernetes http:\/\/127\.0\.0\.1:\d+: list\/watch of \w+ .*serving the last objects read/,
    );
    api.apply(slice('reviews-abc', [{ ip: '10.1.0.5' }]));
    await api.start(api.port);
    const back = await states.until(
      'the change made while away, no problem',
      (s) => addresses(s).join() === '10.1.0.5' && s.problems.length === 0,
    );
    assert.ok(back);
  } finally {
    await registry.close();
  }
});

test('Istio kinds when asked: a DestinationRule subset selects Pods by their labels', async () => {
  clear();
  api.apply(service());
  api.apply(pod('reviews-v1', '10.1.0.1', 'v1'));
  api.apply(pod('reviews-v2', '10.1.0.2', 'v2'));
  api.apply(
    slice('reviews-abc', [
      { ip: '10.1.0.1', pod: 'reviews-v1' },
      { ip: '10.1.0.2', pod: 'reviews-v2' },
    ]),
  );
  api.apply({
    kind: 'DestinationRule',
    metadata: { name: 'reviews', namespace: 'shop' },
    spec: { host: 'reviews', subsets: [{ name: 'v2', labels: { version: 'v2' } }] },
  });
  const { registry, states } = await open({ istio: true });
  try {
    const s = states.last();
    assert.deepEqual(s.problems, []);
    assert.deepEqual(
      s.snapshot.subsetEndpoints(HOST, 'v2').map((e) => e.address),
      ['10.1.0.2'],
    );
    api.apply({
      kind: 'VirtualService',
      metadata: { name: 'reviews', namespace: 'shop' },
      spec: { hosts: ['reviews'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v2' } }] }] },
    });
    await states.until('the VirtualService', (x) => x.snapshot.virtualServices.length === 1, 1000);
    // The Pod relabelled: the subset follows.
    api.apply(pod('reviews-v1', '10.1.0.1', 'v2'));
    await states.until('both in v2', (x) => x.snapshot.subsetEndpoints(HOST, 'v2').length === 2, 1000);
  } finally {
    await registry.close();
  }
});

test('start() fails, naming the server and what it could not list, when the server is unreachable', async () => {
  const other = new FakeKubeApi();
  await other.start();
  const cfg = other.writeKubeconfig(mkdtempSync(join(dir, 'gone-')));
  await other.stop();
  const source = new KubernetesSource({
    kubeconfig: cfg,
    startTimeoutMs: 300,
    backoff: { initialMs: 50, maxMs: 100 },
  });
  await assert.rejects(
    new SourceRegistry().add(source).start(),
    new RegExp(`kubernetes ${other.url.replace(/\./g, '\\.')}: cannot list Service, EndpointSlice, Pod`),
  );
});

test('a refused token is reported with the HTTP status and the server message', async () => {
  const bad = join(dir, 'bad-token.yaml');
  const { readFileSync, writeFileSync } = await import('node:fs');
  writeFileSync(bad, readFileSync(kubeconfig, 'utf8').replace(/token: [\w-]+/, 'token: wrong'));
  const source = new KubernetesSource({ kubeconfig: bad, startTimeoutMs: 300, backoff: { initialMs: 50 } });
  await assert.rejects(
    new SourceRegistry().add(source).start(),
    /^Error: kubernetes http:\/\/127\.0\.0\.1:\d+: cannot list Service, EndpointSlice, Pod: Service: HTTP 401: Unauthorized; EndpointSlice: HTTP 401: Unauthorized; Pod: HTTP 401: Unauthorized$/,
  );
});

/** A Pod whose container declares named ports, as a Deployment's Pod template would. */
const podWithPorts = (
  name: string,
  ip: string,
  version: string,
  ports: { name?: string; containerPort: number; protocol?: string }[],
): KubeObject => {
  const p = pod(name, ip, version);
  return { ...p, spec: { ...(p.spec as object), containers: [{ name: 'app', image: 'reviews:1', ports }] } };
};

/** The Service with its port's targetPort a container port name, as Helm charts commonly write it. */
const namedTargetService = (): KubeObject => {
  const s = service();
  return {
    ...s,
    spec: {
      ...(s.spec as object),
      ports: [{ name: 'http', port: 9080, protocol: 'TCP', targetPort: 'http-web' }],
    },
  };
};

/** The inbound side the generator gives the sidecar of a Pod, its node as an injected sidecar sends it. */
function inbound(snapshot: MeshSnapshot, podName: string, ip: string, labels: Record<string, string>) {
  const id = proxyIdentity({
    id: `sidecar~${ip}~${podName}.shop~shop.svc.cluster.local`,
    metadata: { NAMESPACE: 'shop', LABELS: labels, INSTANCE_IPS: ip, WORKLOAD_NAME: 'reviews' },
  });
  assert.ok(id.ok);
  const config = generate(snapshot, id.value);
  const listener = config.listeners.find((l) => l.name === VIRTUAL_INBOUND) as {
    filter_chains: { filter_chain_match?: { destination_port?: number } }[];
  };
  const ports = listener.filter_chains.flatMap((c) => c.filter_chain_match?.destination_port ?? []);
  const clusters = config.clusters.map((c) => c.name as string).filter((n) => n.startsWith('inbound|'));
  return { ports: [...new Set(ports)], clusters };
}

function workloads(s: MeshState): string[] {
  return s.snapshot.workloads.map(
    (w) =>
      `${w.kind} ${w.namespace}/${w.name} ${w.addresses.join(',')} ${w.serviceAccount ?? '-'} ` +
      w.containerPorts.map((p) => `${p.name}=${p.port}/${p.protocol}`).join(','),
  );
}

test("Pods are workloads: a named targetPort resolves to the Pod's container port for its sidecar; endpoints stay the slices'", async () => {
  clear();
  api.apply(namedTargetService());
  api.apply(podWithPorts('reviews-v1', '10.1.0.1', 'v1', [{ name: 'http-web', containerPort: 8080 }]));
  // Selected by the Service but in no slice (not ready yet): a workload, never an endpoint. Its sidecar container
  // (an init container that keeps running) declares a port too.
  const v2 = podWithPorts('reviews-v2', '10.1.0.2', 'v2', [
    { name: 'http-web', containerPort: 8081 },
    { name: 'http-web-udp', containerPort: 8082, protocol: 'UDP' },
  ]);
  const initContainers = [
    { name: 'init', image: 'init:1', ports: [{ name: 'ignored', containerPort: 1 }] },
    {
      name: 'shipper',
      image: 'shipper:1',
      restartPolicy: 'Always',
      ports: [{ name: 'logs', containerPort: 2020 }],
    },
  ];
  api.apply({ ...v2, spec: { ...(v2.spec as object), initContainers } });
  api.apply(slice('reviews-abc', [{ ip: '10.1.0.1', pod: 'reviews-v1' }]));
  const { registry, states } = await open();
  try {
    const s = states.last();
    assert.deepEqual(s.problems, []);
    assert.deepEqual(workloads(s), [
      'Pod shop/reviews-v1 10.1.0.1 reviews http-web=8080/TCP',
      'Pod shop/reviews-v2 10.1.0.2 reviews http-web=8081/TCP,http-web-udp=8082/UDP,logs=2020/TCP',
    ]);
    // One endpoint, the slice's, with its Pod's labels joined on: no second copy from the Pod itself.
    assert.deepEqual(endpoints(s), ['10.1.0.1 {"app":"reviews","version":"v1"} reviews']);
    assert.equal(s.snapshot.endpoints(HOST)[0]?.from, 'EndpointSlice/shop/reviews-abc');

    const v1 = { app: 'reviews', version: 'v1' };
    assert.deepEqual(inbound(s.snapshot, 'reviews-v1', '10.1.0.1', v1), {
      ports: [8080],
      clusters: [inboundClusterName(8080)],
    });
    assert.deepEqual(
      inbound(s.snapshot, 'reviews-v2', '10.1.0.2', { app: 'reviews', version: 'v2' }).ports,
      [8081],
    );

    // A Pod added later (watched, not listed) is resolved the same way.
    api.apply(podWithPorts('reviews-v3', '10.1.0.3', 'v3', [{ name: 'http-web', containerPort: 8083 }]));
    const added = await states.until('the watched Pod', (x) => workloads(x).length === 3, 2000);
    assert.deepEqual(
      inbound(added.snapshot, 'reviews-v3', '10.1.0.3', { app: 'reviews', version: 'v3' }).ports,
      [8083],
    );
    assert.deepEqual(addresses(added), ['10.1.0.1'], "still only the slice's endpoint");

    // Deleted: its workload goes, and with it what its sidecar's inbound ports were resolved from.
    api.remove('Pod', 'shop', 'reviews-v1');
    const gone = await states.until(
      'reviews-v1 gone',
      (x) => !workloads(x).some((w) => w.includes('reviews-v1')),
      2000,
    );
    assert.deepEqual(inbound(gone.snapshot, 'reviews-v1', '10.1.0.1', v1), { ports: [], clusters: [] });
    // The slice is the endpoint controller's to change: its endpoint stays, without the Pod's labels.
    assert.deepEqual(endpoints(gone), ['10.1.0.1 {} -']);
  } finally {
    await registry.close();
  }
});

test('Pod IP, label and port changes reach the workloads; status-only churn makes no new snapshot', async () => {
  clear();
  api.apply(namedTargetService());
  const pending = podWithPorts('reviews-v1', '10.1.0.1', 'v1', [{ name: 'http-web', containerPort: 8080 }]);
  api.apply({ ...pending, status: { phase: 'Pending' } });
  // On the host network: a workload, but the node's IP is none of its own.
  api.apply({
    ...podWithPorts('node-agent', '192.168.1.10', 'agent', [{ name: 'http-web', containerPort: 9100 }]),
    spec: {
      hostNetwork: true,
      serviceAccountName: 'agent',
      containers: [{ name: 'agent', image: 'agent:1', ports: [{ name: 'http-web', containerPort: 9100 }] }],
    },
  });
  const { registry, states } = await open();
  const seen: MeshState[] = [];
  const stop = registry.subscribe((x) => seen.push(x));
  try {
    assert.deepEqual(workloads(states.last()), [
      'Pod shop/node-agent  agent http-web=9100/TCP',
      'Pod shop/reviews-v1  reviews http-web=8080/TCP',
    ]);
    assert.equal(states.last().snapshot.workloads[0]?.hostNetwork, true);
    api.apply(pending);
    await states.until('the IP assigned', (x) => workloads(x)[1]!.includes(' 10.1.0.1 '), 2000);
    const before = registry.state.snapshot.version;
    assert.equal(seen.length, 1);

    // What kubelet writes all day: conditions, container statuses, restarts; and the start of a deletion.
    const status = pending.status as Record<string, unknown>;
    api.apply({ ...pending, status: { ...status, conditions: [{ type: 'Ready', status: 'False' }] } });
    api.apply({ ...pending, status: { ...status, containerStatuses: [{ name: 'app', restartCount: 1 }] } });
    api.apply({ ...pending, metadata: { ...pending.metadata, deletionTimestamp: '2024-01-01T00:00:00Z' } });
    // A change after them, on the same watch: once it is seen, so were they.
    api.apply(podWithPorts('reviews-v2', '10.1.0.2', 'v2', []));
    const marked = await states.until('the marker Pod', (x) => workloads(x).length === 3, 2000);
    assert.equal(seen.length, 2, "one new state: the marker's");
    assert.notEqual(marked.snapshot.version, before);
    assert.deepEqual(marked.snapshot.workloads.find((w) => w.name === 'reviews-v1')?.addresses, ['10.1.0.1']);

    api.apply(podWithPorts('reviews-v1', '10.1.0.9', 'v1b', [{ name: 'http-web', containerPort: 8090 }]));
    const moved = await states.until('the new IP, labels and port', (x) =>
      workloads(x).includes('Pod shop/reviews-v1 10.1.0.9 reviews http-web=8090/TCP'),
    );
    assert.deepEqual(moved.snapshot.workloads.find((w) => w.name === 'reviews-v1')?.labels, {
      app: 'reviews',
      version: 'v1b',
    });
    // Finished (a Job's Pod): no longer a workload, though the object remains.
    api.apply({ ...pending, status: { phase: 'Succeeded', podIP: '10.1.0.1' } });
    await states.until('the finished Pod gone', (x) => !workloads(x).some((w) => w.includes('reviews-v1')));
  } finally {
    stop();
    await registry.close();
  }
});

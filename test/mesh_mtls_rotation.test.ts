// Certificate rotation under load: with 60-second workload certificates, both sidecars renew theirs at about half
// their life while app A calls B through them without a pause for three minutes; A's connections to B are renewed
// every 25 requests (DestinationRule), so new mTLS handshakes keep happening with whatever certificates are
// current. Every request must succeed.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sleep } from './support/child.js';
import { eventually, FQDN_B, type MtlsMesh, startMtlsMesh } from './support/mtls_mesh.js';

const LOAD_MS = 180_000;

let mesh: MtlsMesh;

before(async () => {
  mesh = await startMtlsMesh({ controlPlaneArgs: ['--cert-ttl', '60s'] });
});

after(async () => {
  await mesh?.close();
});

/** The serial numbers of the workload certificates a sidecar's TLS contexts hold now. */
async function serials(adminUrl: string): Promise<string[]> {
  const doc = (await (await fetch(`${adminUrl}/certs`)).json()) as {
    certificates: { cert_chain?: { serial_number: string; subject_alt_names?: { uri?: string }[] }[] }[];
  };
  const out = new Set<string>();
  for (const c of doc.certificates)
    for (const cert of c.cert_chain ?? [])
      if (cert.subject_alt_names?.some((s) => s.uri?.startsWith('spiffe://'))) out.add(cert.serial_number);
  return [...out];
}

test('60-second certificates rotate at least twice in 3 minutes of load, and no request fails', {
  timeout: 300_000,
}, async () => {
  mesh.writeMesh([
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: 'b', namespace: 'backend' },
      spec: { host: FQDN_B, trafficPolicy: { connectionPool: { http: { maxRequestsPerConnection: 25 } } } },
    },
  ]);
  await eventually('A to reach B', async () => (await mesh.callB()).status === 200);

  const seen = { a: new Set<string>(), b: new Set<string>() };
  const failures: string[] = [];
  const statuses: Record<number, number> = {};
  let stopped = false;
  const worker = async () => {
    while (!stopped) {
      try {
        const r = await mesh.callB('/load');
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status !== 200) failures.push(`${r.status} ${r.body.slice(0, 200)}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
      await sleep(5);
    }
  };
  const watch = async () => {
    while (!stopped) {
      for (const s of await serials(mesh.a.adminUrl)) seen.a.add(s);
      for (const s of await serials(mesh.b.adminUrl)) seen.b.add(s);
      await sleep(2000);
    }
  };
  const running = Promise.all([worker(), worker(), watch()]);
  await sleep(LOAD_MS);
  stopped = true;
  await running;

  const total =
    Object.values(statuses).reduce((s, n) => s + n, 0) + failures.filter((f) => !/^\d/.test(f)).length;
  assert.ok(total > 1000, `only ${total} requests were made`);
  assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${total} requests failed`);
  // Three certificates or more each: the first and at least two rotations.
  assert.ok(seen.a.size >= 3, `sidecar A held ${seen.a.size} certificates: ${[...seen.a]}`);
  assert.ok(seen.b.size >= 3, `sidecar B held ${seen.b.size} certificates: ${[...seen.b]}`);
});

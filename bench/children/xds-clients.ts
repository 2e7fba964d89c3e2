// Child process of `npm run bench:xds`: drives a share of the simulated ADS clients, told what to do over IPC.

import { clock, SimulatedProxy, warmUp } from '../xds-client.js';
import { type MeshShape, proxyNode } from '../xds-mesh.js';

/** Messages from the harness. */
export type WorkerCommand =
  | { op: 'start'; port: number; from: number; count: number; shape: MeshShape; timeoutMs: number }
  | { op: 'watch'; address: string; timeoutMs: number }
  | { op: 'stop' };

/** Messages to the harness. Times are `clock()` values (ms); null for a client that did not get there. */
export type WorkerReport =
  | { op: 'synced'; at: (number | null)[]; errors: string[] }
  | { op: 'ready' }
  | { op: 'watching' }
  | { op: 'converged'; at: (number | null)[]; errors: string[] };

let clients: SimulatedProxy[] = [];

const send = (m: WorkerReport): void => void process.send?.(m);

function errorsOf(): string[] {
  const seen = new Map<string, number>();
  for (const c of clients)
    if (c.error !== undefined) seen.set(c.error.message, (seen.get(c.error.message) ?? 0) + 1);
  return [...seen].map(([m, n]) => `${n} x ${m}`);
}

/** Resolves with each promise's time, or null for those not done within `timeoutMs`. */
async function timesWithin(waits: Promise<number>[], timeoutMs: number): Promise<(number | null)[]> {
  const at: (number | null)[] = waits.map(() => null);
  const all = Promise.all(
    waits.map(async (w, i) => {
      at[i] = await w;
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((r) => {
    timer = setTimeout(r, timeoutMs);
  });
  await Promise.race([all, timeout]);
  clearTimeout(timer);
  return at;
}

process.on('message', (m: WorkerCommand) => {
  void (async () => {
    switch (m.op) {
      case 'start': {
        for (let i = m.from; i < m.from + m.count; i++)
          clients.push(new SimulatedProxy(m.port, proxyNode(i, m.shape)));
        const at = await timesWithin(
          clients.map((c) => c.synced.then(clock)),
          m.timeoutMs,
        );
        send({ op: 'synced', at, errors: errorsOf() });
        return;
      }
      case 'watch': {
        const waits = clients.map((c) => new Promise<number>((resolve) => c.expect(m.address, resolve)));
        send({ op: 'watching' });
        const at = await timesWithin(waits, m.timeoutMs);
        send({ op: 'converged', at, errors: errorsOf() });
        return;
      }
      case 'stop':
        for (const c of clients) c.close();
        clients = [];
        process.exit(0);
    }
  })();
});
process.on('disconnect', () => process.exit(0));
// The protos load before the harness starts its clock: start-up is not part of the sync time.
warmUp();
send({ op: 'ready' });

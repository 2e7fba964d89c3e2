// Child process: the gRPC load client. Keeps a fixed number of unary calls in flight over a few channels for
// a warm-up, then for the measured window; prints `measure begin`, `measure end`, then one JSON summary line.

import { createHistogram, performance } from 'node:perf_hooks';
import { Client, credentials, type ServiceError } from '@grpc/grpc-js';
import { REQUEST, UNARY } from '../grpc-service.js';

const [port, channels, calls, durationS, warmupS] = process.argv.slice(2).map(Number) as [
  number,
  number,
  number,
  number,
  number,
];

// grpc-js shares one connection between clients of the same target unless each has its own subchannel pool.
const clients = Array.from(
  { length: channels },
  () =>
    new Client(`127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }),
);

const latency = createHistogram();
let completed = 0;
let errors = 0;
let firstError: string | undefined;
const beginAt = performance.now() + warmupS * 1000;
const endAt = beginAt + durationS * 1000;

// The lines tell the harness when to read the target's CPU time, so it covers the same window as the count.
const begin = setTimeout(() => process.stdout.write('measure begin\n'), warmupS * 1000);
const end = setTimeout(() => process.stdout.write('measure end\n'), (warmupS + durationS) * 1000);

/** One of the `calls` loops: issues a call, waits for it, issues the next, until the window is over. */
function loop(client: Client, done: () => void): void {
  const sentAt = performance.now();
  client.makeUnaryRequest(
    UNARY.path,
    UNARY.requestSerialize,
    UNARY.responseDeserialize,
    REQUEST,
    (err: ServiceError | null) => {
      const now = performance.now();
      const inWindow = now >= beginAt && now <= endAt;
      if (err) {
        if (inWindow) errors++;
        firstError ??= err.message;
      } else if (inWindow) {
        completed++;
        latency.record(Math.max(1, Math.round((now - sentAt) * 1e6)));
      }
      if (now > endAt) return done();
      // A target that fails every call at once must not turn this loop into a busy spin.
      if (err) setTimeout(() => loop(client, done), 10);
      else loop(client, done);
    },
  );
}

/** Prints the summary and exits; also reached when calls stop completing (a stuck target). */
function finish(): void {
  clearTimeout(begin);
  clearTimeout(end);
  for (const c of clients) c.close();
  const summary = {
    calls: completed,
    seconds: durationS,
    p50Us: completed > 0 ? Math.round(latency.percentile(50) / 1000) : undefined,
    p99Us: completed > 0 ? Math.round(latency.percentile(99) / 1000) : undefined,
    errors,
    firstError,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(0);
}

setTimeout(finish, (warmupS + durationS + 5) * 1000).unref();
await Promise.all(
  Array.from({ length: calls }, (_, i) => new Promise<void>((done) => loop(clients[i % channels]!, done))),
);
finish();

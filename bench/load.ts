// HTTP load generation: wrk when installed (pinned to the load core), autocannon's programmatic API otherwise.

import type { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import { spawnManaged, which } from './proc.js';

/** One measurement; `rate` is requests/s for HTTP and round trips/s or MB/s for TCP scenarios. */
export interface LoadResult {
  rate: number;
  /** Median latency in µs (absent for bulk throughput). */
  p50Us?: number;
  /** 90th percentile latency in µs (fixed-rate load only). */
  p90Us?: number;
  /** 99th percentile latency in µs (absent for bulk throughput). */
  p99Us?: number;
  /** 99.9th percentile and maximum latency in µs (fixed-rate load only). */
  p999Us?: number;
  maxUs?: number;
  /** Completed requests (or round trips, or bytes for bulk). */
  count: number;
  /** Socket errors, timeouts and non-2xx responses. */
  errors: number;
  /** CPU time the target's processes spent per request or round trip, in µs (absent for bulk and direct). */
  cpuUsPerOp?: number;
  /** The same per root process when a target has several (a sidecar pair: client, server). */
  cpuUsPerOpEach?: number[];
  /** Fixed-rate load: requests dispatched in the window, how many waited for a busy connection, scheduler lag. */
  fixedRate?: { sent: number; queued: number; dispatchLagP99Us: number };
}

export type LoadTool = 'wrk' | 'autocannon';

/**
 * Marks the measured part of a load run so the target's CPU time covers the same window as the count.
 * The harness calls `begin` before and `end` after a run; a tool with a warm-up of its own calls them again
 * when its measured window starts and ends.
 */
export interface MeasureWindow {
  begin(): void;
  end(): void;
}

const wrkPath = which('wrk');

/** wrk when present unless `preferred` asks for autocannon. */
export function chooseTool(preferred: string | undefined): LoadTool {
  if (preferred === 'autocannon') return 'autocannon';
  if (preferred === 'wrk' && wrkPath === undefined)
    throw new Error('BENCH_TOOL=wrk but wrk is not installed');
  return wrkPath !== undefined ? 'wrk' : 'autocannon';
}

export interface HttpLoadOptions {
  url: string;
  connections: number;
  durationS: number;
  /** Core wrk is pinned to; autocannon runs in this (already pinned) process. */
  cpu: number | undefined;
  /** Directory for wrk's reporting script. */
  tmpDir: string;
}

export function httpLoad(tool: LoadTool, opts: HttpLoadOptions): Promise<LoadResult> {
  return tool === 'wrk' ? wrkLoad(opts) : autocannonLoad(opts);
}

// wrk hands `done` its own histogram (µs); printing JSON avoids parsing its human-readable units.
const WRK_SCRIPT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"durationUs":%d,"p50":%d,"p99":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
`;

interface WrkSummary {
  requests: number;
  durationUs: number;
  p50: number;
  p99: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

async function wrkLoad(opts: HttpLoadOptions): Promise<LoadResult> {
  if (wrkPath === undefined) throw new Error('wrk not installed');
  const script = join(opts.tmpDir, 'wrk-report.lua');
  writeFileSync(script, WRK_SCRIPT);
  const args = [
    '-t1',
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    opts.url,
  ];
  const proc = spawnManaged('wrk', wrkPath, args, opts.cpu);
  const killer = setTimeout(() => void proc.stop(), (opts.durationS + 20) * 1000);
  await new Promise<void>((done) => {
    if (proc.exited !== undefined) done();
    else proc.child.once('exit', () => done());
  });
  clearTimeout(killer);
  const out = proc.output();
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined) throw new Error(`wrk: ${out.trim().split('\n').at(-1) ?? 'no output'}`);
  const s = JSON.parse(line) as WrkSummary;
  return {
    rate: s.requests / (s.durationUs / 1e6),
    p50Us: s.p50,
    p99Us: s.p99,
    count: s.requests,
    errors: s.connect + s.read + s.write + s.status + s.timeout,
  };
}

/** The slice of autocannon's result this harness reads (the package ships no types). */
interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  requests: { total: number };
}

/** A running autocannon job: an emitter of per-response events that is also a promise of the result. */
type AutocannonJob = EventEmitter & PromiseLike<AutocannonResult>;
type Autocannon = (opts: Record<string, unknown>) => AutocannonJob;

async function autocannonLoad(opts: HttpLoadOptions): Promise<LoadResult> {
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const job = autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    pipelining: 1,
    timeout: 5,
  });
  // autocannon's own histogram holds whole milliseconds; record the exact times (ms floats) in ns instead.
  const latency = createHistogram();
  job.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latency.record(Math.max(1, Math.round(ms * 1e6)));
  });
  const r = await job;
  return {
    rate: r.requests.total / r.duration,
    p50Us: Math.round(latency.percentile(50) / 1000),
    p99Us: Math.round(latency.percentile(99) / 1000),
    count: r.requests.total,
    errors: r.errors + r.timeouts + r.non2xx,
  };
}

// HTTP/2 load generation with h2load (h2c prior knowledge, pinned to the load core); latency from its per-request log.

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createHistogram } from 'node:perf_hooks';
import type { LoadResult, MeasureWindow } from './load.js';
import { runMeasured, which } from './proc.js';

const h2loadPath = which('h2load');

/** Why the HTTP/2 scenario cannot run here, or undefined. */
export const h2loadMissing = (): string | undefined =>
  h2loadPath === undefined ? 'h2load not installed (apt-get install nghttp2-client)' : undefined;

export interface H2LoadOptions {
  url: string;
  connections: number;
  /** Concurrent streams per connection (`-m`). */
  streams: number;
  durationS: number;
  /** h2load's own warm-up on the same connections before the measured window (not counted). */
  warmupS: number;
  cpu: number | undefined;
  /** Directory for the per-request log. */
  tmpDir: string;
  window: MeasureWindow;
}

/** What h2load's text summary says; every field the harness needs, whatever the line order. */
export interface H2loadSummary {
  /** Requests per second over the main duration (h2load leaves the warm-up out). */
  rate: number;
  succeeded: number;
  /** Failed requests: network errors, resets, timeouts and HTTP status >= 400 (h2load's `failed`). */
  failed: number;
}

/** Parses h2load's summary; undefined when the `finished in` line is missing (h2load failed). */
export function parseH2loadSummary(text: string): H2loadSummary | undefined {
  const finished = /^finished in [\d.]+\w*, ([\d.]+) req\/s/m.exec(text);
  if (finished === null) return undefined;
  const count = (label: string): number => {
    const m = new RegExp(`^requests:.*?(\\d+) ${label}\\b`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  return {
    rate: Number(finished[1]),
    succeeded: count('succeeded'),
    failed: count('failed'),
  };
}

/** p50 and p99 in µs from h2load's `--log-file` rows (start µs, status, µs until the response ended). */
function logPercentiles(file: string): { p50Us: number; p99Us: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const histogram = createHistogram();
  let n = 0;
  for (const line of text.split('\n')) {
    const us = Number(line.split('\t')[2]);
    if (!Number.isFinite(us) || line === '') continue;
    histogram.record(Math.max(1, Math.round(us)));
    n++;
  }
  return n === 0 ? undefined : { p50Us: histogram.percentile(50), p99Us: histogram.percentile(99) };
}

/** Runs h2load once: `-c connections -m streams`, `--warm-up-time`, then `-D duration`. */
export async function h2Load(opts: H2LoadOptions): Promise<LoadResult> {
  if (h2loadPath === undefined) throw new Error('h2load not installed');
  const log = join(opts.tmpDir, 'h2load-requests.tsv');
  rmSync(log, { force: true });
  const args = [
    `--clients=${opts.connections}`,
    `--max-concurrent-streams=${opts.streams}`,
    `--duration=${Math.round(opts.durationS * 1000)}ms`,
    `--log-file=${log}`,
    opts.url,
  ];
  if (opts.warmupS > 0) args.unshift(`--warm-up-time=${Math.round(opts.warmupS * 1000)}ms`);
  // h2load flushes these lines as they happen.
  const marks = { begin: 'Main benchmark duration is started', end: 'Main benchmark duration is over' };
  const { out, proc } = await runMeasured('h2load', h2loadPath, args, { ...opts, marks });
  const summary = parseH2loadSummary(out);
  if (summary === undefined) {
    throw new Error(`h2load: ${proc.output().trim().split('\n').at(-1) ?? 'no output'}`);
  }
  if (summary.succeeded === 0) {
    throw new Error(`h2load: no successful h2c request in ${opts.durationS}s (${summary.failed} failed)`);
  }
  // Without the per-request log (h2load prints no percentiles) the latency columns stay empty.
  const latency = logPercentiles(log);
  rmSync(log, { force: true });
  return { rate: summary.rate, ...latency, count: summary.succeeded, errors: summary.failed };
}

// Fixed-rate HTTP/1.1 load (the mesh scenario): runs the open-loop client (children/rate-load.ts) on the load core.

import { join } from 'node:path';
import type { RateLoadArgs, RateLoadSummary } from './children/rate-load.js';
import type { LoadResult, MeasureWindow } from './load.js';
import { benchDistDir, CHILD_MARKS, lastJsonLine, runMeasured } from './proc.js';

export interface RateLoadOptions extends RateLoadArgs {
  cpu: number | undefined;
  window: MeasureWindow;
}

export async function rateLoad(opts: RateLoadOptions): Promise<LoadResult> {
  const args: RateLoadArgs = {
    port: opts.port,
    path: opts.path,
    rate: opts.rate,
    connections: opts.connections,
    warmupS: opts.warmupS,
    durationS: opts.durationS,
  };
  const script = join(benchDistDir, 'children', 'rate-load.js');
  const { out, proc } = await runMeasured('rate-load', process.execPath, [script, JSON.stringify(args)], {
    ...opts,
    marks: CHILD_MARKS,
  });
  const s = JSON.parse(lastJsonLine('rate-load', out, proc)) as RateLoadSummary;
  if (s.completed === 0)
    throw new Error(`no successful request (${s.errors} errors: ${s.firstError ?? 'none'})`);
  const r: LoadResult = {
    rate: s.completed / s.seconds,
    count: s.completed,
    errors: s.errors,
    fixedRate: { sent: s.sent, queued: s.queued, dispatchLagP99Us: s.dispatchLagP99Us },
  };
  if (s.p50Us !== undefined) r.p50Us = s.p50Us;
  if (s.p90Us !== undefined) r.p90Us = s.p90Us;
  if (s.p99Us !== undefined) r.p99Us = s.p99Us;
  if (s.p999Us !== undefined) r.p999Us = s.p999Us;
  if (s.maxUs !== undefined) r.maxUs = s.maxUs;
  return r;
}

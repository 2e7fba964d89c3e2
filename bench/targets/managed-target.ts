// Turns a started child process into a RunningTarget once it is ready, or cleans it up and rethrows.

import { lastLine, type Managed, type Readiness, waitReady } from '../proc.js';
import type { Endpoints, RunningTarget } from './target.js';

/** Waits for `proc` to be ready and wraps it; on failure stops it and rethrows the reason. */
export async function runningTarget(
  proc: Managed,
  endpoints: Endpoints,
  ready: Readiness,
  timeoutMs?: number,
): Promise<RunningTarget> {
  try {
    await waitReady(proc, ready, timeoutMs);
  } catch (err) {
    await proc.stop();
    throw err;
  }
  return {
    endpoints,
    pid: proc.pid,
    health: () =>
      proc.exited === undefined
        ? undefined
        : `${proc.name} exited (${proc.exited.signal ?? `code ${proc.exited.code}`}): ${lastLine(proc.output())}`,
    output: () => proc.output(),
    stop: () => proc.stop(),
  };
}

// The monotonic clock of the data plane: durations, latency histograms and timers all read it.

// The global `performance` is a lazy accessor: every use would run a getter.
import { performance } from 'node:perf_hooks';

/** Milliseconds on the monotonic clock. */
export function monotonicMs(): number {
  return performance.now();
}

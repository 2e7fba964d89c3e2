// Gives memory back to the system when the sidecar is quiet: once when it goes LIVE (the garbage of loading and
// translating its config), and again whenever it has been idle for a while after its memory grew (a burst of
// traffic, a config update). V8 alone would keep the start-up garbage for ~8 s, and what a burst grew until its
// memory reducer next runs, which after load it does only on some of its own schedules.

/** Releasing blocks the event loop for a full collection (20–60 ms): only a process this quiet does it. */
const QUIET_CPU_SHARE = 0.01;
/** Growth of the resident set since the last release worth another; under it a release frees too little. */
const MIN_GROWTH_BYTES = 2 * 1024 * 1024;

export interface MemoryReleaseOptions {
  /** How long the process must have been quiet (under 1 % of a core) before memory is released again. */
  readonly idleMs: number;
}

/** What one release did, for the log. */
export interface Released {
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly ms: number;
}

export class MemoryRelease {
  private readonly timer: NodeJS.Timeout;
  private cpu = process.cpuUsage();
  private rssAfterRelease = 0;

  /** `release` is the addon's (a collection that returns memory); `onRelease` hears of each one. */
  constructor(
    private readonly release: () => void,
    opts: MemoryReleaseOptions,
    private readonly onRelease: (r: Released) => void,
  ) {
    this.timer = setInterval(() => this.check(opts.idleMs), opts.idleMs);
    this.timer.unref();
  }

  /** Releases now: start-up is over. */
  releaseNow(): void {
    const rssBefore = process.memoryUsage.rss();
    const t0 = process.hrtime.bigint();
    this.release();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    this.rssAfterRelease = process.memoryUsage.rss();
    // The release's own CPU time is not the traffic's: the next interval is measured from here.
    this.cpu = process.cpuUsage();
    this.onRelease({ rssBefore, rssAfter: this.rssAfterRelease, ms });
  }

  private check(intervalMs: number): void {
    const used = process.cpuUsage(this.cpu);
    this.cpu = process.cpuUsage();
    const quiet = (used.user + used.system) / 1000 < intervalMs * QUIET_CPU_SHARE;
    if (quiet && process.memoryUsage.rss() > this.rssAfterRelease + MIN_GROWTH_BYTES) this.releaseNow();
  }

  close(): void {
    clearInterval(this.timer);
  }
}

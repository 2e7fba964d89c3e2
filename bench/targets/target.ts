// The contract every benchmarked peer implements, and what the harness hands it when starting.

/** Shared facts about one benchmark run, given to every target's `start`. */
export interface BenchEnv {
  /** Private temp directory for this run (config files, pid files, logs). */
  readonly tmpDir: string;
  /** Core the proxy under test is pinned to, or undefined when pinning is off. */
  readonly proxyCpu: number | undefined;
  /** The HTTP/1.1 upstream every proxy forwards to. */
  readonly upstreamPort: number;
  /** The TCP echo server every tcp proxy forwards to. */
  readonly echoPort: number;
}

/** Where a started target accepts traffic; a missing port means the target does not do that protocol. */
export interface Endpoints {
  readonly httpPort?: number;
  readonly tcpPort?: number;
}

/** A started target. */
export interface RunningTarget {
  readonly endpoints: Endpoints;
  /** Root process whose tree is measured for RSS; undefined when nothing runs (direct). */
  readonly pid?: number;
  /** Why the target is no longer usable (its process exited), or undefined while it is healthy. */
  health(): string | undefined;
  /** The last few KiB the target's processes printed, for diagnosing a failure. */
  output?(): string;
  /** Stops every process of the target; safe to call twice. */
  stop(): Promise<void>;
}

/** A peer the benchmark can run: Remora, nginx, haproxy, ... */
export interface Target {
  readonly name: string;
  /** A reason the target cannot run on this machine (binary not installed), or undefined. */
  unavailable(): string | undefined;
  /**
   * Starts the target and resolves once it accepts traffic on every endpoint.
   * Rejects with a short human-readable reason, leaving no process behind.
   */
  start(env: BenchEnv): Promise<RunningTarget>;
}

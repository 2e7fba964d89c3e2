// The contract every benchmarked peer implements, and what the harness hands it when starting.

/**
 * What a scenario speaks to a target: HTTP/1.1, TCP echo, h2c (prior knowledge), gRPC over h2c, or HTTP/1.1 at a
 * fixed rate into a path that ends at the HTTP/1.1 upstream (the mesh scenario).
 */
export type Protocol = 'http' | 'tcp' | 'h2' | 'grpc' | 'mesh';

/** Shared facts about one benchmark run, given to every target's `start`. */
export interface BenchEnv {
  /** Private temp directory for this run (config files, pid files, logs). */
  readonly tmpDir: string;
  /** Protocols the selected scenarios use: a target opens h2c and gRPC endpoints only when they are here. */
  readonly protocols: ReadonlySet<Protocol>;
  /** Core the proxy under test is pinned to, or undefined when pinning is off. */
  readonly proxyCpu: number | undefined;
  /** The HTTP/1.1 upstream every proxy forwards to (also for h2c downstream, as nginx's proxy_pass does). */
  readonly upstreamPort: number;
  /** The TCP echo server every tcp proxy forwards to. */
  readonly echoPort: number;
  /** The h2c upstream serving the same body (direct, remora-h2up); only when an h2c scenario runs. */
  readonly h2UpstreamPort?: number;
  /** The grpc-js server; only when a gRPC scenario runs. */
  readonly grpcPort?: number;
}

/** Where a started target accepts traffic; a missing port means the target does not do that protocol. */
export interface Endpoints {
  readonly httpPort?: number;
  readonly tcpPort?: number;
  /** h2c with prior knowledge, forwarding to the HTTP/1.1 upstream (or the h2c one, per target). */
  readonly h2Port?: number;
  /** h2c forwarding to the grpc-js server. */
  readonly grpcPort?: number;
  /** HTTP/1.1 into the path the mesh scenario measures: a sidecar pair, one proxy, or the upstream itself. */
  readonly meshPort?: number;
}

/** A started target. */
export interface RunningTarget {
  readonly endpoints: Endpoints;
  /** Root process whose tree is measured for RSS; undefined when nothing runs (direct). */
  readonly pid?: number;
  /** Every root process when there are several (a sidecar pair, client first); CPU and RSS add them up. */
  readonly pids?: readonly number[];
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
  /** Every protocol the target may serve; one not started when no selected scenario uses any of them. */
  readonly protocols: readonly Protocol[];
  /** A reason the target cannot run on this machine (binary not installed), or undefined. */
  unavailable(): string | undefined;
  /**
   * Starts the target and resolves once it accepts traffic on every endpoint.
   * Rejects with a short human-readable reason, leaving no process behind.
   */
  start(env: BenchEnv): Promise<RunningTarget>;
}

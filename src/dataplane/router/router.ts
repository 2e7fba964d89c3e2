// The router filter: sends one downstream request to its cluster, with retries, timeouts and limits.

import type { ForwardActionConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { type FailureKind, Failures } from '../errors.js';
import type { IstioAlpnFilter } from '../http/alpn_filter.js';
import { grpcStatusOf } from '../http/grpc.js';
import { type HeaderList, headerFirst, headerSet } from '../http/header_list.js';
import type { HeaderMutator, SubstitutionContext } from '../http/header_mutation.js';
import type { DownstreamStream } from '../http/stream.js';
import type { StreamInfo } from '../observe/stream_info.js';
import { Deadline } from '../timers.js';
import { countRequestStarted } from '../upstream/accounting.js';
import type { Cluster } from '../upstream/cluster.js';
import type { UpstreamController, UpstreamError } from '../upstream/h1_connection.js';
import type { Host } from '../upstream/host.js';
import { chooseUpstream, dropOverload, isRefusal, requestSelection } from './admission.js';
import { Attempt, type AttemptOwner } from './attempt.js';
import type { ReplayableBody } from './body_buffer.js';
import type { AttemptFailure, CompiledRetryPolicy } from './retry_state.js';
import type { CompiledRoute } from './route_table.js';

/** Everything the router needs from the connection manager for one request. */
export interface ForwardContext {
  /** The downstream request and its response. */
  readonly stream: DownstreamStream;
  readonly info: StreamInfo;
  readonly route: CompiledRoute;
  /** Header mutations, most specific first: weighted cluster, route, virtual host, route configuration. */
  readonly mutators: readonly HeaderMutator[];
  readonly action: ForwardActionConfig;
  readonly cluster: Cluster;
  readonly retryPolicy: CompiledRetryPolicy | undefined;
  readonly hashKey: bigint | undefined;
  /** Upstream path after rewrites. */
  readonly path: string;
  readonly headers: HeaderList;
  /** undefined when the request has no body. */
  readonly body: ReplayableBody | undefined;
  readonly subst: SubstitutionContext;
  readonly grpc: boolean;
  /** The downstream's scheme: "http" or "https". */
  readonly scheme: string;
  /** A gRPC call's grpc-timeout (after max and offset): replaces the route timeout and runs from the start. */
  readonly grpcTimeoutMs: number | undefined;
  /** The HCM's istio.alpn filter; undefined (the usual case) costs nothing. */
  readonly alpn: IstioAlpnFilter | undefined;
  /** Called once with the final outcome: a response committed downstream, or a local failure to send. */
  onLocalFailure(kind: FailureKind, message: string): void;
  /** Adds proxy-set response headers (server, connection: close while draining ...). */
  decorateResponse(headers: HeaderList): void;
}

enum State {
  Attempting = 0,
  BackingOff = 1,
  Streaming = 2,
  Done = 3,
}

/** One request's journey through the router; created per request, dropped at the end. */
export class Forwarder implements AttemptOwner {
  private state = State.Attempting;
  private attempt = 0;
  private retriesUsed = 0;
  /** Free retries taken for the keep-alive race, and how many it may take (see attemptError). */
  private raceRetries = 0;
  private raceBudget: number | undefined;
  private current: Attempt | undefined;
  private host: Host | undefined;
  private attemptStart = 0;
  private pending = false;
  private globalTimer: Deadline | undefined;
  private tryTimer: Deadline | undefined;
  private backoffTimer: NodeJS.Timeout | undefined;
  private lastFailure: { kind: FailureKind; message: string } | undefined;
  private holdingRetryCount = false;
  private awaitingDrain = false;

  constructor(private readonly ctx: ForwardContext) {}

  start(): void {
    const dropped = dropOverload(this.ctx.cluster);
    if (dropped !== undefined) return this.fail(dropped.kind, dropped.message);
    const { body, action } = this.ctx;
    if (this.ctx.grpcTimeoutMs !== undefined) {
      // A deadline the client set: it counts from when the call began, whatever the body does.
      this.armGlobalTimer(this.ctx.grpcTimeoutMs);
    } else if (action.timeoutMs > 0) {
      // Envoy starts the route timeout once the whole downstream request has been read.
      if (!body || body.complete) this.armGlobalTimer(action.timeoutMs);
      else body.onComplete(() => this.armGlobalTimer(action.timeoutMs));
    }
    this.ctx.stream.onDone((aborted) => {
      if (aborted) this.onDownstreamClose();
    });
    this.sendAttempt();
  }

  private armGlobalTimer(ms: number): void {
    if (this.state === State.Done) return;
    this.globalTimer = new Deadline(this.onGlobalTimeout);
    this.globalTimer.start(ms);
  }

  private sendAttempt(): void {
    const { cluster, info } = this.ctx;
    const c = this.ctx;
    const host = chooseUpstream(cluster, requestSelection(cluster, c.hashKey, c.stream, c.headers));
    if (isRefusal(host)) return this.fail(host.kind, host.message);
    const stats = cluster.stats;
    const breaker = cluster.breaker;
    this.attempt++;
    info.attemptCount = this.attempt;
    info.upstreamHost = host.key;
    this.host = host;
    this.pending = true;
    this.attemptStart = monotonicMs();
    countRequestStarted(stats, breaker, host);
    const perTry = this.ctx.retryPolicy?.config.perTryTimeoutMs ?? 0;
    if (perTry > 0) {
      this.tryTimer = new Deadline(this.onPerTryTimeout);
      this.tryTimer.start(perTry);
    }
    const body = this.ctx.body;
    const attempt = new Attempt(this);
    this.current = attempt;
    // Kept from the start so abandoning a queued or connecting attempt takes it out of the pool's hands.
    const protocol = this.ctx.stream.protocol;
    const alpn = this.ctx.alpn === undefined ? undefined : this.ctx.alpn.choose(cluster, protocol);
    attempt.controller = cluster.pool(host, protocol, alpn).dispatch(
      {
        path: this.ctx.path,
        method: this.ctx.stream.method,
        scheme: this.ctx.scheme,
        headers: this.ctx.headers,
        body,
      },
      attempt,
    );
  }

  // ---- what the current attempt reports

  attemptStarted(): void {
    this.leavePending();
  }

  attemptResponse(statusCode: number, headers: HeaderList, reason: string): void {
    if (this.state !== State.Attempting) return;
    if (statusCode < 200) return; // 1xx: Envoy answers 100-continue itself and drops the rest.
    // The retry that led to this attempt (if any) is over; its slot is free for the decision below.
    this.releaseRetryCount();
    const policy = this.ctx.retryPolicy;
    const grpcHeader = this.ctx.grpc ? headerFirst(headers, 'grpc-status') : undefined;
    const grpcStatus = grpcHeader !== undefined ? Number(grpcHeader) : undefined;
    if (policy?.retriableResponse(statusCode, grpcStatus)) {
      if (this.canRetry()) {
        this.endAttempt(statusCode);
        this.abandonCurrent('retrying');
        this.lastFailure = undefined;
        return this.scheduleRetry();
      }
      this.markRetryLimit();
    }
    this.commit(statusCode, headers, reason);
  }

  attemptData(controller: UpstreamController, chunk: Buffer): void {
    if (this.state !== State.Streaming) return;
    const stream = this.ctx.stream;
    this.ctx.info.bytesSent += chunk.length;
    if (!stream.write(chunk) && !this.awaitingDrain) {
      // One drain listener per stall, however many chunks arrive before the upstream socket stops.
      this.awaitingDrain = true;
      controller.pause();
      stream.onDrain(() => {
        this.awaitingDrain = false;
        controller.resume();
      });
    }
  }

  attemptEnd(trailers: HeaderList | undefined): void {
    if (this.state !== State.Streaming) return;
    this.current = undefined;
    this.finishAttempt(true);
    this.state = State.Done;
    this.clearTimers();
    if (this.ctx.grpc && trailers)
      this.ctx.info.grpcStatus = grpcStatusOf(trailers) ?? this.ctx.info.grpcStatus;
    this.ctx.stream.end(undefined, trailers);
  }

  attemptError(err: UpstreamError): void {
    this.current = undefined;
    if (this.state === State.Done || this.state === State.BackingOff) return;
    if (this.state === State.Streaming) {
      // The response had begun: all we can do is reset the downstream too (Envoy's UR after headers).
      this.finishAttempt(false);
      this.state = State.Done;
      this.clearTimers();
      this.ctx.info.responseFlags.push('UR');
      this.ctx.info.connectionTerminationDetails = err.message;
      this.ctx.cluster.stats.upstream_rq_rx_reset.inc();
      this.ctx.stream.destroy();
      return;
    }
    const failure: AttemptFailure =
      err.kind === 'connect_failure' || err.kind === 'connect_timeout' ? 'connect_failure' : 'reset';
    this.endAttempt(undefined);
    const cluster = this.ctx.cluster.config.name;
    const where = `cluster "${cluster}" host ${this.host?.key ?? '-'}`;
    if (failure === 'connect_failure') {
      this.lastFailure = {
        kind: Failures.connectFailure,
        message: `upstream connect error or disconnect/reset before headers. reset reason: connection failure (${where}: ${err.message})`,
      };
    } else if (err.kind === 'protocol_error') {
      this.lastFailure = {
        kind: Failures.upstreamProtocolError,
        message: `upstream sent a malformed response (${where}): ${err.message}`,
      };
    } else {
      this.ctx.cluster.stats.upstream_rq_rx_reset.inc();
      this.lastFailure = {
        kind: Failures.upstreamReset,
        message: `upstream connect error or disconnect/reset before headers. reset reason: remote reset (${where}: ${err.message})`,
      };
    }
    // The keep-alive race: a reused connection the upstream closed before answering gets a free retry. The retry
    // may land on another pooled connection that went stale at the same moment, so retry while failures are on
    // reused connections, at most once per connection the host had open at the first such failure.
    if (failure === 'reset' && err.reused && err.beforeResponse && this.bodyReplayable()) {
      this.raceBudget ??= Math.max(1, this.host?.counters.cxActive ?? 0);
      if (this.raceRetries < this.raceBudget) {
        this.raceRetries++;
        return this.sendAttempt();
      }
    }
    if (this.ctx.retryPolicy?.retriableFailure(failure)) {
      if (this.canRetry()) return this.scheduleRetry();
      this.markRetryLimit();
    }
    this.failWithLast();
  }

  // ---- attempts, retries and timeouts

  private maxRetries(): number {
    return this.ctx.retryPolicy?.config.numRetries ?? 0;
  }

  private bodyReplayable(): boolean {
    return this.ctx.body === undefined || this.ctx.body.replayable;
  }

  private abandonCurrent(reason: string): void {
    const a = this.current;
    this.current = undefined;
    a?.abandon(reason);
  }

  private canRetry(): boolean {
    if (this.retriesUsed >= this.maxRetries()) return false;
    if (!this.bodyReplayable()) return false;
    const cluster = this.ctx.cluster;
    if (!cluster.breaker.canRetry()) {
      cluster.stats.upstream_rq_retry_overflow.inc();
      return false;
    }
    return true;
  }

  private markRetryLimit(): void {
    if (this.retriesUsed >= this.maxRetries() && this.maxRetries() > 0) {
      this.ctx.cluster.stats.upstream_rq_retry_limit_exceeded.inc();
      if (!this.ctx.info.responseFlags.includes('URX')) this.ctx.info.responseFlags.push('URX');
    }
  }

  private scheduleRetry(): void {
    const policy = this.ctx.retryPolicy!;
    const cluster = this.ctx.cluster;
    this.retriesUsed++;
    cluster.stats.upstream_rq_retry.inc();
    cluster.stats.upstream_rq_retry_backoff_exponential.inc();
    cluster.breaker.retries++;
    this.holdingRetryCount = true;
    this.state = State.BackingOff;
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      // The retry stays outstanding (and counted against max_retries) until the retried attempt ends, as in
      // Envoy, where the next retry decision or the end of the request releases it.
      if (this.state !== State.BackingOff) return;
      this.state = State.Attempting;
      this.sendAttempt();
    }, policy.backOffMs(this.retriesUsed));
  }

  private releaseRetryCount(): void {
    if (this.holdingRetryCount) {
      this.holdingRetryCount = false;
      this.ctx.cluster.breaker.retries--;
    }
  }

  private readonly onPerTryTimeout = (): void => {
    this.tryTimer = undefined;
    if (this.state !== State.Attempting) return;
    const cluster = this.ctx.cluster;
    cluster.stats.upstream_rq_per_try_timeout.inc();
    if (this.host) this.host.counters.rqTimeout++;
    this.endAttempt(504);
    this.abandonCurrent('per-try timeout');
    this.lastFailure = {
      kind: Failures.upstreamTimeout,
      message: `upstream request timeout: cluster "${cluster.config.name}" host ${this.host?.key ?? '-'} did not answer within per_try_timeout ${this.ctx.retryPolicy?.config.perTryTimeoutMs} ms`,
    };
    if (this.ctx.retryPolicy?.retriableFailure('per_try_timeout') && this.canRetry())
      return this.scheduleRetry();
    if (this.ctx.retryPolicy?.retriableFailure('per_try_timeout')) this.markRetryLimit();
    this.failWithLast();
  };

  private readonly onGlobalTimeout = (): void => {
    this.globalTimer = undefined;
    if (this.state === State.Done) return;
    const cluster = this.ctx.cluster;
    cluster.stats.upstream_rq_timeout.inc();
    if (this.host) this.host.counters.rqTimeout++;
    if (this.state === State.Streaming) {
      this.finishAttempt(false);
      this.state = State.Done;
      this.clearTimers();
      this.ctx.info.responseFlags.push('UT');
      this.abandonCurrent('route timeout');
      this.ctx.stream.destroy();
      return;
    }
    if (this.state === State.Attempting) this.endAttempt(504);
    this.abandonCurrent('route timeout');
    const grpcTimeout = this.ctx.grpcTimeoutMs;
    this.fail(
      Failures.upstreamTimeout,
      grpcTimeout !== undefined
        ? `upstream request timeout: cluster "${cluster.config.name}" did not answer within the call's grpc-timeout of ${grpcTimeout} ms`
        : `upstream request timeout: cluster "${cluster.config.name}" did not answer within the route timeout of ${this.ctx.action.timeoutMs} ms`,
    );
  };

  private readonly onDownstreamClose = (): void => {
    if (this.state === State.Done) return;
    // The client went away before the response finished (Envoy's DC).
    if (this.state === State.Attempting || this.state === State.Streaming) this.finishAttempt(false);
    this.leavePending(); // a queued or connecting attempt holds a pending-request slot until now
    this.state = State.Done;
    this.clearTimers();
    this.releaseRetryCount();
    this.ctx.info.responseFlags.push('DC');
    this.ctx.cluster.stats.upstream_rq_tx_reset.inc();
    this.abandonCurrent('downstream disconnected');
  };

  private leavePending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.ctx.cluster.stats.upstream_rq_pending_active.dec();
    this.ctx.cluster.breaker.pendingRequests--;
  }

  /** Accounts for the end of the current attempt that produced `status` (undefined = no response). */
  private endAttempt(status: number | undefined): void {
    if (this.tryTimer) {
      this.tryTimer.cancel();
      this.tryTimer = undefined;
    }
    this.releaseRetryCount();
    this.leavePending();
    const host = this.host;
    const stats = this.ctx.cluster.stats;
    if (host) {
      host.activeRequests--;
      if (status === undefined || status >= 500) host.counters.rqError++;
      else host.counters.rqSuccess++;
    }
    stats.upstream_rq_active.dec();
    this.ctx.cluster.breaker.requests--;
    if (status !== undefined) countStatus(stats, status);
  }

  /** Ends the attempt whose response is streaming downstream. */
  private finishAttempt(complete: boolean): void {
    const stats = this.ctx.cluster.stats;
    const host = this.host;
    if (host) {
      host.activeRequests--;
      if (complete && this.ctx.info.responseCode < 500) host.counters.rqSuccess++;
      else host.counters.rqError++;
    }
    stats.upstream_rq_active.dec();
    if (complete) stats.upstream_rq_completed.inc();
    stats.upstream_rq_time.record(monotonicMs() - this.attemptStart);
    this.ctx.cluster.breaker.requests--;
    if (complete && this.attempt > 1) stats.upstream_rq_retry_success.inc();
  }

  private commit(status: number, headers: HeaderList, reason: string): void {
    const { stream, info, subst, cluster } = this.ctx;
    if (this.tryTimer) {
      this.tryTimer.cancel();
      this.tryTimer = undefined;
    }
    this.releaseRetryCount();
    this.state = State.Streaming;
    countStatus(cluster.stats, status);
    for (const m of this.ctx.mutators) m.applyResponse(headers, subst);
    const now = monotonicMs();
    info.responseStartMs = now - info.startMonotonic;
    headerSet(headers, 'x-envoy-upstream-service-time', String(Math.round(now - this.attemptStart)));
    this.ctx.decorateResponse(headers);
    info.responseCode = status;
    info.responseCodeDetails = 'via_upstream';
    if (this.ctx.grpc) info.grpcStatus = grpcStatusOf(headers);
    info.responseHeaders = headers;
    // An HTTP/1.1 upstream's trailers are dropped: its responses end without any.
    stream.writeHead(status, headers, reason, !cluster.speaksHttp2(stream.protocol));
  }

  /** No more response bytes for now: the head must not wait for body bytes that may be long in coming. */
  attemptWaiting(): void {
    if (this.state === State.Streaming) this.ctx.stream.flushHeaders();
  }

  private failWithLast(): void {
    const last = this.lastFailure ?? { kind: Failures.upstreamReset, message: 'upstream reset' };
    this.fail(last.kind, last.message);
  }

  private fail(kind: FailureKind, message: string): void {
    if (this.state === State.Done) return;
    this.state = State.Done;
    this.clearTimers();
    this.releaseRetryCount();
    this.ctx.onLocalFailure(kind, message);
  }

  private clearTimers(): void {
    this.globalTimer?.cancel();
    this.tryTimer?.cancel();
    if (this.backoffTimer) clearTimeout(this.backoffTimer);
    this.globalTimer = this.tryTimer = this.backoffTimer = undefined;
  }
}

/** upstream_rq_<class>xx for a response from the upstream (also counted by upgrades, http/upgrade.ts). */
export function countStatus(stats: Cluster['stats'], status: number): void {
  if (status < 200) stats.upstream_rq_1xx.inc();
  else if (status < 300) stats.upstream_rq_2xx.inc();
  else if (status < 400) stats.upstream_rq_3xx.inc();
  else if (status < 500) stats.upstream_rq_4xx.inc();
  else stats.upstream_rq_5xx.inc();
}

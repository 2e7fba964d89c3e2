// Decides whether a failed attempt is retried (Envoy's retry_on semantics) and how long to back off.

import type { RetryPolicyConfig } from '../../config/model.js';

/** Why an attempt failed before a usable response. */
export type AttemptFailure = 'connect_failure' | 'reset' | 'per_try_timeout' | 'refused_stream';

/** A retry policy compiled once per route. */
export class CompiledRetryPolicy {
  readonly on5xx: boolean;
  readonly onGatewayError: boolean;
  readonly onReset: boolean;
  readonly onConnectFailure: boolean;
  readonly onRetriable4xx: boolean;
  readonly onRefusedStream: boolean;
  readonly onRetriableStatus: boolean;
  readonly retriableStatus: ReadonlySet<number>;
  /** gRPC statuses (by number) that trigger a retry: cancelled 1, deadline-exceeded 4, resource-exhausted 8, internal 13, unavailable 14. */
  readonly grpcStatus: ReadonlySet<number>;

  constructor(readonly config: RetryPolicyConfig) {
    const on = new Set(config.retryOn);
    this.on5xx = on.has('5xx');
    this.onGatewayError = on.has('gateway-error');
    this.onReset = on.has('reset') || on.has('reset-before-request');
    this.onConnectFailure = on.has('connect-failure');
    this.onRetriable4xx = on.has('retriable-4xx');
    this.onRefusedStream = on.has('refused-stream');
    this.onRetriableStatus = on.has('retriable-status-codes');
    this.retriableStatus = new Set(config.retriableStatusCodes);
    const grpc: [string, number][] = [
      ['cancelled', 1],
      ['deadline-exceeded', 4],
      ['resource-exhausted', 8],
      ['internal', 13],
      ['unavailable', 14],
    ];
    this.grpcStatus = new Set(grpc.filter(([n]) => on.has(n)).map(([, c]) => c));
  }

  retriableResponse(status: number, grpcStatus: number | undefined): boolean {
    if (this.on5xx && status >= 500) return true;
    if (this.onGatewayError && (status === 502 || status === 503 || status === 504)) return true;
    if (this.onRetriable4xx && status === 409) return true;
    if (this.onRetriableStatus && this.retriableStatus.has(status)) return true;
    if (grpcStatus !== undefined && this.grpcStatus.has(grpcStatus)) return true;
    return false;
  }

  retriableFailure(f: AttemptFailure): boolean {
    switch (f) {
      case 'connect_failure':
        return this.on5xx || this.onGatewayError || this.onReset || this.onConnectFailure;
      case 'reset':
        return this.on5xx || this.onGatewayError || this.onReset;
      case 'per_try_timeout':
        return this.on5xx || this.onGatewayError;
      case 'refused_stream':
        return this.on5xx || this.onRefusedStream || this.onReset;
    }
  }

  /** Exponential back-off with full jitter: a random wait in [0, min(max, base × (2^n − 1))]. */
  backOffMs(retryNumber: number, random: () => number = Math.random): number {
    const { baseIntervalMs, maxIntervalMs } = this.config.backOff;
    const ceiling = Math.min(maxIntervalMs, baseIntervalMs * (2 ** Math.min(retryNumber, 30) - 1));
    return Math.floor(random() * (ceiling + 1));
  }
}

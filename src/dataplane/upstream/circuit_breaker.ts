// Cluster-wide resource limits (Envoy's circuit_breakers, DEFAULT priority): connections, pending, requests, retries.

import type { CircuitBreakerThresholds } from '../../config/model.js';
import { computedGauge } from '../observe/stats.js';
import type { ClusterStats } from './stats.js';

/** Owners count their resources by bumping these fields directly (a keyed `this[kind]` goes megamorphic). */
export class CircuitBreaker {
  connections = 0;
  pendingRequests = 0;
  requests = 0;
  retries = 0;

  constructor(
    readonly limits: CircuitBreakerThresholds,
    private readonly stats: ClusterStats,
  ) {
    this.publish();
  }

  canSendRequest(): boolean {
    return this.requests < this.limits.maxRequests;
  }
  canQueue(): boolean {
    return this.pendingRequests < this.limits.maxPendingRequests;
  }
  canRetry(): boolean {
    return this.retries < this.limits.maxRetries;
  }

  /** Envoy's circuit_breakers.default.* gauges, computed when stats are read rather than on every request. */
  private publish(): void {
    const s = this.stats;
    const l = this.limits;
    computedGauge(s['circuit_breakers.default.cx_open'], () =>
      this.connections >= l.maxConnections ? 1 : 0,
    );
    computedGauge(s['circuit_breakers.default.rq_pending_open'], () =>
      this.pendingRequests >= l.maxPendingRequests ? 1 : 0,
    );
    computedGauge(s['circuit_breakers.default.rq_open'], () => (this.requests >= l.maxRequests ? 1 : 0));
    computedGauge(s['circuit_breakers.default.rq_retry_open'], () => (this.retries >= l.maxRetries ? 1 : 0));
    computedGauge(s['circuit_breakers.default.remaining_cx'], () =>
      Math.max(0, l.maxConnections - this.connections),
    );
    computedGauge(s['circuit_breakers.default.remaining_pending'], () =>
      Math.max(0, l.maxPendingRequests - this.pendingRequests),
    );
    computedGauge(s['circuit_breakers.default.remaining_rq'], () =>
      Math.max(0, l.maxRequests - this.requests),
    );
    computedGauge(s['circuit_breakers.default.remaining_retries'], () =>
      Math.max(0, l.maxRetries - this.retries),
    );
  }
}

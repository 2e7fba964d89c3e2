// Cluster-wide resource limits (Envoy's circuit_breakers, DEFAULT priority): connections, pending, requests, retries.

import type { CircuitBreakerThresholds } from '../../config/model.js';
import type { ClusterStats } from './stats.js';

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

  adjust(kind: 'connections' | 'pendingRequests' | 'requests' | 'retries', delta: number): void {
    this[kind] += delta;
    this.publish();
  }

  /** Mirrors state into Envoy's circuit_breakers.default.* gauges. */
  private publish(): void {
    const s = this.stats;
    const l = this.limits;
    s['circuit_breakers.default.cx_open'].set(this.connections >= l.maxConnections ? 1 : 0);
    s['circuit_breakers.default.rq_pending_open'].set(this.pendingRequests >= l.maxPendingRequests ? 1 : 0);
    s['circuit_breakers.default.rq_open'].set(this.requests >= l.maxRequests ? 1 : 0);
    s['circuit_breakers.default.rq_retry_open'].set(this.retries >= l.maxRetries ? 1 : 0);
    s['circuit_breakers.default.remaining_cx'].set(Math.max(0, l.maxConnections - this.connections));
    s['circuit_breakers.default.remaining_pending'].set(
      Math.max(0, l.maxPendingRequests - this.pendingRequests),
    );
    s['circuit_breakers.default.remaining_rq'].set(Math.max(0, l.maxRequests - this.requests));
    s['circuit_breakers.default.remaining_retries'].set(Math.max(0, l.maxRetries - this.retries));
  }
}

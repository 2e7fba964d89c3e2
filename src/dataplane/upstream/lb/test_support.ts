// Fixtures for the load-balancer tests: hosts, a cluster config, a seeded random source and pick counting.

import assert from 'node:assert/strict';
import { DEFAULT_HTTP2 } from '../../../config/http2.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from '../../../config/load_assignment_policy.js';
import type { ClusterConfig, LbPolicy } from '../../../config/model.js';
import { xxhash64 } from './hash.js';
import type { Random } from './level.js';
import type { LbHost, LoadBalancer } from './types.js';

export interface TestHost extends LbHost {
  activeRequests: number;
  healthy: boolean;
  degraded: boolean;
}

export interface TestHostOptions {
  readonly weight?: number;
  /** Default true. */
  readonly healthy?: boolean;
  /** Default false; a degraded host is not healthy. */
  readonly degraded?: boolean;
  readonly active?: number;
}

export function host(key: string, options: TestHostOptions = {}): TestHost {
  const degraded = options.degraded ?? false;
  return {
    key,
    weight: options.weight ?? 1,
    healthy: !degraded && (options.healthy ?? true),
    degraded,
    activeRequests: options.active ?? 0,
  };
}

/** `n` hosts 10.0.<group>.<i>:8080. */
export function hosts(n: number, group = 0, options: TestHostOptions = {}): TestHost[] {
  return Array.from({ length: n }, (_, i) => host(`10.0.${group}.${i + 1}:8080`, options));
}

export function cluster(lbPolicy: LbPolicy, overrides: Partial<ClusterConfig> = {}): ClusterConfig {
  return {
    name: 'test',
    type: 'STATIC',
    connectTimeoutMs: 5000,
    lbPolicy,
    localities: [],
    loadAssignmentPolicy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    dnsRefreshRateMs: 5000,
    dnsLookupFamily: 'AUTO',
    ringHash: { minimumRingSize: 1024, maximumRingSize: 8 * 1024 * 1024 },
    maglev: { tableSize: 65537 },
    leastRequest: { choiceCount: 2 },
    upstreamIdleTimeoutMs: 3_600_000,
    maxRequestsPerConnection: 0,
    upstreamProtocol: 'HTTP1',
    http2: DEFAULT_HTTP2,
    perConnectionBufferLimitBytes: 1024 * 1024,
    upstreamBindAddresses: [],
    ...overrides,
  };
}

/** A deterministic uniform [0, 1) generator (mulberry32). */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The hash of request `i`, as a route's hash_policy would produce it. */
export function requestHash(i: number): bigint {
  return xxhash64(`session-${i}`);
}

export const NO_HASH = { hashKey: undefined } as const;

/** Share of `picks` unhashed picks that went to each host key. */
export function shares<H extends LbHost>(lb: LoadBalancer<H>, picks: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < picks; i++) {
    const h = lb.chooseHost(NO_HASH);
    const key = h === undefined ? '<none>' : h.key;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  for (const [k, v] of counts) counts.set(k, v / picks);
  return counts;
}

/** The host key chosen for each of `keys` request hashes. */
export function assignments<H extends LbHost>(lb: LoadBalancer<H>, keys: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < keys; i++) out.push(lb.chooseHost({ hashKey: requestHash(i) })?.key ?? '<none>');
  return out;
}

export function shareOf(keysByRequest: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const k of keysByRequest) counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const [k, v] of counts) counts.set(k, v / keysByRequest.length);
  return counts;
}

export function assertNear(
  actual: number | undefined,
  expected: number,
  tolerance: number,
  what: string,
): void {
  assert.ok(
    actual !== undefined && Math.abs(actual - expected) <= tolerance,
    `${what}: ${actual} is not within ${tolerance} of ${expected}`,
  );
}

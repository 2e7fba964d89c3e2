import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planPriorities } from './priority.js';
import { createLoadBalancer, LB_POLICIES } from './registry.js';
import {
  assertNear,
  assignments,
  cluster,
  host,
  hosts,
  NO_HASH,
  requestHash,
  seededRandom,
  shareOf,
  shares,
  type TestHost,
} from './test_support.js';

const PICKS = 100_000;

/** `healthy` healthy hosts then `unhealthy` unhealthy ones, in group `group`. */
function level(group: number, healthy: number, unhealthy: number): TestHost[] {
  return [
    ...hosts(healthy, group),
    ...hosts(unhealthy, group, { healthy: false }).map((h) => host(`${h.key}x`, h)),
  ];
}

function loadOn(s: Map<string, number>, group: number): number {
  let sum = 0;
  for (const [k, v] of s) if (k.startsWith(`10.0.${group}.`)) sum += v;
  return sum;
}

describe('planPriorities', () => {
  const plan = (...levels: [number, number][]) =>
    planPriorities(levels.map(([healthy, total]) => ({ healthy, total })));

  it('gives a fully healthy P0 all the load', () => {
    assert.deepEqual(plan([4, 4], [4, 4]), { load: [100, 0], panic: [false, false] });
  });

  it('spills over with the 1.4 overprovisioning factor', () => {
    assert.deepEqual(plan([2, 4], [4, 4]).load, [70, 30]);
    assert.deepEqual(plan([3, 4], [4, 4]).load, [100, 0]); // 1.4 * 75% caps at 100
    assert.deepEqual(plan([1, 4], [1, 4], [4, 4]).load, [35, 35, 30]);
    assert.deepEqual(plan([0, 4], [4, 4]).load, [0, 100]);
    assert.deepEqual(plan([0, 0], [4, 4]).load, [0, 100]);
  });

  it('normalizes when all levels together are short, and panics the levels under 50% healthy', () => {
    assert.deepEqual(plan([1, 4]), { load: [100], panic: [true] });
    assert.deepEqual(plan([2, 4]), { load: [100], panic: [false] });
    assert.deepEqual(plan([1, 4], [1, 4]), { load: [50, 50], panic: [true, true] });
    // No panic while the levels together still reach 100%.
    assert.deepEqual(plan([1, 4], [4, 4]), { load: [35, 65], panic: [false, false] });
  });

  it('hands the load to the first level when nothing is healthy', () => {
    assert.deepEqual(plan([0, 2], [0, 3]), { load: [100, 0], panic: [true, true] });
    assert.deepEqual(plan([0, 0], [0, 3]).load, [0, 100]);
    assert.deepEqual(plan([0, 0]).load, [0]);
    assert.deepEqual(plan().load, []);
  });

  it('gives rounding leftovers to the first level with health', () => {
    // health 42 and 42: 84 total, 50 + 50.
    const p = plan([3, 10], [3, 10], [0, 10]);
    assert.equal(
      p.load.reduce((a, b) => a + b),
      100,
    );
  });
});

describe('createLoadBalancer with priorities', () => {
  const rr = cluster('ROUND_ROBIN');

  it('sends everything to a fully healthy P0', () => {
    const s = shares(createLoadBalancer([level(0, 3, 0), level(1, 3, 0)], rr, seededRandom(1)), 30_000);
    assert.equal(loadOn(s, 0), 1);
  });

  it('spills ~30% to P1 when P0 is 50% healthy, using only healthy P0 hosts', () => {
    const s = shares(createLoadBalancer([level(0, 2, 2), level(1, 4, 0)], rr, seededRandom(2)), PICKS);
    assertNear(loadOn(s, 1), 0.3, 0.01, 'P1 share');
    for (const k of s.keys()) assert.ok(!k.endsWith('x'), `unhealthy host ${k} chosen`);
  });

  it('balances over all hosts of a level in panic', () => {
    const p0 = level(0, 1, 3);
    const s = shares(createLoadBalancer([p0], rr, seededRandom(3)), 40_000);
    for (const h of p0) assertNear(s.get(h.key), 0.25, 0.001, h.key);
  });

  it('falls back to every host of P0 when no host is healthy', () => {
    const p0 = level(0, 0, 2);
    const s = shares(createLoadBalancer([p0, level(1, 0, 2)], rr, seededRandom(4)), 10_000);
    for (const h of p0) assertNear(s.get(h.key), 0.5, 0.001, h.key);
  });

  it('has no host to offer for an empty cluster', () => {
    for (const name of LB_POLICIES.keys()) {
      const config = cluster(name as 'ROUND_ROBIN');
      assert.equal(createLoadBalancer([], config).chooseHost(NO_HASH), undefined);
      assert.equal(createLoadBalancer([[], []], config).chooseHost({ hashKey: 1n }), undefined);
    }
  });

  it('builds every policy and never picks an unhealthy host outside panic', () => {
    for (const name of LB_POLICIES.keys()) {
      const config = cluster(name as 'ROUND_ROBIN');
      const lb = createLoadBalancer([level(0, 3, 1), level(1, 2, 0)], config, seededRandom(5));
      for (let i = 0; i < 2000; i++) {
        const h = lb.chooseHost(i % 2 === 0 ? NO_HASH : { hashKey: requestHash(i) });
        assert.ok(h?.healthy, `${name} chose ${h?.key}`);
      }
    }
  });

  it('rejects an unknown policy', () => {
    assert.throws(
      () => createLoadBalancer([hosts(1)], cluster('BOGUS' as 'RANDOM')),
      /unknown lb_policy BOGUS/,
    );
  });

  for (const policy of ['RING_HASH', 'MAGLEV'] as const) {
    it(`${policy}: a key keeps its level and host while P0 spills over`, () => {
      const lb = createLoadBalancer([level(0, 2, 2), level(1, 4, 0)], cluster(policy), seededRandom(6));
      const first = assignments(lb, 20_000);
      assert.deepEqual(assignments(lb, 20_000), first);
      assertNear(loadOn(shareOf(first), 1), 0.3, 0.02, 'P1 share of keys');
    });
  }
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from '../../../config/load_assignment_policy.js';
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

  it('with no host available anywhere (total panic) spreads the load over every host by level size', () => {
    const p0 = level(0, 0, 2);
    const p1 = level(1, 0, 3);
    const s = shares(createLoadBalancer([p0, p1], rr, seededRandom(4)), 50_000);
    for (const h of [...p0, ...p1]) assertNear(s.get(h.key), 0.2, 0.01, h.key);
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

describe('createLoadBalancer with degraded hosts', () => {
  const rr = cluster('ROUND_ROBIN');
  const degraded = (n: number, group: number) =>
    hosts(n, group, { degraded: true }).map((h) => host(`${h.key}d`, { degraded: true }));
  const onDegraded = (s: Map<string, number>) => {
    let sum = 0;
    for (const [k, v] of s) if (k.endsWith('d')) sum += v;
    return sum;
  };

  it('sends a degraded host nothing while the healthy ones of its level suffice', () => {
    for (const name of LB_POLICIES.keys()) {
      const lb = createLoadBalancer(
        [[...hosts(3, 0), ...degraded(1, 0)]],
        cluster(name as 'RANDOM'),
        seededRandom(7),
      );
      for (let i = 0; i < 2000; i++) {
        const h = lb.chooseHost(i % 2 === 0 ? NO_HASH : { hashKey: requestHash(i) });
        assert.ok(h?.healthy, `${name} chose ${h?.key}`);
      }
    }
  });

  it('gives degraded hosts what the healthy ones cannot carry (1 healthy, 1 degraded: 70/30)', () => {
    const s = shares(createLoadBalancer([[...hosts(1, 0), ...degraded(1, 0)]], rr, seededRandom(8)), PICKS);
    assertNear(onDegraded(s), 0.3, 0.01, 'degraded share');
  });

  it("prefers a lower priority's healthy hosts to degraded ones", () => {
    const s = shares(
      createLoadBalancer([[...hosts(1, 0), ...degraded(1, 0)], hosts(2, 1)], rr, seededRandom(9)),
      PICKS,
    );
    assert.equal(onDegraded(s), 0);
    assertNear(loadOn(s, 1), 0.3, 0.01, 'P1 share');
  });

  it('serves from degraded hosts alone when no host is healthy, and never from unhealthy ones', () => {
    const s = shares(
      createLoadBalancer([[...degraded(2, 0), ...level(0, 0, 1)]], rr, seededRandom(10)),
      10_000,
    );
    assert.equal(onDegraded(s), 1);
  });

  it("follows the policy's overprovisioning_factor and counts picks in panic", () => {
    const levels = [level(0, 4, 1), level(1, 4, 0)];
    const strict = { ...DEFAULT_LOAD_ASSIGNMENT_POLICY, overprovisioningFactor: 100 };
    const s = shares(createLoadBalancer(levels, rr, seededRandom(11), { policy: strict }), PICKS);
    assertNear(loadOn(s, 1), 0.2, 0.01, 'P1 share at factor 100');
    let panics = 0;
    const onPanicPick = () => panics++;
    const lb = createLoadBalancer([level(0, 1, 3)], rr, seededRandom(12), {
      policy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
      onPanicPick,
    });
    for (let i = 0; i < 10; i++) lb.chooseHost(NO_HASH);
    assert.equal(panics, 10);
    createLoadBalancer([level(0, 4, 0)], rr, seededRandom(13), {
      policy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
      onPanicPick,
    }).chooseHost(NO_HASH);
    assert.equal(panics, 10);
  });
});

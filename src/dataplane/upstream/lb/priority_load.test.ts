// computePriorityLoad against the examples of Envoy's load-balancing docs (priority levels, degraded endpoints,
// panic threshold) and of its load_balancer_impl.cc, and the policy knobs (overprovisioning, weighted health).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computePriorityLoad, type LevelHealth, type PriorityLoadOptions } from './priority_load.js';

const DEFAULTS: PriorityLoadOptions = { overprovisioningFactor: 140 };

/** A level of 100 hosts: `healthy` percent healthy, `degraded` percent degraded, the rest unhealthy. */
const pct = (healthy: number, degraded = 0): LevelHealth => ({ healthy, degraded, total: 100 });

/** The share of requests each level gets (healthy and degraded hosts together). */
function traffic(levels: LevelHealth[], options = DEFAULTS): number[] {
  const l = computePriorityLoad(levels, options);
  return l.healthy.map((h, p) => h + l.degraded[p]!);
}

describe('computePriorityLoad: Envoy\'s "Priority levels" tables', () => {
  it('two levels, P=1 fully healthy', () => {
    const rows: [number, number[]][] = [
      [100, [100, 0]],
      [72, [100, 0]],
      [71, [99, 1]],
      [50, [70, 30]],
      [25, [35, 65]],
      [0, [0, 100]],
    ];
    for (const [p0, expected] of rows) assert.deepEqual(traffic([pct(p0), pct(100)]), expected, `P=0 ${p0}%`);
  });

  it('two levels, both losing hosts (normalized total health)', () => {
    const rows: [number, number, number[]][] = [
      [100, 100, [100, 0]],
      [72, 72, [100, 0]],
      [71, 71, [99, 1]],
      [50, 50, [70, 30]],
      [25, 100, [35, 65]],
      [25, 25, [50, 50]],
    ];
    for (const [p0, p1, expected] of rows)
      assert.deepEqual(traffic([pct(p0), pct(p1)]), expected, `P=0 ${p0}%, P=1 ${p1}%`);
  });

  it('three levels', () => {
    const rows: [number, number, number, number[]][] = [
      [100, 100, 100, [100, 0, 0]],
      [72, 72, 100, [100, 0, 0]],
      [71, 71, 100, [99, 1, 0]],
      [50, 50, 100, [70, 30, 0]],
      [25, 100, 100, [35, 65, 0]],
      [25, 25, 100, [35, 35, 30]],
    ];
    for (const [p0, p1, p2, expected] of rows)
      assert.deepEqual(traffic([pct(p0), pct(p1), pct(p2)]), expected, `${p0}% / ${p1}% / ${p2}%`);
  });

  it("25% / 25% / 20%: the table's 36/36/28 are unrounded shares; Envoy's code gives every level in panic", () => {
    // Without panic the integer arithmetic gives 35 + 35 + 28 and the 2 left over to P=0.
    assert.deepEqual(traffic([pct(25), pct(25), pct(20)], { ...DEFAULTS, panicThreshold: 0 }), [37, 35, 28]);
    // With the default 50% threshold all three levels are in panic: the load follows host counts.
    const l = computePriorityLoad([pct(25), pct(25), pct(20)], DEFAULTS);
    assert.deepEqual(l.panic, [true, true, true]);
    assert.deepEqual(l.healthy, [34, 33, 33]);
  });
});

describe('computePriorityLoad: Envoy\'s "Degraded endpoints" table', () => {
  it('degraded hosts take only what the healthy ones cannot carry', () => {
    const rows: [number, number, number, number][] = [
      // healthy %, degraded %, load to healthy, load to degraded
      [100, 0, 100, 0],
      [71, 0, 100, 0], // 29% unhealthy
      [71, 29, 99, 1],
      [25, 65, 35, 65], // 10% unhealthy
      [5, 0, 100, 0], // 95% unhealthy: panic, every host of the level shares it
    ];
    for (const [h, d, toHealthy, toDegraded] of rows) {
      const l = computePriorityLoad([pct(h, d)], DEFAULTS);
      assert.deepEqual([l.healthy[0], l.degraded[0]], [toHealthy, toDegraded], `${h}% / ${d}%`);
    }
    assert.deepEqual(computePriorityLoad([pct(5)], DEFAULTS).panic, [true]);
    assert.deepEqual(computePriorityLoad([pct(25, 65)], DEFAULTS).panic, [false]);
  });

  it("a lower level's healthy hosts come before a higher level's degraded ones", () => {
    const l = computePriorityLoad([pct(50, 50), pct(100)], DEFAULTS);
    assert.deepEqual(l, { healthy: [70, 30], degraded: [0, 0], panic: [false, false] });
  });

  it('only degraded hosts: they carry everything, without panic', () => {
    const l = computePriorityLoad([{ healthy: 0, degraded: 2, total: 2 }], DEFAULTS);
    assert.deepEqual(l, { healthy: [0], degraded: [100], panic: [false] });
  });

  it("the rounding remainder goes to the first healthy level (load_balancer_impl.cc's own example)", () => {
    // Availability 10/20/10 healthy and 20/10/0 degraded (factor 100 on 100 hosts): 16/28/14 and 28/14/0.
    const levels = [pct(10, 20), pct(20, 10), pct(10, 0)];
    const l = computePriorityLoad(levels, { overprovisioningFactor: 100, panicThreshold: 0 });
    assert.deepEqual(l.healthy, [16, 28, 14]);
    assert.deepEqual(l.degraded, [28, 14, 0]);
  });

  it('with no healthy level the remainder goes to the first degraded one', () => {
    const l = computePriorityLoad([pct(0, 20), pct(0, 20), pct(0, 20)], { ...DEFAULTS, panicThreshold: 0 });
    // Availability 28 each, 84 in all: 33 + 33 + 33, the 1 left to P=0.
    assert.deepEqual(l.degraded, [34, 33, 33]);
    assert.deepEqual(l.healthy, [0, 0, 0]);
  });
});

describe('computePriorityLoad: panic (Envoy\'s "Panic threshold")', () => {
  it('never panics while the levels together reach 100%', () => {
    for (const p0 of [72, 71, 50, 25, 0]) {
      assert.deepEqual(computePriorityLoad([pct(p0), pct(100)], DEFAULTS).panic, [false, false], `${p0}%`);
    }
  });

  it('panics the levels under the threshold once the total falls short', () => {
    const l = computePriorityLoad([pct(5), pct(65)], DEFAULTS);
    assert.deepEqual(l.panic, [true, false]);
    // Availability 7 and 91 (98 in all): 7 and 92, the 1 left to P=0.
    assert.deepEqual(l.healthy, [8, 92]);
    assert.deepEqual(computePriorityLoad([pct(25), pct(25)], DEFAULTS).panic, [true, true]);
  });

  it('counts degraded hosts as available for the threshold', () => {
    assert.deepEqual(computePriorityLoad([pct(20, 30)], DEFAULTS).panic, [false]);
    assert.deepEqual(computePriorityLoad([pct(20, 29)], DEFAULTS).panic, [true]);
  });

  it('in total panic spreads the load by host count (nothing available anywhere)', () => {
    const l = computePriorityLoad(
      [
        { healthy: 0, degraded: 0, total: 2 },
        { healthy: 0, degraded: 0, total: 3 },
      ],
      DEFAULTS,
    );
    assert.deepEqual(l, { healthy: [40, 60], degraded: [0, 0], panic: [true, true] });
    // An empty level counts as in panic and takes nothing.
    const e = computePriorityLoad(
      [
        { healthy: 0, degraded: 0, total: 0 },
        { healthy: 0, degraded: 0, total: 3 },
      ],
      DEFAULTS,
    );
    assert.deepEqual(e.healthy, [0, 100]);
  });

  it('with the threshold at 0 nothing panics and an unavailable cluster has no host to offer', () => {
    const l = computePriorityLoad([{ healthy: 0, degraded: 0, total: 2 }], {
      ...DEFAULTS,
      panicThreshold: 0,
    });
    assert.deepEqual(l, { healthy: [100], degraded: [0], panic: [false] });
  });

  it('has nothing to compute without levels or hosts', () => {
    assert.deepEqual(computePriorityLoad([], DEFAULTS), { healthy: [], degraded: [], panic: [] });
    assert.deepEqual(computePriorityLoad([{ healthy: 0, degraded: 0, total: 0 }], DEFAULTS).healthy, [100]);
  });
});

describe('computePriorityLoad: the ClusterLoadAssignment policy', () => {
  it("overprovisioning_factor scales each level's availability", () => {
    assert.deepEqual(traffic([pct(80), pct(100)], { overprovisioningFactor: 100 }), [80, 20]);
    assert.deepEqual(traffic([pct(50), pct(100)], { overprovisioningFactor: 200 }), [100, 0]);
    assert.deepEqual(traffic([pct(72), pct(100)], { overprovisioningFactor: 140 }), [100, 0]);
  });

  it('weighted_priority_health uses host weights for availability, host counts for panic', () => {
    // One healthy host of weight 3 and one unhealthy of weight 1.
    const p0: LevelHealth = {
      healthy: 1,
      degraded: 0,
      total: 2,
      weights: { healthy: 3, degraded: 0, total: 4 },
    };
    assert.deepEqual(traffic([p0, pct(100)]), [70, 30]);
    assert.deepEqual(traffic([p0, pct(100)], { ...DEFAULTS, weighted: true }), [100, 0]);
    const light: LevelHealth = {
      healthy: 1,
      degraded: 0,
      total: 2,
      weights: { healthy: 1, degraded: 0, total: 9 },
    };
    const l = computePriorityLoad([light], { ...DEFAULTS, weighted: true });
    // 15% available by weight, but half the hosts are healthy: not in panic.
    assert.deepEqual(l, { healthy: [100], degraded: [0], panic: [false] });
  });

  it('always hands out exactly 100%', () => {
    for (let h = 0; h <= 10; h++) {
      for (let d = 0; d + h <= 10; d++) {
        for (const factor of [100, 140, 173]) {
          const l = computePriorityLoad([pct(h * 10, d * 10), pct(d * 7, h * 3), pct(5, 5)], {
            overprovisioningFactor: factor,
          });
          const sum = [...l.healthy, ...l.degraded].reduce((a, b) => a + b, 0);
          assert.equal(sum, 100, `${h} ${d} ${factor}`);
        }
      }
    }
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRingHashLevel, ringReplicas } from './ring_hash.js';
import {
  assertNear,
  assignments,
  cluster,
  host,
  hosts,
  requestHash,
  seededRandom,
  shareOf,
  shares,
} from './test_support.js';

const KEYS = 100_000;
const config = cluster('RING_HASH');

function ring(hs: Parameters<typeof createRingHashLevel>[0], overrides = config) {
  return createRingHashLevel(hs, overrides, seededRandom(1));
}

describe('RING_HASH', () => {
  it("lays out Envoy's replica counts", () => {
    assert.deepEqual(ringReplicas([1, 1, 1], 1024, 8388608), [342, 342, 342]);
    assert.deepEqual(ringReplicas([1, 1, 1, 1], 1024, 8388608), [256, 256, 256, 256]);
    assert.deepEqual(ringReplicas([1, 2, 3], 1024, 8388608), [171, 342, 513]);
    // maximum_ring_size caps the total; the running sums share the fractions out.
    assert.deepEqual(ringReplicas([1, 1, 1, 1], 1024, 6), [2, 1, 2, 1]);
    // The lightest host always gets a point.
    assert.deepEqual(ringReplicas([1, 1000], 4, 8388608), [1, 1000]);
  });

  it('sends the same key to the same host every time, whatever the endpoint order', () => {
    const hs = hosts(5);
    const a = ring(hs);
    const b = ring([...hs].reverse());
    for (let i = 0; i < 2000; i++) {
      const ctx = { hashKey: requestHash(i) };
      const first = a.chooseHost(ctx);
      assert.equal(a.chooseHost(ctx), first);
      assert.equal(b.chooseHost(ctx), first);
    }
  });

  it('spreads keys evenly over three equal hosts', () => {
    const hs = hosts(3);
    const s = shareOf(assignments(ring(hs), KEYS));
    for (const h of hs) assertNear(s.get(h.key), 1 / 3, 0.03, h.key);
  });

  it('respects weights', () => {
    const hs = [
      host('10.0.0.1:80', { weight: 1 }),
      host('10.0.0.2:80', { weight: 2 }),
      host('10.0.0.3:80', { weight: 3 }),
    ];
    const s = shareOf(assignments(ring(hs), KEYS));
    assertNear(s.get('10.0.0.1:80'), 1 / 6, 0.03, 'weight 1');
    assertNear(s.get('10.0.0.2:80'), 2 / 6, 0.03, 'weight 2');
    assertNear(s.get('10.0.0.3:80'), 3 / 6, 0.03, 'weight 3');
  });

  it("moves only the removed host's keys when the others keep their points", (t) => {
    // With a light host of weight 1 the scale is 1 point per weight unit before and after the removal, so the
    // surviving hosts keep exactly the same points.
    const before = [host('10.9.0.1:80', { weight: 1 }), ...hosts(4).map((h) => host(h.key, { weight: 300 }))];
    const after = before.filter((_, i) => i !== 2);
    const small = cluster('RING_HASH', { ringHash: { minimumRingSize: 512, maximumRingSize: 8388608 } });
    const a = assignments(ring(before, small), KEYS);
    const b = assignments(ring(after, small), KEYS);
    let moved = 0;
    for (let i = 0; i < KEYS; i++) {
      if (a[i] !== b[i]) {
        moved++;
        assert.equal(a[i], before[2]!.key, `key ${i} moved from a surviving host`);
      }
    }
    t.diagnostic(`moved ${moved / KEYS}`);
    assertNear(moved / KEYS, 0.25, 0.03, 'moved');
  });

  it("removing 1 of 4 equal hosts moves its keys plus the keys taken by the survivors' added points", (t) => {
    // Envoy sizes the ring so the lightest host has ceil(minW * minimum_ring_size) points: 256 per host with 4
    // hosts, 342 with 3. The survivors' new points (suffixes _256.._341) take some keys from each other.
    const before = hosts(4);
    const a = assignments(ring(before), KEYS);
    for (let removed = 0; removed < 4; removed++) {
      const b = assignments(ring(before.filter((_, i) => i !== removed)), KEYS);
      let moved = 0;
      let betweenSurvivors = 0;
      for (let i = 0; i < KEYS; i++) {
        if (a[i] === before[removed]!.key) assert.notEqual(b[i], a[i]);
        if (a[i] !== b[i]) {
          moved++;
          if (a[i] !== before[removed]!.key) betweenSurvivors++;
        }
      }
      t.diagnostic(
        `removed #${removed}: moved ${moved / KEYS}, between survivors ${betweenSurvivors / KEYS}`,
      );
      assert.ok(betweenSurvivors / KEYS <= 0.14, `between survivors ${betweenSurvivors / KEYS}`);
      assert.ok(moved / KEYS <= 0.4, `moved ${moved / KEYS}`);
    }
  });

  it('picks a random point without a hash', () => {
    const hs = hosts(3);
    const s = shares(ring(hs), KEYS);
    for (const h of hs) assertNear(s.get(h.key), 1 / 3, 0.03, h.key);
  });
});

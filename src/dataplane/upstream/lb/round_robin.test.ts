import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLoadBalancer } from './registry.js';
import { createRoundRobinLevel } from './round_robin.js';
import { cluster, host, hosts, NO_HASH, seededRandom } from './test_support.js';

const config = cluster('ROUND_ROBIN');

function picks(lb: { chooseHost(ctx: typeof NO_HASH): { key: string } | undefined }, n: number): string[] {
  return Array.from({ length: n }, () => lb.chooseHost(NO_HASH)!.key);
}

describe('ROUND_ROBIN', () => {
  it('visits equal-weight hosts in turn from a random start', () => {
    const hs = hosts(5);
    const keys = hs.map((h) => h.key);
    for (const seed of [1, 2, 3, 4]) {
      const seq = picks(createRoundRobinLevel(hs, config, seededRandom(seed)), 15);
      const start = keys.indexOf(seq[0]!);
      assert.deepEqual(
        seq,
        Array.from({ length: 15 }, (_, i) => keys[(start + i) % 5]),
      );
    }
    const starts = new Set(
      [1, 2, 3, 4, 5, 6, 7, 8].map((s) => picks(createRoundRobinLevel(hs, config, seededRandom(s)), 1)[0]),
    );
    assert.ok(starts.size > 1, 'the start offset varies');
  });

  it('interleaves weights 1:2:3 in exact proportion over every cycle', () => {
    const hs = [host('a:1', { weight: 1 }), host('b:1', { weight: 2 }), host('c:1', { weight: 3 })];
    const zero = () => 0;
    assert.deepEqual(picks(createRoundRobinLevel(hs, config, zero), 12), [
      'c:1',
      'b:1',
      'c:1',
      'a:1',
      'b:1',
      'c:1',
      'c:1',
      'b:1',
      'c:1',
      'a:1',
      'b:1',
      'c:1',
    ]);
    for (const seed of [7, 8, 9]) {
      const seq = picks(createRoundRobinLevel(hs, config, seededRandom(seed)), 6000);
      // Any 6 consecutive picks hold exactly 1 a, 2 b and 3 c.
      for (let start = 0; start + 6 <= seq.length; start += 5) {
        const window = seq.slice(start, start + 6);
        assert.deepEqual(
          ['a:1', 'b:1', 'c:1'].map((k) => window.filter((x) => x === k).length),
          [1, 2, 3],
          `window at ${start}`,
        );
      }
    }
  });

  it('keeps exact proportions for many hosts and uneven weights', () => {
    const hs = Array.from({ length: 50 }, (_, i) => host(`10.1.0.${i}:80`, { weight: 1 + ((i * 7) % 13) }));
    const total = hs.reduce((a, h) => a + h.weight, 0);
    const counts = new Map<string, number>();
    const lb = createRoundRobinLevel(hs, config, seededRandom(3));
    for (let i = 0; i < total * 20; i++) {
      const k = lb.chooseHost(NO_HASH)!.key;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    for (const h of hs) assert.equal(counts.get(h.key), h.weight * 20, h.key);
  });

  it('is what createLoadBalancer builds for ROUND_ROBIN', () => {
    const hs = hosts(3);
    const seq = picks(createLoadBalancer([hs], config, seededRandom(1)), 300);
    for (const h of hs) assert.equal(seq.filter((k) => k === h.key).length, 100);
  });
});

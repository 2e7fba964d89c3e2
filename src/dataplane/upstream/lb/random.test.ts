import { describe, it } from 'node:test';
import { createRandomLevel } from './random.js';
import { createLoadBalancer } from './registry.js';
import { assertNear, cluster, host, hosts, seededRandom, shares } from './test_support.js';

const PICKS = 100_000;

describe('RANDOM', () => {
  it('spreads picks uniformly over equal hosts', () => {
    const hs = hosts(4);
    const s = shares(createRandomLevel(hs, cluster('RANDOM'), seededRandom(11)), PICKS);
    for (const h of hs) assertNear(s.get(h.key), 0.25, 0.01, h.key);
  });

  it('weights picks by load_balancing_weight', () => {
    const hs = [host('a:1', { weight: 1 }), host('b:1', { weight: 3 }), host('c:1', { weight: 6 })];
    const s = shares(createRandomLevel(hs, cluster('RANDOM'), seededRandom(12)), PICKS);
    assertNear(s.get('a:1'), 0.1, 0.01, 'a');
    assertNear(s.get('b:1'), 0.3, 0.01, 'b');
    assertNear(s.get('c:1'), 0.6, 0.01, 'c');
  });

  it('works with Math.random through createLoadBalancer', () => {
    const hs = hosts(2);
    const s = shares(createLoadBalancer([hs], cluster('RANDOM')), PICKS);
    for (const h of hs) assertNear(s.get(h.key), 0.5, 0.03, h.key);
  });
});

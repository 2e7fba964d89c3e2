import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createLeastRequestLevel } from './least_request.js';
import { assertNear, cluster, host, NO_HASH, seededRandom, shares } from './test_support.js';

const PICKS = 100_000;

describe('LEAST_REQUEST', () => {
  it('prefers the idle host: with 2 choices the busy one wins only when sampled twice', () => {
    const hs = [host('busy:1', { active: 10 }), host('idle:1', { active: 0 })];
    const s = shares(createLeastRequestLevel(hs, cluster('LEAST_REQUEST'), seededRandom(1)), PICKS);
    assertNear(s.get('idle:1'), 0.75, 0.01, 'idle share');
  });

  it('prefers the idle host among three (1 - (2/3)^2 = 5/9)', () => {
    const hs = [host('a:1', { active: 5 }), host('idle:1'), host('c:1', { active: 5 })];
    const s = shares(createLeastRequestLevel(hs, cluster('LEAST_REQUEST'), seededRandom(2)), PICKS);
    assertNear(s.get('idle:1'), 5 / 9, 0.01, 'idle share');
  });

  it('honours choice_count', () => {
    const hs = [host('busy:1', { active: 3 }), host('idle:1')];
    const config = cluster('LEAST_REQUEST', { leastRequest: { choiceCount: 5 } });
    const s = shares(createLeastRequestLevel(hs, config, seededRandom(3)), PICKS);
    assertNear(s.get('idle:1'), 1 - 1 / 32, 0.01, 'idle share');
  });

  it('follows the live active request counts', () => {
    const a = host('a:1');
    const b = host('b:1');
    const lb = createLeastRequestLevel([a, b], cluster('LEAST_REQUEST'), seededRandom(4));
    // Each pick holds its request open. Power of two choices keeps the gap within a few requests (the busier host
    // is chosen only when sampled twice); a blind random pick would drift to about sqrt(20000) = 141 apart.
    let widest = 0;
    for (let i = 0; i < 20_000; i++) {
      const h = lb.chooseHost(NO_HASH)!;
      h.activeRequests++;
      widest = Math.max(widest, Math.abs(a.activeRequests - b.activeRequests));
    }
    assert.ok(widest <= 12, `widest gap ${widest}`);
  });

  it('with weights, picks in proportion to weight / (active + 1)', () => {
    const idle = [host('w1:1', { weight: 1 }), host('w2:1', { weight: 2 })];
    const s1 = shares(createLeastRequestLevel(idle, cluster('LEAST_REQUEST'), seededRandom(5)), 30_000);
    assertNear(s1.get('w2:1'), 2 / 3, 0.001, 'weight 2 share, idle');
    // weight 2 with 3 active: 2 / 4 = 0.5 against 1 / 1 = 1.
    const busy = [host('w1:1', { weight: 1 }), host('w2:1', { weight: 2, active: 3 })];
    const s2 = shares(createLeastRequestLevel(busy, cluster('LEAST_REQUEST'), seededRandom(6)), 30_000);
    assertNear(s2.get('w2:1'), 1 / 3, 0.001, 'weight 2 share, 3 active');
  });
});

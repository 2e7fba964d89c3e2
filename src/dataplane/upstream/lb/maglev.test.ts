import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildMaglevTable, createMaglevLevel } from './maglev.js';
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
const config = cluster('MAGLEV');

function maglev(hs: Parameters<typeof createMaglevLevel>[0], overrides = config) {
  return createMaglevLevel(hs, overrides, seededRandom(1));
}

function entries(table: Uint32Array, n: number): number[] {
  const counts = new Array<number>(n).fill(0);
  for (const i of table) counts[i]!++;
  return counts;
}

describe('MAGLEV', () => {
  it('fills the table evenly, or in proportion to weight', () => {
    const keys = hosts(3).map((h) => h.key);
    const even = entries(buildMaglevTable(keys, [1, 1, 1], 65537), 3);
    assert.equal(
      even.reduce((a, b) => a + b),
      65537,
    );
    for (const c of even) assert.ok(Math.abs(c - 65537 / 3) <= 1, `${c}`);
    const weighted = entries(buildMaglevTable(keys, [1, 2, 3], 65537), 3);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(weighted[i]! - ((i + 1) * 65537) / 6) <= 2, `${weighted}`);
  });

  it('does not depend on the order of the endpoints', () => {
    const keys = hosts(7).map((h) => h.key);
    const a = buildMaglevTable(keys, [1, 1, 1, 1, 1, 1, 1], 251);
    const reversed = [...keys].reverse();
    const b = buildMaglevTable(reversed, [1, 1, 1, 1, 1, 1, 1], 251);
    assert.deepEqual(
      [...a].map((i) => keys[i]),
      [...b].map((i) => reversed[i]),
    );
  });

  it('rejects a table size that is not prime', () => {
    assert.throws(() => maglev(hosts(2), cluster('MAGLEV', { maglev: { tableSize: 65536 } })), /not a prime/);
  });

  it('sends the same key to the same host every time', () => {
    const lb = maglev(hosts(5));
    for (let i = 0; i < 2000; i++) {
      const ctx = { hashKey: requestHash(i) };
      assert.equal(lb.chooseHost(ctx), lb.chooseHost(ctx));
    }
  });

  it('spreads keys evenly over three equal hosts', () => {
    const hs = hosts(3);
    const s = shareOf(assignments(maglev(hs), KEYS));
    for (const h of hs) assertNear(s.get(h.key), 1 / 3, 0.01, h.key);
  });

  it('respects weights', () => {
    const hs = [
      host('10.0.0.1:80', { weight: 1 }),
      host('10.0.0.2:80', { weight: 2 }),
      host('10.0.0.3:80', { weight: 3 }),
    ];
    const s = shareOf(assignments(maglev(hs), KEYS));
    assertNear(s.get('10.0.0.1:80'), 1 / 6, 0.01, 'weight 1');
    assertNear(s.get('10.0.0.2:80'), 2 / 6, 0.01, 'weight 2');
    assertNear(s.get('10.0.0.3:80'), 3 / 6, 0.01, 'weight 3');
  });

  it('removing 1 of 4 hosts moves its keys and almost no others', (t) => {
    const before = hosts(4);
    const a = assignments(maglev(before), KEYS);
    for (let removed = 0; removed < 4; removed++) {
      const b = assignments(maglev(before.filter((_, i) => i !== removed)), KEYS);
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
      assert.ok(betweenSurvivors / KEYS <= 0.005, `between survivors ${betweenSurvivors / KEYS}`);
      assertNear(moved / KEYS, 0.25, 0.02, 'moved');
    }
  });

  it('picks a random slot without a hash', () => {
    const hs = hosts(3);
    const s = shares(maglev(hs), KEYS);
    for (const h of hs) assertNear(s.get(h.key), 1 / 3, 0.01, h.key);
  });
});

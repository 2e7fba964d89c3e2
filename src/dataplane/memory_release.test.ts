// When MemoryRelease releases: at once on request, then only after a quiet interval once memory grew.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryRelease, type Released } from './memory_release.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function counting(idleMs: number): { m: MemoryRelease; calls: () => number; reports: Released[] } {
  let calls = 0;
  const reports: Released[] = [];
  const m = new MemoryRelease(
    () => calls++,
    { idleMs },
    (r) => reports.push(r),
  );
  return { m, calls: () => calls, reports };
}

/** Resident memory that stays: a buffer whose every page is written. */
const grow = (mib: number): Buffer => Buffer.alloc(mib * 1024 * 1024, 1);

test('releaseNow releases and reports the resident set around it', () => {
  const { m, calls, reports } = counting(60_000);
  try {
    m.releaseNow();
    assert.equal(calls(), 1);
    assert.equal(reports.length, 1);
    assert.ok(reports[0]!.rssBefore > 0 && reports[0]!.rssAfter > 0 && reports[0]!.ms >= 0);
  } finally {
    m.close();
  }
});

test('a quiet process whose memory grew is released; one that did not grow is not', async () => {
  const { m, calls } = counting(100);
  try {
    m.releaseNow();
    await sleep(350);
    assert.equal(calls(), 1, 'nothing grew');
    const kept = grow(16);
    await sleep(350);
    assert.equal(calls(), 2, 'grew by 16 MiB, then quiet');
    assert.equal(kept.length, 16 * 1024 * 1024);
  } finally {
    m.close();
  }
});

test('a busy process is not released, even with grown memory, until it is quiet', async () => {
  const { m, calls } = counting(100);
  try {
    m.releaseNow();
    const kept = grow(16);
    // Busy through two checks: each sees well over 1 % of a core.
    const end = Date.now() + 250;
    while (Date.now() < end) {
      await new Promise<void>((r) => {
        const spin = Date.now() + 20;
        while (Date.now() < spin) {}
        setImmediate(r);
      });
    }
    assert.equal(calls(), 1, 'no release while busy');
    await sleep(350);
    assert.equal(calls(), 2, 'released once quiet');
    assert.ok(kept.length > 0);
  } finally {
    m.close();
  }
});

test('close stops the checks', async () => {
  const { m, calls } = counting(50);
  m.releaseNow();
  m.close();
  const kept = grow(16);
  await sleep(200);
  assert.equal(calls(), 1);
  assert.ok(kept.length > 0);
});

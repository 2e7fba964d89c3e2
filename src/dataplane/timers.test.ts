// Tests the lazy hot-path timers (IdleTimer, Deadline) on real time, with bounds loose enough for a busy VM.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { monotonicMs } from './clock.js';
import { Deadline, IdleTimer } from './timers.js';

/**
 * Timers may fire up to 1 ms before their deadline on the monotonic clock (the implementation's slack), and
 * the scheduler can be late by a lot on a loaded machine: lower bounds are near-exact, upper bounds generous.
 */
const EARLY_MS = 2;
const LATE_MS = 150;

/** Records when each named callback fired, in ms since the recorder was made (the clock `now()` reads). */
function recorder() {
  const t0 = monotonicMs();
  const fired: { name: string; at: number }[] = [];
  return {
    fired,
    names: () => fired.map((f) => f.name),
    now: () => monotonicMs() - t0,
    cb: (name: string) => () => {
      fired.push({ name, at: monotonicMs() - t0 });
    },
  };
}

/** Polls until `cond` holds, failing after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = monotonicMs() + ms;
  while (!cond()) {
    if (monotonicMs() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe('IdleTimer', () => {
  it('fires once after the timeout', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(40);
      assert.equal(t.armed, true);
      await until(() => r.fired.length > 0, 40 + LATE_MS, 'the idle timeout');
      assert.ok(r.fired[0]!.at >= 40 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      assert.equal(t.armed, false);
      await sleep(80);
      assert.equal(r.fired.length, 1);
    } finally {
      t.close();
    }
  });

  it('does not fire while touched, then fires a timeout after the last touch', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(50);
      let lastTouch = r.now();
      while (r.now() < 120) {
        await sleep(10);
        if (r.fired.length > 0) {
          // Only a stall of the whole process (a noisy VM) between two touches may let it fire.
          const gap = r.fired[0]!.at - lastTouch;
          assert.ok(gap >= 50 - EARLY_MS, `fired ${gap} ms after a touch`);
          r.fired.length = 0;
          t.set(50);
        }
        t.touch();
        lastTouch = r.now();
      }
      await until(() => r.fired.length > 0, 50 + LATE_MS, 'the idle timeout after the last touch');
      const sinceTouch = r.fired[0]!.at - lastTouch;
      assert.ok(sinceTouch >= 50 - EARLY_MS, `fired ${sinceTouch} ms after the last touch`);
      await sleep(30);
      assert.equal(r.fired.length, 1);
    } finally {
      t.close();
    }
  });

  it('stops on set(0)', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(20);
      t.set(0);
      assert.equal(t.armed, false);
      t.touch(); // a touch while stopped must not re-arm it
      await sleep(80);
      assert.equal(r.fired.length, 0);
      assert.equal(t.armed, false);
    } finally {
      t.close();
    }
  });

  it('fires at the shorter time when set() shortens the timeout', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(1000);
      t.set(30);
      await until(() => r.fired.length > 0, 30 + LATE_MS, 'the shortened timeout');
      assert.ok(r.fired[0]!.at >= 30 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      assert.ok(r.fired[0]!.at < 30 + LATE_MS, `fired at ${r.fired[0]!.at}`);
    } finally {
      t.close();
    }
  });

  it('fires at the longer time when set() lengthens the timeout', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(20);
      t.set(80);
      await until(() => r.fired.length > 0, 80 + LATE_MS, 'the lengthened timeout');
      assert.ok(r.fired[0]!.at >= 80 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      assert.equal(r.fired.length, 1);
    } finally {
      t.close();
    }
  });

  it('re-arms on set() after firing', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    try {
      t.set(20);
      await until(() => r.fired.length === 1, 20 + LATE_MS, 'the first timeout');
      await sleep(30);
      assert.equal(r.fired.length, 1, 'fired again without a set()');
      const setAt = r.now();
      t.set(30);
      assert.equal(t.armed, true);
      await until(() => r.fired.length === 2, 30 + LATE_MS, 'the second timeout');
      assert.ok(r.fired[1]!.at - setAt >= 30 - EARLY_MS, `fired ${r.fired[1]!.at - setAt} ms after set()`);
      assert.equal(t.armed, false);
    } finally {
      t.close();
    }
  });

  it('stops on close()', async () => {
    const r = recorder();
    const t = new IdleTimer(r.cb('idle'));
    t.set(20);
    t.close();
    assert.equal(t.armed, false);
    t.touch();
    await sleep(80);
    assert.equal(r.fired.length, 0);
  });
});

describe('Deadline', () => {
  it('fires after the duration', async () => {
    const r = recorder();
    const d = new Deadline(r.cb('d'));
    try {
      d.start(30);
      await until(() => r.fired.length > 0, 30 + LATE_MS, 'the deadline');
      assert.ok(r.fired[0]!.at >= 30 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      await sleep(50);
      assert.equal(r.fired.length, 1);
    } finally {
      d.cancel();
    }
  });

  it('does not fire once cancelled', async () => {
    const r = recorder();
    const d = new Deadline(r.cb('d'));
    d.start(20);
    d.cancel();
    d.cancel(); // cancelling twice is harmless
    await sleep(80);
    assert.equal(r.fired.length, 0);
  });

  it('fires deadlines of the same duration in start order', async () => {
    const r = recorder();
    const ds = ['a', 'b', 'c', 'd'].map((n) => new Deadline(r.cb(n)));
    try {
      for (const d of ds) {
        d.start(40);
        await sleep(3);
      }
      await until(() => r.fired.length === 4, 60 + LATE_MS, 'all four deadlines');
      assert.deepEqual(r.names(), ['a', 'b', 'c', 'd']);
    } finally {
      for (const d of ds) d.cancel();
    }
  });

  it('still fires later deadlines when the head is cancelled', async () => {
    const r = recorder();
    const a = new Deadline(r.cb('a'));
    const b = new Deadline(r.cb('b'));
    const c = new Deadline(r.cb('c'));
    try {
      a.start(45);
      await sleep(20);
      const bStarted = r.now();
      b.start(45);
      c.start(45);
      a.cancel();
      await until(() => r.fired.length === 2, 45 + LATE_MS, 'b and c');
      assert.deepEqual(r.names(), ['b', 'c']);
      // The queue's native timer was armed for a; it must re-arm for b rather than fire b early.
      const bAfter = r.fired[0]!.at - bStarted;
      assert.ok(bAfter >= 45 - EARLY_MS, `b fired ${bAfter} ms after its start`);
    } finally {
      a.cancel();
      b.cancel();
      c.cancel();
    }
  });

  it('moves the deadline on a restart', async () => {
    const r = recorder();
    const d = new Deadline(r.cb('d'));
    try {
      d.start(40);
      await sleep(25);
      d.start(40);
      await until(() => r.fired.length > 0, 65 + LATE_MS, 'the restarted deadline');
      assert.ok(r.fired[0]!.at >= 65 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      await sleep(50);
      assert.equal(r.fired.length, 1);
    } finally {
      d.cancel();
    }
  });

  it('moves the deadline on a restart with another duration', async () => {
    const r = recorder();
    const d = new Deadline(r.cb('d'));
    try {
      d.start(1000);
      d.start(30);
      await until(() => r.fired.length > 0, 30 + LATE_MS, 'the restarted deadline');
      assert.ok(r.fired[0]!.at >= 30 - EARLY_MS, `fired at ${r.fired[0]!.at}`);
      assert.equal(d.pending, false);
    } finally {
      d.cancel();
    }
  });

  it('keeps firing the others when one onTimeout throws', async () => {
    const r = recorder();
    const boom = new Error('boom');
    const a = new Deadline(r.cb('a'));
    const thrower = new Deadline(() => {
      r.fired.push({ name: 'thrower', at: 0 });
      throw boom;
    });
    const c = new Deadline(r.cb('c'));
    const caught: unknown[] = [];
    // node:test fails the running test on an uncaught exception: take the listeners out while this one runs.
    const others = process.listeners('uncaughtException');
    process.removeAllListeners('uncaughtException');
    const onUncaught = (err: unknown) => {
      caught.push(err);
    };
    process.on('uncaughtException', onUncaught);
    try {
      a.start(30);
      thrower.start(30);
      c.start(30);
      await until(() => r.fired.length === 3 && caught.length === 1, 30 + LATE_MS, 'all three and the error');
      assert.deepEqual(r.names(), ['a', 'thrower', 'c']);
      assert.equal(caught[0], boom);
    } finally {
      process.off('uncaughtException', onUncaught);
      for (const l of others) process.on('uncaughtException', l);
      a.cancel();
      thrower.cancel();
      c.cancel();
    }
  });

  it('reports whether it is pending', async () => {
    let pendingInCallback: boolean | undefined;
    const d: Deadline = new Deadline(() => {
      pendingInCallback = d.pending;
    });
    try {
      assert.equal(d.pending, false);
      d.start(20);
      assert.equal(d.pending, true);
      d.cancel();
      assert.equal(d.pending, false);
      d.start(20);
      d.start(25);
      assert.equal(d.pending, true);
      await until(() => pendingInCallback !== undefined, 25 + LATE_MS, 'the deadline');
      assert.equal(pendingInCallback, false);
      assert.equal(d.pending, false);
      // Reusable once fired.
      pendingInCallback = undefined;
      d.start(20);
      assert.equal(d.pending, true);
      await until(() => pendingInCallback !== undefined, 20 + LATE_MS, 'the second deadline');
      assert.equal(d.pending, false);
    } finally {
      d.cancel();
    }
  });
});

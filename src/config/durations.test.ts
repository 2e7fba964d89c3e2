// Tests of Duration parsing: proto3 JSON strings and {seconds, nanos} objects.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { durationField, parseDuration } from './durations.js';
import { Ctx, Fields } from './reader.js';

test('parseDuration accepts proto3 JSON seconds', () => {
  const cases: [string, number][] = [
    ['5s', 5000],
    ['0s', 0],
    ['0.25s', 250],
    ['1.5s', 1500],
    ['0.100s', 100],
    ['0.000000001s', 1],
    ['3600s', 3_600_000],
    ['0.0004s', 1],
    ['1.0004s', 1000],
  ];
  for (const [text, ms] of cases) assert.deepEqual(parseDuration(text), { ok: true, ms }, text);
});

test('parseDuration refuses other units, negatives and junk with a hint', () => {
  for (const text of ['100ms', '5m', '1h', '-1s', '1', 's', '1.s', '.5s', '1.0000000001s', ' 1s', '1e3s']) {
    const r = parseDuration(text);
    assert.equal(r.ok, false, text);
  }
  const ms = parseDuration('100ms');
  assert.ok(!ms.ok && ms.message.includes('"0.100s"'));
  const neg = parseDuration('-1s');
  assert.ok(!neg.ok && neg.message.includes('negative'));
});

function read(value: unknown, opts = {}): { ms: number | undefined; errors: string[] } {
  const ctx = new Ctx();
  const f = Fields.of(ctx, { timeout: value }, 'x')!;
  const ms = durationField(f, 'timeout', opts);
  return { ms, errors: ctx.errors().map((e) => `${e.path}: ${e.message}`) };
}

test('durationField reads strings and {seconds, nanos}', () => {
  assert.deepEqual(read('2s'), { ms: 2000, errors: [] });
  assert.deepEqual(read({ seconds: 1, nanos: 500_000_000 }), { ms: 1500, errors: [] });
  assert.deepEqual(read({ seconds: '3' }), { ms: 3000, errors: [] });
  assert.deepEqual(read({ nanos: 1_000_000 }), { ms: 1, errors: [] });
  assert.deepEqual(read(null), { ms: undefined, errors: [] });
});

test('durationField reports bad durations at their path', () => {
  assert.deepEqual(read(5).errors, [
    'x.timeout: expected a duration such as "5s" or {seconds, nanos}, got number',
  ]);
  assert.deepEqual(read({ seconds: 1, nano: 3 }).errors, ['x.timeout.nano: unknown field "nano"']);
  assert.deepEqual(read({ seconds: -1 }).errors, [
    'x.timeout.seconds: must be between 0 and 315576000000, got -1',
  ]);
  assert.deepEqual(read({ nanos: 1e9 }).errors, [
    'x.timeout.nanos: must be between 0 and 999999999, got 1000000000',
  ]);
  assert.deepEqual(read('0s', { positive: true }).errors, ['x.timeout: must be greater than 0s']);
  assert.deepEqual(read(undefined, { required: true }).errors, ['x.timeout: missing required field']);
  assert.deepEqual(read('999999999999s').errors, ['x.timeout: duration too long (max 315576000000s)']);
});

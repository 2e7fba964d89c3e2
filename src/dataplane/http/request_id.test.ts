import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestIdSource } from './request_id.js';

const V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('request ids are version 4 UUIDs, distinct across batches', () => {
  const source = new RequestIdSource();
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = source.id();
    assert.match(id, V4);
    seen.add(id);
  }
  assert.equal(seen.size, 1000);
});

test('request ids use every hex digit in their random positions', () => {
  const source = new RequestIdSource();
  const digits = new Set<string>();
  for (let i = 0; i < 200; i++) for (const c of source.id().replaceAll('-', '').slice(0, 12)) digits.add(c);
  assert.equal(digits.size, 16);
});

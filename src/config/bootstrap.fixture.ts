// Test helpers: the model of a bootstrap that must translate, or the errors of one that must not (one a line).

import assert from 'node:assert/strict';
import { translateBootstrap } from './bootstrap.js';
import type { Bootstrap } from './model.js';
import { formatErrors } from './result.js';

export function validBootstrap(raw: unknown): Bootstrap {
  const r = translateBootstrap(raw);
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

export function bootstrapErrors(raw: unknown): string[] {
  const r = translateBootstrap(raw);
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

// envoy.type.v3.FractionalPercent (numerator over HUNDRED, TEN_THOUSAND or MILLION), read as parts per million.

import { Fields } from './reader.js';

/** Parts per million of one unit of each denominator. */
const PER_MILLION = { HUNDRED: 10_000, TEN_THOUSAND: 100, MILLION: 1 } as const;

/** The whole: 100 %. */
export const MILLION = 1_000_000;

/**
 * A FractionalPercent field of `f` in parts per million; undefined when absent or invalid (with an error). As in
 * Envoy, a numerator above its denominator means 100 %.
 */
export function fractionalPercent(f: Fields, name: string): number | undefined {
  const v = f.take(name);
  if (v === undefined) return undefined;
  const p = Fields.of(f.ctx, v, f.pathOf(name));
  if (p === undefined) return undefined;
  const numerator = p.int('numerator');
  const denominator = p.enumOf('denominator', ['HUNDRED', 'TEN_THOUSAND', 'MILLION'] as const);
  p.finish();
  if (
    (given(p, 'numerator') && numerator === undefined) ||
    (given(p, 'denominator') && denominator === undefined)
  )
    return undefined;
  return Math.min(MILLION, (numerator ?? 0) * PER_MILLION[denominator ?? 'HUNDRED']);
}

/** Whether a field holds a value (absent, null and undefined do not); marks it read. */
function given(f: Fields, name: string): boolean {
  return f.take(name) !== undefined;
}

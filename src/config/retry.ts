// RetryPolicy of a route or virtual host: conditions, attempts, per-try timeout and back-off.

import { durationField } from './durations.js';
import type { RetryPolicyConfig } from './model.js';
import { type Ctx, Fields, quote } from './reader.js';

/** retry_on conditions Remora implements (HTTP, then gRPC status names). */
export const RETRY_ON = [
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
] as const;

/** retry_on conditions Envoy knows that Remora does not implement yet. */
const RETRY_ON_NOT_YET = ['envoy-ratelimited', 'retriable-headers', 'http3-post-connect-failure'];

const DEFAULT_BASE_INTERVAL_MS = 25;

export function retryPolicy(ctx: Ctx, raw: unknown, path: string): RetryPolicyConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const retryOn = retryConditions(f);
  const numRetries = f.int('num_retries') ?? 1;
  const perTryTimeoutMs = durationField(f, 'per_try_timeout') ?? 0;
  const retriableStatusCodes: number[] = [];
  for (const item of f.list('retriable_status_codes')) {
    const code = item.value;
    if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 599) {
      ctx.error(
        item.path,
        `expected an HTTP status code (100-599), got ${JSON.stringify(code)?.slice(0, 40)}`,
      );
    } else {
      retriableStatusCodes.push(code);
    }
  }
  const backOff = retryBackOff(f.object('retry_back_off'));
  f.unsupported([
    'per_try_idle_timeout',
    'retry_priority',
    'retry_host_predicate',
    'retry_options_predicates',
    'host_selection_retry_max_attempts',
    'rate_limited_retry_back_off',
    'retriable_headers',
    'retriable_request_headers',
  ]);
  f.finish();
  if (backOff === undefined) return undefined;
  return { retryOn, numRetries, perTryTimeoutMs, retriableStatusCodes, backOff };
}

/** retry_on: a comma-separated list; blanks around items are ignored. */
function retryConditions(f: Fields): string[] {
  const text = f.string('retry_on') ?? '';
  const out: string[] = [];
  for (const part of text.split(',')) {
    const cond = part.trim();
    if (cond === '') continue;
    if ((RETRY_ON as readonly string[]).includes(cond)) {
      if (!out.includes(cond)) out.push(cond);
    } else if (RETRY_ON_NOT_YET.includes(cond)) {
      f.error('retry_on', `retry condition ${quote(cond)} is not supported by Remora yet`);
    } else {
      f.error('retry_on', `unknown retry condition ${quote(cond)} (expected any of ${RETRY_ON.join(', ')})`);
    }
  }
  return out;
}

function retryBackOff(f: Fields | undefined): RetryPolicyConfig['backOff'] | undefined {
  if (f === undefined)
    return { baseIntervalMs: DEFAULT_BASE_INTERVAL_MS, maxIntervalMs: 10 * DEFAULT_BASE_INTERVAL_MS };
  const baseMs = durationField(f, 'base_interval', { positive: true });
  const max = durationField(f, 'max_interval', { positive: true });
  f.finish();
  if (f.has('base_interval') && baseMs === undefined) return undefined;
  const base = baseMs ?? DEFAULT_BASE_INTERVAL_MS;
  if (max !== undefined && max < base) {
    f.error('max_interval', 'must be greater than or equal to base_interval');
    return undefined;
  }
  return { baseIntervalMs: base, maxIntervalMs: max ?? 10 * base };
}

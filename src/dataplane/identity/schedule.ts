// When a workload certificate is renewed, and how long a failed attempt waits before the next one.

/** Renewal at this fraction of the certificate's lifetime... */
export const RENEW_AT_FRACTION = 0.5;
/** ...give or take this fraction of it, so that sidecars started together do not all call the CA at once. */
export const RENEW_JITTER_FRACTION = 0.1;

/**
 * Milliseconds from `now` until the certificate valid from `notBefore` to `notAfter` should be renewed: at
 * 50 % ± 10 % of its lifetime (`random` in [0, 1) picks where). 0 when that moment has passed.
 */
export function renewalDelayMs(notBefore: Date, notAfter: Date, now: number, random: number): number {
  const start = notBefore.getTime();
  const lifetime = Math.max(0, notAfter.getTime() - start);
  const fraction = RENEW_AT_FRACTION + (random * 2 - 1) * RENEW_JITTER_FRACTION;
  return Math.max(0, Math.round(start + lifetime * fraction - now));
}

export interface Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_BACKOFF: Backoff = { baseMs: 1000, maxMs: 30_000 };

/**
 * The wait before retry number `attempt` (1 for the first retry): exponential from `baseMs`, capped at `maxMs`,
 * with the upper half jittered (`random` in [0, 1)).
 */
export function backoffMs(attempt: number, backoff: Backoff, random: number): number {
  const ceiling = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, Math.min(attempt - 1, 30)));
  return Math.max(1, Math.round(ceiling / 2 + (ceiling / 2) * random));
}

// Envoy's priority load: what percent of requests each priority level's healthy and degraded hosts receive.

/** Envoy's default healthy_panic_threshold, in percent. */
export const PANIC_THRESHOLD_PERCENT = 50;

/** One priority level's hosts by health. DEGRADED hosts are neither healthy nor unhealthy. */
export interface LevelHealth {
  readonly healthy: number;
  readonly degraded: number;
  readonly total: number;
  /**
   * The load_balancing_weight sums of the same hosts. With weighted_priority_health they stand for the counts in
   * the level's availability (not in its panic test, which counts hosts, as Envoy's does).
   */
  readonly weights?: { readonly healthy: number; readonly degraded: number; readonly total: number };
}

export interface PriorityLoadOptions {
  /** overprovisioning_factor in percent (Envoy's default 140). */
  readonly overprovisioningFactor: number;
  /** healthy_panic_threshold in percent; 0 never panics. */
  readonly panicThreshold?: number;
  /** weighted_priority_health: availability from host weights rather than host counts. */
  readonly weighted?: boolean;
}

export interface PriorityLoad {
  /** Percent of requests for the healthy hosts of each level. */
  readonly healthy: readonly number[];
  /** Percent of requests for the degraded hosts of each level. Together with `healthy`: 100, or 0 without levels. */
  readonly degraded: readonly number[];
  /** Levels that balance over all their hosts, whatever their health. */
  readonly panic: readonly boolean[];
}

/**
 * Envoy's LoadBalancerBase::recalculatePerPriorityState, recalculatePerPriorityPanic and
 * recalculateLoadInTotalPanic, for a whole host set at once:
 *
 * - a level's availability: health_p = min(100, floor(factor * healthy_p / total_p)), and degraded_p the same of
 *   its degraded hosts (0 for an empty level);
 * - normalized total availability: min(100, sum of health_p + degraded_p);
 * - the 100 % of load goes to healthy hosts first, level by level: min(left, floor(health_p * 100 / total)), then
 *   what is left to degraded hosts the same way; a rounding remainder goes to the first level with healthy hosts,
 *   else to the first with degraded ones;
 * - while the total is below 100, a level whose healthy + degraded share is under the panic threshold is in
 *   panic: its load goes to all its hosts;
 * - when every level is in panic ("total panic", e.g. nothing available), the load follows host counts instead:
 *   floor(100 * total_p / all hosts), the remainder to the first non-empty level. (Envoy's panic-threshold page
 *   says such traffic all goes to P=0; its code, followed here, spreads it by host count.)
 */
export function computePriorityLoad(
  levels: readonly LevelHealth[],
  options: PriorityLoadOptions,
): PriorityLoad {
  const n = levels.length;
  const healthy = new Array<number>(n).fill(0);
  const degraded = new Array<number>(n).fill(0);
  const panic = new Array<boolean>(n).fill(false);
  if (n === 0) return { healthy, degraded, panic };
  const factor = options.overprovisioningFactor;
  const threshold = Math.min(100, options.panicThreshold ?? PANIC_THRESHOLD_PERCENT);
  const healthAvail = new Array<number>(n).fill(0);
  const degradedAvail = new Array<number>(n).fill(0);
  let sum = 0;
  for (let p = 0; p < n; p++) {
    const l = levels[p]!;
    const w = options.weighted && l.weights !== undefined ? l.weights : l;
    if (l.total > 0 && w.total > 0) {
      healthAvail[p] = Math.min(100, Math.floor((factor * w.healthy) / w.total));
      degradedAvail[p] = Math.min(100, Math.floor((factor * w.degraded) / w.total));
    }
    sum += healthAvail[p]! + degradedAvail[p]!;
  }
  const total = Math.min(100, sum);
  if (total > 0) {
    const firstHealthy = distribute(healthy, healthAvail, 100, total);
    const firstDegraded = distribute(degraded, degradedAvail, firstHealthy.left, total);
    if (firstDegraded.left > 0) {
      const h = firstHealthy.first;
      const d = firstDegraded.first;
      if (h >= 0) healthy[h] = healthy[h]! + firstDegraded.left;
      else degraded[d] = degraded[d]! + firstDegraded.left;
    }
  }
  if (threshold === 0 && total === 0) {
    // Panic disabled and nothing available: the load must still add up to 100, on a level with no host to pick.
    healthy[0] = 100;
    return { healthy, degraded, panic };
  }
  let totalPanic = true;
  for (let p = 0; p < n; p++) {
    panic[p] = total < 100 && inPanic(levels[p]!, threshold);
    totalPanic &&= panic[p]!;
  }
  if (totalPanic) loadInTotalPanic(levels, healthy, degraded);
  return { healthy, degraded, panic };
}

/** Envoy's distributeLoad: fills `load` in priority order; returns the first level with availability, and what is left. */
function distribute(
  load: number[],
  availability: readonly number[],
  budget: number,
  total: number,
): { first: number; left: number } {
  let first = -1;
  let left = budget;
  for (let p = 0; p < availability.length; p++) {
    if (first < 0 && availability[p]! > 0) first = p;
    load[p] = Math.min(left, Math.floor((availability[p]! * 100) / total));
    left -= load[p]!;
  }
  return { first, left };
}

/** Envoy's isHostSetInPanic: healthy plus degraded share of the level's hosts under the threshold (an empty level is). */
function inPanic(l: LevelHealth, threshold: number): boolean {
  const available = l.total === 0 ? 0 : (100 * l.healthy) / l.total + (100 * l.degraded) / l.total;
  return available < threshold;
}

function loadInTotalPanic(levels: readonly LevelHealth[], healthy: number[], degraded: number[]): void {
  let hosts = 0;
  for (const l of levels) hosts += l.total;
  healthy.fill(0);
  degraded.fill(0);
  if (hosts === 0) {
    healthy[0] = 100;
    return;
  }
  let left = 100;
  let firstNonEmpty = -1;
  for (let p = 0; p < levels.length; p++) {
    const t = levels[p]!.total;
    if (firstNonEmpty < 0 && t > 0) firstNonEmpty = p;
    healthy[p] = Math.floor((100 * t) / hosts);
    left -= healthy[p]!;
  }
  healthy[firstNonEmpty] = healthy[firstNonEmpty]! + left;
}

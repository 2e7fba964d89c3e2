// ClusterLoadAssignment.policy: overprovisioning factor, drop_overloads, endpoint_stale_after, weighted health.

import { durationField } from './durations.js';
import type { DropOverloadConfig, LoadAssignmentPolicy } from './model.js';
import { fractionalPercent } from './percent.js';
import { type Ctx, Fields } from './reader.js';

/** Envoy's kDefaultOverProvisioningFactor: 1.4, in percent. */
export const DEFAULT_OVERPROVISIONING_FACTOR = 140;

export const DEFAULT_LOAD_ASSIGNMENT_POLICY: LoadAssignmentPolicy = {
  overprovisioningFactor: DEFAULT_OVERPROVISIONING_FACTOR,
  dropOverload: undefined,
  endpointStaleAfterMs: undefined,
  weightedPriorityHealth: false,
};

/**
 * The policy at `path` (defaults when absent); undefined when invalid (errors recorded). `eds`: the assignment
 * comes from EDS, the only place where endpoint_stale_after has a meaning (as in Envoy, where only the EDS cluster
 * runs the timer; a cluster's own load_assignment never goes stale, so Remora refuses it there).
 */
export function loadAssignmentPolicy(
  ctx: Ctx,
  raw: unknown,
  path: string,
  eds: boolean,
): LoadAssignmentPolicy | undefined {
  if (raw === undefined) return DEFAULT_LOAD_ASSIGNMENT_POLICY;
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  let failed = false;
  const factor = f.int('overprovisioning_factor', { min: 1 });
  if (given(f, 'overprovisioning_factor') && factor === undefined) failed = true;
  if (given(f, 'drop_overloads') && !Array.isArray(f.take('drop_overloads'))) failed = true; // list() says why
  const drops = f.list('drop_overloads');
  if (drops.length > 1) {
    // Envoy NACKs more than one category; applying them one after the other is left to other data planes.
    f.error('drop_overloads', `only one category is supported (as in Envoy), got ${drops.length}`);
    failed = true;
  }
  const dropOverload = drops.length === 1 ? dropOverloadOf(ctx, drops[0]!.value, drops[0]!.path) : undefined;
  if (drops.length === 1 && dropOverload === undefined) failed = true;
  let endpointStaleAfterMs: number | undefined;
  if (given(f, 'endpoint_stale_after') && !eds) {
    f.take('endpoint_stale_after');
    f.error(
      'endpoint_stale_after',
      "applies only to a ClusterLoadAssignment delivered by EDS: a cluster's own load_assignment never goes stale",
    );
    failed = true;
  } else {
    endpointStaleAfterMs = durationField(f, 'endpoint_stale_after', { positive: true });
    if (given(f, 'endpoint_stale_after') && endpointStaleAfterMs === undefined) failed = true;
  }
  const weighted = f.bool('weighted_priority_health');
  if (given(f, 'weighted_priority_health') && weighted === undefined) failed = true;
  f.finish();
  if (failed) return undefined;
  return {
    overprovisioningFactor: factor ?? DEFAULT_OVERPROVISIONING_FACTOR,
    dropOverload,
    endpointStaleAfterMs,
    weightedPriorityHealth: weighted ?? false,
  };
}

function dropOverloadOf(ctx: Ctx, raw: unknown, path: string): DropOverloadConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const category = f.string('category', { required: true });
  const perMillion = fractionalPercent(f, 'drop_percentage');
  const badPercent = given(f, 'drop_percentage') && perMillion === undefined;
  f.finish();
  if (category === undefined || badPercent) return undefined;
  return { category, perMillion: perMillion ?? 0 };
}

/** Whether a field holds a value (absent, null and undefined do not); marks it read. */
function given(f: Fields, name: string): boolean {
  return f.take(name) !== undefined;
}

// Which security policies apply to a workload: Istio's inheritance of mTLS modes and its selection of authorization policies.

import type { AuthorizationPolicyObject, Labels, MtlsMode, PeerAuthenticationObject } from './objects.js';
import { selects } from './objects.js';

/** Policies here apply to the whole mesh, as in Istio's default root namespace. */
export const MESH_ROOT_NAMESPACE = 'istio-system';

/** What a workload ends up with when nothing says otherwise (Istio's default). */
export const DEFAULT_MTLS_MODE = 'PERMISSIVE';

export type EffectiveMtlsMode = Exclude<MtlsMode, 'UNSET'>;

/** A workload's mTLS: its mode, and the ports whose mode differs from it. */
export interface WorkloadMtls {
  readonly mode: EffectiveMtlsMode;
  readonly ports: Readonly<Record<number, EffectiveMtlsMode>>;
}

/**
 * `policies` in the snapshot's order (by namespace, then name), so of several equally specific ones the first by
 * name wins (Istio takes the oldest; objects here carry no creation time).
 *
 * Istio's resolution: the workload's own policy (a selector matching its labels) over its namespace's (no
 * selector) over the mesh's (root namespace, no selector); UNSET inherits from the next level up, and port-level
 * modes from the workload policy override its mode for that port. Nothing set anywhere: PERMISSIVE.
 */
export function mtlsFor(
  policies: readonly PeerAuthenticationObject[],
  namespace: string,
  labels: Labels,
  root = MESH_ROOT_NAMESPACE,
): WorkloadMtls {
  const mesh = policies.find((p) => p.meta.namespace === root && p.selector === undefined);
  const ns = policies.find((p) => p.meta.namespace === namespace && p.selector === undefined);
  const own = policies.find(
    (p) =>
      p.meta.namespace === namespace &&
      p.selector !== undefined &&
      Object.keys(p.selector).length > 0 &&
      selects(p.selector, labels),
  );
  let mode: EffectiveMtlsMode = DEFAULT_MTLS_MODE;
  for (const p of [mesh, namespace === root ? undefined : ns, own])
    if (p !== undefined && p.mode !== 'UNSET') mode = p.mode;
  const ports: Record<number, EffectiveMtlsMode> = {};
  for (const [port, m] of Object.entries(own?.portLevel ?? {}))
    if (m !== 'UNSET' && m !== mode) ports[Number(port)] = m;
  return { mode, ports };
}

/**
 * The AuthorizationPolicies that apply to a workload: those of the root namespace and of its namespace whose
 * selector is absent or matches its labels, in the order given (the snapshot's: by namespace and name; the order
 * does not change the result: DENY is evaluated before ALLOW, and any ALLOW match allows).
 */
export function authorizationPoliciesFor(
  policies: readonly AuthorizationPolicyObject[],
  namespace: string,
  labels: Labels,
  root = MESH_ROOT_NAMESPACE,
): AuthorizationPolicyObject[] {
  return policies.filter(
    (p) =>
      (p.meta.namespace === namespace || p.meta.namespace === root) &&
      (p.selector === undefined || selects(p.selector, labels)),
  );
}

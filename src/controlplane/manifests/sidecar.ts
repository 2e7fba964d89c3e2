// Istio Sidecar: which hosts a workload's sidecar may reach (egress hosts) and what happens to the rest.

import { quote } from '../../config/reader.js';
import { isDnsLabel, isHostPattern } from '../model/hosts.js';
import type { EgressHost, Origin, SidecarObject } from '../model/objects.js';
import { labelsOf, type Metadata } from './common.js';
import { Obj } from './reader.js';

/**
 * `namespace/host`: namespace is `*` (any), `.` (the Sidecar's own), `~` (none) or a name; host is `*`, `*.suffix` or a
 * DNS name. Istio also accepts a bare host without `namespace/`, meaning any namespace.
 */
export function parseEgressHost(raw: string, ownNamespace: string): EgressHost | string {
  const slash = raw.indexOf('/');
  const ns = slash < 0 ? '*' : raw.slice(0, slash);
  const host = (slash < 0 ? raw : raw.slice(slash + 1)).toLowerCase();
  if (ns !== '*' && ns !== '.' && ns !== '~' && !isDnsLabel(ns))
    return `${quote(ns)} is not "*", ".", "~" or a namespace name`;
  if (!isHostPattern(host)) return `${quote(host)} is not "*", "*.suffix" or a DNS name`;
  return { namespace: ns === '.' ? ownNamespace : ns, host, raw };
}

export function sidecarOf(top: Obj, md: Metadata, origin: Origin): SidecarObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  let workloadSelector: Record<string, string> | undefined;
  const ws = spec.object('workloadSelector');
  if (ws !== undefined) {
    workloadSelector = labelsOf(ws, 'labels') ?? {};
    ws.finish();
  }
  const egress: { hosts: EgressHost[] }[] = [];
  for (const item of spec.list('egress')) {
    const o = Obj.of(spec.ctx, item.value, item.path);
    if (o === undefined) continue;
    const hosts: EgressHost[] = [];
    for (const h of o.strings('hosts', { nonEmpty: true })) {
      const parsed = parseEgressHost(h.value as string, md.meta.namespace);
      if (typeof parsed === 'string') o.ctx.error(h.path, parsed);
      else hosts.push(parsed);
    }
    o.notYet(['port', 'bind', 'captureMode'], {
      port: 'per-port egress listeners',
      bind: 'egress listeners bound to an address',
      captureMode: 'egress capture modes',
    });
    o.finish();
    egress.push({ hosts });
  }
  let outboundTrafficPolicy: SidecarObject['outboundTrafficPolicy'];
  const otp = spec.object('outboundTrafficPolicy');
  if (otp !== undefined) {
    outboundTrafficPolicy = otp.enumOf('mode', ['REGISTRY_ONLY', 'ALLOW_ANY'] as const);
    otp.notYet(['egressProxy'], { egressProxy: 'an egress proxy' });
    otp.finish();
  }
  spec.notYet(['ingress', 'inboundConnectionPool'], {
    ingress: 'inbound listeners',
    inboundConnectionPool: 'inbound connection pool settings',
  });
  spec.finish();
  return { kind: 'Sidecar', meta: md.meta, origin, workloadSelector, egress, outboundTrafficPolicy };
}

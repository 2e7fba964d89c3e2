// What one group of proxies may see of the mesh: its Sidecar's egress hosts (or the default scope), the policies
// exported to its namespace, and what happens to traffic for anything else.

import { hostMatches } from '../model/hosts.js';
import {
  type DestinationRuleObject,
  type SidecarObject,
  selects,
  type VirtualServiceObject,
} from '../model/objects.js';
import type { MeshSnapshot, Service } from '../model/snapshot.js';
import type { ProxyGroup } from './identity.js';

export interface ProxyScope {
  /** The services the proxy gets configuration for, sorted by hostname. */
  readonly services: readonly Service[];
  /** Services whose selector selects the proxy's labels in its namespace: the ones its workload serves. */
  readonly own: readonly Service[];
  /** The Sidecar that applies, if any. */
  readonly sidecar: SidecarObject | undefined;
  /** Traffic for a destination the proxy has no configuration for: passed through, or refused. */
  readonly outboundPolicy: 'ALLOW_ANY' | 'REGISTRY_ONLY';
}

/** True when an object with `exportTo` in `owner`'s namespace is visible to proxies of `namespace`. */
export function exportedTo(
  exportTo: readonly string[] | undefined,
  owner: string,
  namespace: string,
): boolean {
  if (exportTo === undefined || exportTo.length === 0) return true;
  return exportTo.some((e) => e === '*' || (e === '.' ? owner === namespace : e === namespace));
}

/**
 * The scope of a group:
 * - With a Sidecar that lists egress hosts: the services those hosts match (`namespace/host`; namespace `*` any,
 *   `~` none).
 * - Otherwise (no Sidecar, or one without egress): the services of the proxy's own namespace, plus "what it calls":
 *   the hosts of the VirtualServices of its namespace. A proxyless gRPC client gets every service instead: it
 *   subscribes to the listeners it dials by name and is sent nothing else.
 * - Either way, plus the destinations of the VirtualServices of every host already in scope (repeated until
 *   nothing is added): a route the user wrote is a call the proxy makes, and a route to a cluster the proxy lacks
 *   could only fail.
 * Only services exported to the proxy's namespace count.
 */
export function proxyScope(snapshot: MeshSnapshot, proxy: ProxyGroup): ProxyScope {
  const ns = proxy.namespace;
  const visible = snapshot.services.filter((s) => exportedTo(s.exportTo, s.namespace, ns));
  const sidecar = snapshot.sidecarFor(ns, proxy.labels);
  const hosts = sidecar?.egress.flatMap((e) => e.hosts) ?? [];
  const chosen = new Set<string>();
  if (hosts.length === 0 && proxy.kind === 'grpc') {
    // A proxyless client is sent only the listeners it asks for by name: what it calls is what it asks for.
    for (const s of visible) chosen.add(s.hostname);
  } else if (hosts.length > 0) {
    for (const s of visible) {
      const allowed = hosts.some(
        (h) =>
          h.namespace !== '~' &&
          (h.namespace === '*' || h.namespace === s.namespace) &&
          hostMatches(h.host, s.hostname),
      );
      if (allowed) chosen.add(s.hostname);
    }
  } else {
    for (const s of visible) if (s.namespace === ns) chosen.add(s.hostname);
    for (const vs of snapshot.virtualServices) {
      if (vs.meta.namespace !== ns || !exportedTo(vs.exportTo, vs.meta.namespace, ns)) continue;
      for (const h of vs.hosts)
        for (const s of visible) if (hostMatches(h.fqdn, s.hostname)) chosen.add(s.hostname);
    }
  }
  const byHost = new Map(visible.map((s) => [s.hostname, s]));
  // Route destinations of hosts in scope, to a fixed point (each round adds at least one host, or stops).
  let frontier = [...chosen];
  while (frontier.length > 0) {
    const next: string[] = [];
    for (const host of frontier) {
      const vs = virtualServiceFor(snapshot, host, ns);
      for (const r of vs?.http ?? []) {
        for (const d of r.route) {
          const h = d.destination.fqdn;
          if (!chosen.has(h) && byHost.has(h)) {
            chosen.add(h);
            next.push(h);
          }
        }
      }
    }
    frontier = next;
  }
  const own = visible.filter(
    (s) =>
      s.namespace === ns &&
      s.kind === 'Service' &&
      s.selector !== undefined &&
      Object.keys(proxy.labels).length > 0 &&
      selects(s.selector, proxy.labels),
  );
  return {
    services: visible.filter((s) => chosen.has(s.hostname)),
    own,
    sidecar,
    outboundPolicy: sidecar?.outboundTrafficPolicy ?? 'ALLOW_ANY',
  };
}

/**
 * The VirtualService that routes `host` for proxies of `namespace`: the first exported to it, exact hosts before
 * wildcards, one of the proxy's own namespace first. (Two VirtualServices for one host are reported by
 * `remora analyze`; a sidecar uses one.)
 */
export function virtualServiceFor(
  snapshot: MeshSnapshot,
  host: string,
  namespace: string,
): VirtualServiceObject | undefined {
  const all = snapshot
    .virtualServicesFor(host)
    .filter((v) => exportedTo(v.exportTo, v.meta.namespace, namespace));
  const exact = all.filter((v) => v.hosts.some((h) => h.fqdn === host));
  const pool = exact.length > 0 ? exact : all;
  return pool.find((v) => v.meta.namespace === namespace) ?? pool[0];
}

/**
 * The DestinationRule for `host` as proxies of `namespace` see it: among those exported to it, an exact host before
 * the longest wildcard; on a tie, the proxy's namespace, then the service's, then the first by namespace and name.
 */
export function destinationRuleFor(
  snapshot: MeshSnapshot,
  service: Service,
  namespace: string,
): DestinationRuleObject | undefined {
  const candidates = snapshot.destinationRules.filter(
    (d) => exportedTo(d.exportTo, d.meta.namespace, namespace) && hostMatches(d.fqdn, service.hostname),
  );
  if (candidates.length === 0) return undefined;
  const specificity = (d: DestinationRuleObject) =>
    d.fqdn === service.hostname ? Number.MAX_SAFE_INTEGER : d.fqdn.length;
  const best = Math.max(...candidates.map(specificity));
  const top = candidates.filter((d) => specificity(d) === best);
  return (
    top.find((d) => d.meta.namespace === namespace) ??
    top.find((d) => d.meta.namespace === service.namespace) ??
    top[0]
  );
}

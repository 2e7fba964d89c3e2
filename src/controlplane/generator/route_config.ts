// RouteConfigurations: one per outbound HTTP port (a virtual host per service on it, then the fallback for
// unknown hosts), one per service port for proxyless gRPC, and the inline one of an inbound HTTP port.

import type { MeshSnapshot, Service } from '../model/snapshot.js';
import { inboundClusterName, type Json, outboundRouteName, PASSTHROUGH_CLUSTER } from './names.js';
import { serviceRoutes } from './routes.js';
import type { ProxyScope } from './scope.js';

/**
 * The names a client may use for a service on `port`, each alone and with `:port`: the hostname, and for a
 * Kubernetes Service `<name>.<ns>.svc`, `<name>.<ns>`, its cluster IPs, and the bare `<name>` for proxies of its
 * own namespace only (elsewhere the short name means a service of the proxy's namespace).
 */
export function serviceDomains(service: Service, port: number, namespace: string): string[] {
  const names = [service.hostname];
  if (service.kind === 'Service') {
    names.push(`${service.name}.${service.namespace}.svc`, `${service.name}.${service.namespace}`);
    if (service.namespace === namespace) names.push(service.name);
  }
  const out: string[] = [];
  for (const n of names) out.push(n, `${n}:${port}`);
  for (const ip of service.clusterIPs) {
    const host = ip.includes(':') ? `[${ip}]` : ip;
    out.push(host, `${host}:${port}`);
  }
  return out;
}

/** Virtual host `<hostname>:<port>` with the domains no earlier virtual host took (`taken` is updated). */
function virtualHost(
  snapshot: MeshSnapshot,
  service: Service,
  port: number,
  namespace: string,
  taken: Set<string>,
): Json | undefined {
  const domains = serviceDomains(service, port, namespace).filter((d) => !taken.has(d));
  if (domains.length === 0) return undefined;
  for (const d of domains) taken.add(d);
  return {
    name: `${service.hostname}:${port}`,
    domains,
    routes: serviceRoutes(snapshot, service, port, namespace),
  };
}

/**
 * The routes of outbound port `port`: a virtual host per service of the scope with an HTTP (or detected) port
 * `port`, then for any other host either `allow_any` (to where the request was going) or, under REGISTRY_ONLY,
 * `block_all` (502 with the reason).
 */
export function outboundRouteConfig(
  snapshot: MeshSnapshot,
  scope: ProxyScope,
  services: readonly Service[],
  port: number,
  namespace: string,
): Json {
  const taken = new Set<string>();
  const vhosts: Json[] = [];
  for (const s of services) {
    const vh = virtualHost(snapshot, s, port, namespace, taken);
    if (vh !== undefined) vhosts.push(vh);
  }
  vhosts.push(
    scope.outboundPolicy === 'ALLOW_ANY'
      ? {
          name: 'allow_any',
          domains: ['*'],
          routes: [
            {
              name: 'allow_any',
              match: { prefix: '/' },
              route: { cluster: PASSTHROUGH_CLUSTER, timeout: '0s' },
            },
          ],
        }
      : {
          name: 'block_all',
          domains: ['*'],
          routes: [
            {
              name: 'block_all',
              match: { prefix: '/' },
              direct_response: {
                status: 502,
                body: {
                  inline_string:
                    'remora: no service of this mesh answers to this host, and the Sidecar allows registered services only (outboundTrafficPolicy REGISTRY_ONLY)\n',
                },
              },
            },
          ],
        },
  );
  return { name: outboundRouteName(port), virtual_hosts: vhosts, validate_clusters: false };
}

/** The routes a proxyless gRPC client gets for `<hostname>:<port>`: that service's virtual host alone. */
export function proxylessRouteConfig(
  snapshot: MeshSnapshot,
  service: Service,
  port: number,
  namespace: string,
): Json {
  const name = `${service.hostname}:${port}`;
  return {
    name,
    virtual_hosts: [virtualHost(snapshot, service, port, namespace, new Set())!],
    validate_clusters: false,
  };
}

/** The inline routes of an inbound HTTP port: everything to the application on that port. */
export function inboundRouteConfig(port: number): Json {
  const cluster = inboundClusterName(port);
  return {
    name: cluster,
    virtual_hosts: [
      {
        name: `inbound|http|${port}`,
        domains: ['*'],
        routes: [{ name: 'default', match: { prefix: '/' }, route: { cluster, timeout: '0s' } }],
      },
    ],
    validate_clusters: false,
  };
}

// What a listener version waits for before it serves: the RDS route tables it names, the clusters it sends to, and
// how long it may wait.

import type { ListenerConfig, RouteConfig } from '../../config/model.js';
import type { SecretReadiness } from '../tls/reloading_context.js';

/**
 * The clusters a listener sends to: its tcp_proxy clusters, and those its routes name — inline, or in the RDS
 * tables `routeTable` has. A cluster header names clusters only per request: none here.
 */
export function clusterNamesOf(
  config: ListenerConfig,
  routeTable: (name: string) => RouteConfig | undefined,
): Set<string> {
  const names = new Set<string>();
  const chains = config.defaultFilterChain
    ? [...config.filterChains, config.defaultFilterChain]
    : config.filterChains;
  for (const c of chains) {
    if (c.filter.kind === 'tcp_proxy') {
      for (const w of c.filter.tcpProxy.clusters) names.add(w.name);
      continue;
    }
    const hcm = c.filter.hcm;
    const table = hcm.rds !== undefined ? routeTable(hcm.rds.routeConfigName) : hcm.routeConfig;
    for (const vh of table?.virtualHosts ?? [])
      for (const r of vh.routes)
        if (r.action.kind === 'route') for (const w of r.action.route.clusters) names.add(w.name);
  }
  return names;
}

/** The RDS route tables the connection managers of a listener name. */
export function rdsNamesOf(config: ListenerConfig): string[] {
  const names = new Set<string>();
  const chains = config.defaultFilterChain
    ? [...config.filterChains, config.defaultFilterChain]
    : config.filterChains;
  for (const c of chains) {
    if (c.filter.kind === 'http_connection_manager' && c.filter.hcm.rds !== undefined)
      names.add(c.filter.hcm.rds.routeConfigName);
  }
  return [...names];
}

/**
 * The longest initial fetch timeout of the listener's RDS sources and of the SDS secrets its filter chains still
 * wait for; 0 (wait for ever) when one says so.
 */
export function warmingTimeoutMs(
  config: ListenerConfig,
  chains: readonly {
    readonly tls?: { readonly readiness: Pick<SecretReadiness, 'ready' | 'initialFetchTimeoutMs'> };
  }[] = [],
): number {
  let ms = 0;
  for (const c of chains) {
    if (c.tls === undefined || c.tls.readiness.ready) continue;
    const t = c.tls.readiness.initialFetchTimeoutMs;
    if (t === 0) return 0;
    ms = Math.max(ms, t);
  }
  for (const c of [
    ...config.filterChains,
    ...(config.defaultFilterChain ? [config.defaultFilterChain] : []),
  ]) {
    if (c.filter.kind !== 'http_connection_manager' || c.filter.hcm.rds === undefined) continue;
    const t = c.filter.hcm.rds.configSource.initialFetchTimeoutMs;
    if (t === 0) return 0;
    ms = Math.max(ms, t);
  }
  return ms;
}

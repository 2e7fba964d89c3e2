// Proxyless gRPC clients (`xds:///<host>:<port>`): a Listener named `<hostname>:<port>` holding an api_listener
// HTTP connection manager that takes its routes by RDS, per HTTP service port of the scope.

import type { Service } from '../model/snapshot.js';
import { proxiedPorts } from './clusters.js';
import { adsConfigSource, type Json, portMode, routerFilter, TYPES } from './names.js';

/** The services and ports a gRPC client may dial: every port that is not plain TCP. */
export function proxylessTargets(services: readonly Service[]): { service: Service; port: number }[] {
  const out: { service: Service; port: number }[] = [];
  for (const service of services)
    for (const p of proxiedPorts(service))
      if (portMode(p.meshProtocol) !== 'tcp') out.push({ service, port: p.port });
  return out;
}

/** The listener a gRPC client resolving `xds:///<hostname>:<port>` asks for; its routes share its name. */
export function apiListener(service: Service, port: number): Json {
  const name = `${service.hostname}:${port}`;
  return {
    name,
    api_listener: {
      api_listener: {
        '@type': TYPES.hcm,
        stat_prefix: name,
        rds: { config_source: adsConfigSource(), route_config_name: name },
        http_filters: [routerFilter()],
      },
    },
  };
}

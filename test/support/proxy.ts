// Test support: builds Envoy-style bootstraps and runs a real Remora proxy in-process on port 0.

import { translateBootstrap } from '../../src/config/bootstrap.js';
import { formatErrors } from '../../src/config/result.js';
import { Logger } from '../../src/dataplane/observe/log.js';
import { ProxyServer } from '../../src/dataplane/server.js';
import type { Lookup } from '../../src/dataplane/upstream/dns.js';

export const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const ROUTER_TYPE = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

export type Json = Record<string, unknown>;

/** Listener filters that tell TLS from plaintext (and read SNI / ALPN) and HTTP/1.x / h2c from other bytes. */
export const TLS_INSPECTOR: Json = {
  name: 'envoy.filters.listener.tls_inspector',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  },
};
export const HTTP_INSPECTOR: Json = {
  name: 'envoy.filters.listener.http_inspector',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  },
};

export function endpoint(port: number, opts: { address?: string; weight?: number } = {}): Json {
  const ep: Json = {
    endpoint: { address: { socket_address: { address: opts.address ?? '127.0.0.1', port_value: port } } },
  };
  if (opts.weight !== undefined) ep.load_balancing_weight = opts.weight;
  return ep;
}

/** A STATIC cluster over local ports; `extra` is merged into the cluster (lb_policy, circuit_breakers ...). */
export function staticCluster(name: string, ports: readonly number[], extra: Json = {}): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: ports.map((p) => endpoint(p)) }] },
    ...extra,
  };
}

/** An address on loopback where no test ever listens: connections to it are refused at once. */
export const DEAD_ADDRESS = '127.0.0.254';

/** A STATIC cluster whose only endpoint refuses connections (a port no other test can take over). */
export function deadCluster(name: string, port: number, extra: Json = {}): Json {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [endpoint(port, { address: DEAD_ADDRESS })] }],
    },
    ...extra,
  };
}

export function hcmFilter(routeConfig: Json, extra: Json = {}): Json {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM_TYPE,
      stat_prefix: 'ingress',
      route_config: routeConfig,
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
      ...extra,
    },
  };
}

/** One virtual host answering every domain with the given routes. */
export function routes(list: Json[], vhostExtra: Json = {}): Json {
  return { name: 'local', virtual_hosts: [{ name: 'all', domains: ['*'], routes: list, ...vhostExtra }] };
}

export function httpListener(name: string, routeConfig: Json, hcmExtra: Json = {}): Json {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [{ filters: [hcmFilter(routeConfig, hcmExtra)] }],
  };
}

export function tcpListener(name: string, cluster: string, extra: Json = {}): Json {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typed_config: { '@type': TCP_PROXY_TYPE, stat_prefix: name, cluster, ...extra },
          },
        ],
      },
    ],
  };
}

export function bootstrap(listeners: Json[], clusters: Json[]): Json {
  return {
    node: { id: 'test', cluster: 'test' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: 0 } } },
    static_resources: { listeners, clusters },
  };
}

export interface RunningProxy {
  readonly server: ProxyServer;
  /** http://127.0.0.1:PORT of a listener (the first one when no name is given). */
  url(listener?: string): string;
  port(listener?: string): number;
  readonly adminUrl: string;
  /** A counter or gauge value by its Envoy name, e.g. "cluster.web.upstream_rq_retry". */
  stat(name: string): number;
  close(): Promise<void>;
}

export async function startProxy(
  config: Json,
  opts: { drainTimeMs?: number; lookup?: Lookup } = {},
): Promise<RunningProxy> {
  const result = translateBootstrap(config);
  if (!result.ok) throw new Error(`test bootstrap is invalid:\n${formatErrors(result.errors)}`);
  const server = await ProxyServer.start(result.value, {
    drainTimeMs: opts.drainTimeMs ?? 1000,
    logger: new Logger('error'),
    rawBootstrap: config,
    lookup: opts.lookup,
  });
  const admin = server.adminAddress!;
  const port = (name?: string): number => {
    const l = name ? server.listenerAddress(name) : server.activeListeners[0]?.address;
    if (!l) throw new Error(`no listener ${name}`);
    return l.port;
  };
  return {
    server,
    port,
    url: (name) => `http://127.0.0.1:${port(name)}`,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    stat(name) {
      for (const c of server.stats.allCounters()) if (c.name === name) return c.value;
      for (const g of server.stats.allGauges()) if (g.name === name) return g.value;
      throw new Error(`no stat ${name}`);
    },
    close: () => server.close(),
  };
}

// Test support for the sidecar driven by xDS: hand-written resources, an in-process ADS server holding them, a
// proxy whose bootstrap has only ads_config, and a load loop that counts every response.

import { Agent, request } from 'node:http';
import { adsBootstrap as sidecarBootstrap } from '../../src/cli/ads_bootstrap.js';
import { translateBootstrap } from '../../src/config/bootstrap.js';
import { formatErrors } from '../../src/config/result.js';
import { AdsServer } from '../../src/controlplane/xds/ads_server.js';
import { Snapshot, SnapshotCache } from '../../src/controlplane/xds/cache.js';
import { XdsResource } from '../../src/controlplane/xds/resource.js';
import { Logger } from '../../src/dataplane/observe/log.js';
import { ProxyServer } from '../../src/dataplane/server.js';
import { XDS_TYPE_URLS } from '../../src/xds/protos.js';
import { HCM_TYPE, type Json, ROUTER_TYPE } from './proxy.js';

export const NODE_ID = 'sidecar~127.0.0.1~web-0.default~default.svc.cluster.local';

/** An EDS cluster whose endpoints come over ADS. */
export function edsCluster(name: string, extra: Json = {}): Json {
  return {
    name,
    type: 'EDS',
    connect_timeout: '1s',
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    ...extra,
  };
}

/** A ClusterLoadAssignment of loopback ports, in one locality. */
export function assignment(name: string, ports: readonly number[]): Json {
  return {
    cluster_name: name,
    endpoints: [
      {
        locality: { region: 'local' },
        load_balancing_weight: 1,
        lb_endpoints: ports.map((port_value) => ({
          endpoint: { address: { socket_address: { address: '127.0.0.1', port_value } } },
        })),
      },
    ],
  };
}

/** A listener on 127.0.0.1 (port 0 unless given) whose HCM takes its routes by RDS. */
export function rdsListener(name: string, routeName: string, opts: { port?: number; hcm?: Json } = {}): Json {
  return {
    name,
    address: { socket_address: { address: '127.0.0.1', port_value: opts.port ?? 0 } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': HCM_TYPE,
              stat_prefix: name,
              rds: { route_config_name: routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
              http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER_TYPE } }],
              ...opts.hcm,
            },
          },
        ],
      },
    ],
  };
}

/** One virtual host for every domain; `/` goes to the clusters with their weights. */
export function weightedRoute(name: string, weights: Readonly<Record<string, number>>): Json {
  const clusters = Object.entries(weights).map(([cluster, weight]) => ({ name: cluster, weight }));
  return {
    name,
    virtual_hosts: [
      {
        name: 'all',
        domains: ['*'],
        routes: [{ match: { prefix: '/' }, route: { weighted_clusters: { clusters } } }],
      },
    ],
  };
}

export interface Resources {
  readonly clusters?: readonly Json[];
  readonly endpoints?: readonly Json[];
  readonly listeners?: readonly Json[];
  readonly routes?: readonly Json[];
  readonly secrets?: readonly Json[];
}

export function snapshotOf(r: Resources): Snapshot {
  const all: XdsResource[] = [];
  const add = (typeUrl: string, list: readonly Json[] | undefined) => {
    for (const json of list ?? []) {
      const res = XdsResource.fromJson(typeUrl, json);
      if (!res.ok) throw new Error(`test resource is invalid:\n${formatErrors(res.errors)}`);
      all.push(res.value);
    }
  };
  add(XDS_TYPE_URLS.cluster, r.clusters);
  add(XDS_TYPE_URLS.endpoint, r.endpoints);
  add(XDS_TYPE_URLS.listener, r.listeners);
  add(XDS_TYPE_URLS.route, r.routes);
  add(XDS_TYPE_URLS.secret, r.secrets);
  return Snapshot.from(all);
}

export interface ControlPlane {
  readonly server: AdsServer;
  readonly cache: SnapshotCache;
  readonly port: number;
  /** Serves these resources to the test node (replacing what it had). */
  set(r: Resources): void;
  close(): Promise<void>;
}

export async function startControlPlane(r: Resources, port = 0): Promise<ControlPlane> {
  const cache = new SnapshotCache();
  const set = (res: Resources) => {
    const result = cache.set(NODE_ID, snapshotOf(res));
    if (!result.ok) throw new Error(`inconsistent test snapshot:\n${formatErrors([...result.errors])}`);
  };
  set(r);
  const server = await AdsServer.listen({ cache, host: '127.0.0.1', port, debounceMs: 5, maxDebounceMs: 50 });
  return { server, cache, port: server.port, set, close: () => server.close() };
}

/**
 * A bootstrap with nothing but the ADS server and admin on port 0. The server is a static cluster of the given
 * ports (envoy_grpc), or with `googleGrpc` one target URI per port.
 */
export function adsBootstrap(
  adsPorts: readonly number[],
  opts: { delta?: boolean; googleGrpc?: boolean } = {},
): Json {
  return sidecarBootstrap({
    node: { id: NODE_ID, cluster: 'web', metadata: { NAMESPACE: 'default', LABELS: { app: 'web' } } },
    adminPort: 0,
    controlPlanes: adsPorts.map((port) => ({ address: '127.0.0.1', port })),
    ...opts,
  });
}

/** Starts a proxy from a bootstrap without waiting for it to go LIVE (see `server.live`). */
export async function startXdsProxy(
  config: Json,
  opts: { cacheDir?: string; drainTimeMs?: number } = {},
): Promise<ProxyServer> {
  const result = translateBootstrap(config);
  if (!result.ok) throw new Error(`test bootstrap is invalid:\n${formatErrors(result.errors)}`);
  return ProxyServer.start(result.value, {
    drainTimeMs: opts.drainTimeMs ?? 5000,
    logger: new Logger('critical'),
    rawBootstrap: config,
    xdsCacheDir: opts.cacheDir,
    xdsBackoff: { baseMs: 100, maxMs: 1000 },
  });
}

export interface GetResult {
  readonly status: number;
  readonly upstream: string | undefined;
  readonly body: string;
}

/** One GET through `agent` (keep-alive), with the answering upstream's name from x-upstream. */
export function get(port: number, path = '/', agent?: Agent): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          upstream: res.headers['x-upstream'] as string | undefined,
          body: Buffer.concat(chunks).toString(),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  /** Responses by "status upstream", e.g. "200 a". */
  readonly counts: Readonly<Record<string, number>>;
  /** Requests that got no response at all (connection errors), with the error. */
  readonly errors: readonly string[];
  readonly total: number;
}

/**
 * Sends GETs back to back on `concurrency` keep-alive connections until stopped; every request is counted,
 * answered or not. `last` is the upstream that answered most recently.
 */
export function loadLoop(port: number, concurrency = 4) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const counts: Record<string, number> = {};
  const errors: string[] = [];
  let total = 0;
  let stopped = false;
  let last: string | undefined;
  const worker = async () => {
    while (!stopped) {
      total++;
      try {
        const r = await get(port, '/', agent);
        const key = `${r.status} ${r.upstream ?? '-'}`;
        counts[key] = (counts[key] ?? 0) + 1;
        last = r.upstream;
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  const running = Promise.all(Array.from({ length: concurrency }, worker));
  return {
    get last(): string | undefined {
      return last;
    },
    get total(): number {
      return total;
    },
    async stop(): Promise<LoadResult> {
      stopped = true;
      await running;
      agent.destroy();
      return { counts, errors, total };
    },
  };
}

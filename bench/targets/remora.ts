// The Remora targets: `bin/remora proxy -c <bootstrap>`; `remora` has HTTP (HTTP/1.1 and h2c by codec_type
// AUTO), tcp_proxy and gRPC listeners, `remora-h2up` one h2c listener in front of an HTTP/2 cluster (the sidecar
// pair of the mesh scenario is in mesh.ts).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, repoRoot, spawnManaged, waitReady } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, Endpoints, RunningTarget, Target } from './target.js';

/** BENCH_REMORA points at another Remora entry script (run with this node), e.g. a second checkout. */
export const bin = process.env.BENCH_REMORA ?? join(repoRoot, 'bin', 'remora');

/**
 * How a Remora process is started: bin/remora runs as a program, as users run it (it starts Node with its own
 * flags); another entry script runs with this node.
 */
export function remoraCommand(args: readonly string[]): { command: string; args: string[] } {
  return process.env.BENCH_REMORA === undefined
    ? { command: bin, args: [...args] }
    : { command: process.execPath, args: [bin, ...args] };
}
/** What must exist before the default entry script can run. */
const required = process.env.BENCH_REMORA ?? join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** A listener of the generated bootstrap: an HTTP connection manager or a tcp_proxy to one cluster. */
export interface RemoraListener {
  name: string;
  port: number;
  kind: 'http' | 'tcp';
  cluster: string;
}

/** A STATIC cluster of one endpoint; `http2` makes Remora speak h2c to it. */
export interface RemoraCluster {
  name: string;
  port: number;
  http2?: boolean;
}

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HTTP_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function listenerYaml(l: RemoraListener): string {
  const filter =
    l.kind === 'http'
      ? `      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": ${HCM}
          stat_prefix: ${l.name}
          route_config:
            virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: ${l.cluster} } }] }]
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }]`
      : `      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": ${TCP_PROXY}, stat_prefix: ${l.name}, cluster: ${l.cluster} }`;
  return `  - name: ${l.name}
    address: { socket_address: { address: 127.0.0.1, port_value: ${l.port} } }
    filter_chains:
    - filters:
${filter}
`;
}

function clusterYaml(c: RemoraCluster): string {
  const http2 = c.http2
    ? `    typed_extension_protocol_options:
      ${HTTP_OPTIONS}:
        "@type": type.googleapis.com/${HTTP_OPTIONS}
        explicit_http_config: { http2_protocol_options: {} }
`
    : '';
  return `  - name: ${c.name}
    type: STATIC
${http2}    load_assignment: { cluster_name: ${c.name}, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${c.port} } } } }] }] }
`;
}

/** The Envoy v3 bootstrap Remora runs with. */
export function remoraBootstrap(
  adminPort: number,
  listeners: readonly RemoraListener[],
  clusters: readonly RemoraCluster[],
): string {
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${adminPort} } } }
static_resources:
  listeners:
${listeners.map(listenerYaml).join('')}  clusters:
${clusters.map(clusterYaml).join('')}`;
}

/** Starts Remora on a bootstrap in `<tmpDir>/<name>/` and resolves once every listener and admin /ready answer. */
async function startRemora(
  name: string,
  env: BenchEnv,
  listeners: readonly RemoraListener[],
  clusters: readonly RemoraCluster[],
  endpoints: Endpoints,
): Promise<RunningTarget> {
  const dir = join(env.tmpDir, name);
  mkdirSync(dir, { recursive: true });
  const adminPort = await freePort();
  const file = join(dir, 'bootstrap.yaml');
  writeFileSync(file, remoraBootstrap(adminPort, listeners, clusters));
  const run = remoraCommand(['proxy', '-c', file]);
  const proc = spawnManaged(name, run.command, run.args, env.proxyCpu);
  const ports = listeners.map((l) => l.port);
  const running = await runningTarget(proc, endpoints, { ports }, 15_000);
  try {
    await waitReady(proc, { url: `http://127.0.0.1:${adminPort}/ready` }, 5_000);
  } catch (err) {
    await running.stop();
    throw new Error(`admin /ready: ${(err as Error).message}`);
  }
  return running;
}

export const unavailable = (): string | undefined =>
  existsSync(required) ? undefined : `${required} missing (npm run build)`;

export const remora: Target = {
  name: 'remora',
  // 'mesh': one Remora in plaintext on the mesh scenario's path, beside the sidecar pair.
  protocols: ['http', 'tcp', 'h2', 'grpc', 'mesh'],
  unavailable,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const [httpPort, tcpPort] = [await freePort(), await freePort()];
    const listeners: RemoraListener[] = [
      { name: 'http', port: httpPort, kind: 'http', cluster: 'upstream' },
      { name: 'tcp', port: tcpPort, kind: 'tcp', cluster: 'echo' },
    ];
    const clusters: RemoraCluster[] = [
      { name: 'upstream', port: env.upstreamPort },
      { name: 'echo', port: env.echoPort },
    ];
    const grpcPort = env.grpcPort === undefined ? undefined : await freePort();
    if (grpcPort !== undefined) {
      listeners.push({ name: 'grpc', port: grpcPort, kind: 'http', cluster: 'grpc' });
      clusters.push({ name: 'grpc', port: env.grpcPort!, http2: true });
    }
    // codec_type AUTO (the default) tells h2c from HTTP/1.1 by the preface: one listener serves both.
    const endpoints = {
      httpPort,
      tcpPort,
      h2Port: httpPort,
      meshPort: httpPort,
      ...(grpcPort === undefined ? {} : { grpcPort }),
    };
    return startRemora('remora', env, listeners, clusters, endpoints);
  },
};

export const remoraH2Up: Target = {
  name: 'remora-h2up',
  protocols: ['h2'],
  unavailable,
  async start(env: BenchEnv): Promise<RunningTarget> {
    if (env.h2UpstreamPort === undefined) throw new Error('no h2c upstream in this run');
    const h2Port = await freePort();
    return startRemora(
      'remora-h2up',
      env,
      [{ name: 'h2', port: h2Port, kind: 'http', cluster: 'upstream_h2' }],
      [{ name: 'upstream_h2', port: env.h2UpstreamPort, http2: true }],
      { h2Port },
    );
  },
};

// The Remora target: `bin/remora proxy -c <bootstrap>` with an HTTP listener and a tcp_proxy listener.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, repoRoot, spawnManaged, waitReady } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

/** BENCH_REMORA points at another Remora entry script (run with this node), e.g. a second checkout. */
const bin = process.env.BENCH_REMORA ?? join(repoRoot, 'bin', 'remora');
/** What must exist before the default entry script can run. */
const required = process.env.BENCH_REMORA ?? join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** The Envoy v3 bootstrap Remora runs with. */
export function remoraBootstrap(p: {
  adminPort: number;
  httpPort: number;
  tcpPort: number;
  upstreamPort: number;
  echoPort: number;
}): string {
  const endpoint = (port: number): string =>
    `[{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } } }] }]`;
  return `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${p.adminPort} } } }
static_resources:
  listeners:
  - name: http
    address: { socket_address: { address: 127.0.0.1, port_value: ${p.httpPort} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          route_config:
            virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: upstream } }] }]
          http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router } }]
  - name: tcp
    address: { socket_address: { address: 127.0.0.1, port_value: ${p.tcpPort} } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.tcp_proxy
        typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy, stat_prefix: tcp, cluster: echo }
  clusters:
  - name: upstream
    type: STATIC
    load_assignment: { cluster_name: upstream, endpoints: ${endpoint(p.upstreamPort)} }
  - name: echo
    type: STATIC
    load_assignment: { cluster_name: echo, endpoints: ${endpoint(p.echoPort)} }
`;
}

export const remora: Target = {
  name: 'remora',
  unavailable: () => (existsSync(required) ? undefined : `${required} missing (npm run build)`),
  async start(env: BenchEnv): Promise<RunningTarget> {
    const dir = join(env.tmpDir, 'remora');
    mkdirSync(dir, { recursive: true });
    const [adminPort, httpPort, tcpPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'bootstrap.yaml');
    writeFileSync(
      file,
      remoraBootstrap({
        adminPort,
        httpPort,
        tcpPort,
        upstreamPort: env.upstreamPort,
        echoPort: env.echoPort,
      }),
    );
    const proc = spawnManaged('remora', process.execPath, [bin, 'proxy', '-c', file], env.proxyCpu);
    const running = await runningTarget(proc, { httpPort, tcpPort }, { ports: [httpPort, tcpPort] }, 15_000);
    try {
      await waitReady(proc, { url: `http://127.0.0.1:${adminPort}/ready` }, 5_000);
    } catch (err) {
      await running.stop();
      throw new Error(`admin /ready: ${(err as Error).message}`);
    }
    return running;
  },
};

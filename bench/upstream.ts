// Starts the servers behind every proxy: an HTTP/1.1 'hello' upstream (nginx, else Node), a TCP echo server,
// and when their scenarios run, an h2c 'hello' upstream (the same nginx, else Node) and a grpc-js server.

import { join } from 'node:path';
import { benchDistDir, freePort, type Managed, spawnManaged, waitReady } from './proc.js';
import {
  hasNginx,
  nginxH2Listen,
  nginxHasHttp2,
  nginxHttpCommon,
  nginxPreamble,
  spawnNginx,
} from './targets/nginx.js';
import type { Protocol } from './targets/target.js';

/** Which implementation serves the HTTP upstream. */
export type UpstreamKind = 'nginx' | 'node';

/** The running backends; `stop` ends all of them. */
export interface Backends {
  readonly upstreamKind: UpstreamKind;
  readonly upstreamPort: number;
  readonly echoPort: number;
  /** Which implementation serves h2c, when an h2c scenario runs. */
  readonly h2UpstreamKind?: UpstreamKind;
  readonly h2UpstreamPort?: number;
  /** The grpc-js server, when a gRPC scenario runs. */
  readonly grpcPort?: number;
  /** Reason one backend died, or undefined while all run. */
  health(): string | undefined;
  stop(): Promise<void>;
}

/** Picks nginx when installed unless `preferred` says otherwise. */
export function chooseUpstream(preferred: string | undefined): UpstreamKind {
  if (preferred === 'node') return 'node';
  if (preferred === 'nginx' && !hasNginx())
    throw new Error('BENCH_UPSTREAM=nginx but nginx is not installed');
  return hasNginx() ? 'nginx' : 'node';
}

const HELLO = `location / {
      default_type text/plain;
      return 200 'hello';
    }`;

function nginxUpstreamConf(dir: string, port: number, h2Port: number | undefined): string {
  const h2 =
    h2Port === undefined
      ? ''
      : `
  server {
    ${nginxH2Listen(h2Port)}
    ${HELLO}
  }`;
  return `${nginxPreamble(dir)}
http {${nginxHttpCommon(dir)}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    ${HELLO}
  }${h2}
}
`;
}

const nodeChild = (name: string, script: string, port: number, cpu: number | undefined): Managed =>
  spawnManaged(name, process.execPath, [join(benchDistDir, 'children', script), String(port)], cpu);

/**
 * Starts the backends `protocols` need, pinned to `cpu` (the load generator's core, leaving the proxy's
 * core alone). The HTTP/1.1 upstream and the echo server always run.
 */
export async function startBackends(
  kind: UpstreamKind,
  tmpDir: string,
  cpu: number | undefined,
  protocols: ReadonlySet<Protocol>,
  /** The compiled C TCP tool (tcp-tool.ts) serves the echo when there is one. */
  tcpTool: string | undefined,
): Promise<Backends> {
  const upstreamPort = await freePort();
  const echoPort = await freePort();
  const h2UpstreamPort = protocols.has('h2') ? await freePort() : undefined;
  // One nginx serves both upstreams when it can speak h2c; otherwise h2c comes from a Node child.
  const h2Kind: UpstreamKind | undefined =
    h2UpstreamPort === undefined ? undefined : kind === 'nginx' && nginxHasHttp2() ? 'nginx' : 'node';
  const grpcPort = protocols.has('grpc') ? await freePort() : undefined;
  const procs: Managed[] = [];
  try {
    const dir = join(tmpDir, 'nginx-upstream');
    const upstream =
      kind === 'nginx'
        ? spawnNginx(
            'upstream-nginx',
            dir,
            nginxUpstreamConf(dir, upstreamPort, h2Kind === 'nginx' ? h2UpstreamPort : undefined),
            cpu,
          )
        : nodeChild('upstream-node', 'upstream-http.js', upstreamPort, cpu);
    procs.push(upstream);
    const echo =
      tcpTool === undefined
        ? nodeChild('echo', 'echo.js', echoPort, cpu)
        : spawnManaged('echo', tcpTool, ['serve', String(echoPort)], cpu);
    procs.push(echo);
    const h2 =
      h2Kind === 'node' ? nodeChild('upstream-h2', 'upstream-h2.js', h2UpstreamPort!, cpu) : undefined;
    if (h2 !== undefined) procs.push(h2);
    const grpc =
      grpcPort === undefined ? undefined : nodeChild('grpc-server', 'grpc-server.js', grpcPort, cpu);
    if (grpc !== undefined) procs.push(grpc);
    await waitReady(upstream, { url: `http://127.0.0.1:${upstreamPort}/` });
    await waitReady(echo, { ports: [echoPort] });
    if (h2UpstreamPort !== undefined) await waitReady(h2 ?? upstream, { ports: [h2UpstreamPort] });
    if (grpc !== undefined) await waitReady(grpc, { ports: [grpcPort!] });
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop()));
    throw err;
  }
  return {
    upstreamKind: kind,
    upstreamPort,
    echoPort,
    ...(h2Kind === undefined ? {} : { h2UpstreamKind: h2Kind, h2UpstreamPort }),
    ...(grpcPort === undefined ? {} : { grpcPort }),
    health() {
      const dead = procs.find((p) => p.exited !== undefined);
      return dead === undefined
        ? undefined
        : `${dead.name} exited: ${dead.output().trim().split('\n').at(-1) ?? ''}`;
    },
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
}

// Starts the servers behind every proxy: an HTTP/1.1 'hello' upstream (nginx, else Node) and a TCP echo server.

import { join } from 'node:path';
import { benchDistDir, freePort, type Managed, spawnManaged, waitReady } from './proc.js';
import { hasNginx, nginxHttpCommon, nginxPreamble, spawnNginx } from './targets/nginx.js';

/** Which implementation serves the HTTP upstream. */
export type UpstreamKind = 'nginx' | 'node';

/** The running backends; `stop` ends both. */
export interface Backends {
  readonly upstreamKind: UpstreamKind;
  readonly upstreamPort: number;
  readonly echoPort: number;
  /** Reason one backend died, or undefined while both run. */
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

function nginxUpstreamConf(dir: string, port: number): string {
  return `${nginxPreamble(dir)}
http {${nginxHttpCommon(dir)}
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      default_type text/plain;
      return 200 'hello';
    }
  }
}
`;
}

/** Starts both backends pinned to `cpu` (the load generator's core, leaving the proxy's core alone). */
export async function startBackends(
  kind: UpstreamKind,
  tmpDir: string,
  cpu: number | undefined,
): Promise<Backends> {
  const upstreamPort = await freePort();
  const echoPort = await freePort();
  const procs: Managed[] = [];
  try {
    const upstream =
      kind === 'nginx'
        ? spawnNginx(
            'upstream-nginx',
            join(tmpDir, 'nginx-upstream'),
            nginxUpstreamConf(join(tmpDir, 'nginx-upstream'), upstreamPort),
            cpu,
          )
        : spawnManaged(
            'upstream-node',
            process.execPath,
            [join(benchDistDir, 'children', 'upstream-http.js'), String(upstreamPort)],
            cpu,
          );
    procs.push(upstream);
    const echo = spawnManaged(
      'echo',
      process.execPath,
      [join(benchDistDir, 'children', 'echo.js'), String(echoPort)],
      cpu,
    );
    procs.push(echo);
    await waitReady(upstream, { url: `http://127.0.0.1:${upstreamPort}/` });
    await waitReady(echo, { ports: [echoPort] });
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop()));
    throw err;
  }
  return {
    upstreamKind: kind,
    upstreamPort,
    echoPort,
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

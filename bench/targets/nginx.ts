// The nginx peer (one worker: proxy_pass with upstream keepalive, h2c fronts, grpc_pass, stream proxy for TCP),
// plus the shared nginx runner.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Managed, spawnManaged, which } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

const nginxPath = which('nginx');

let buildInfo: string | undefined;

/** `nginx -V`: version and build options (printed on stderr), read once. */
function nginxBuild(): string {
  if (buildInfo === undefined) {
    const probe = spawnSync(nginxPath!, ['-V'], { encoding: 'utf8' });
    buildInfo = `${probe.stdout ?? ''}${probe.stderr ?? ''}`;
  }
  return buildInfo;
}

/** How this nginx build gets the stream module: built in, a loadable module file, or not at all. */
function streamModule(): { loadLine: string } | undefined {
  if (nginxPath === undefined) return undefined;
  const info = nginxBuild();
  if (/--with-stream(\s|$)/.test(info)) return { loadLine: '' };
  if (!info.includes('--with-stream=dynamic')) return undefined;
  const modulesPath = /--modules-path=(\S+)/.exec(info)?.[1] ?? '/usr/lib/nginx/modules';
  const file = join(modulesPath, 'ngx_stream_module.so');
  return existsSync(file) ? { loadLine: `load_module ${file};` } : undefined;
}

/** The main-context and `events` part every generated nginx config shares (one worker, foreground). */
export function nginxPreamble(dir: string, extraMain = ''): string {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const user = process.getuid?.() === 0 ? 'user root root;' : '';
  return `${extraMain}
${user}
worker_processes 1;
daemon off;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 8192; multi_accept on; }
`;
}

/** Temp-path and keep-alive directives for an `http {}` block. */
export function nginxHttpCommon(dir: string): string {
  const tmp = join(dir, 'tmp');
  return `
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;`;
}

/** Writes `conf` into `dir` and starts nginx on it (pinned to `cpu`); nginx must exist. */
export function spawnNginx(name: string, dir: string, conf: string, cpu: number | undefined): Managed {
  if (nginxPath === undefined) throw new Error('nginx not installed');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, conf);
  return spawnManaged(name, nginxPath, ['-p', dir, '-e', join(dir, 'error.log'), '-c', file], cpu);
}

/** Whether nginx is installed. */
export const hasNginx = (): boolean => nginxPath !== undefined;

/** Whether this nginx can serve h2c (ngx_http_v2_module) and, with `grpc`, proxy gRPC (ngx_http_grpc_module). */
export function nginxHasHttp2(grpc = false): boolean {
  if (nginxPath === undefined) return false;
  const info = nginxBuild();
  return info.includes('--with-http_v2_module') && !(grpc && info.includes('--without-http_grpc_module'));
}

/**
 * The `listen` lines of a plaintext HTTP/2 (h2c prior knowledge) server block: `listen ... http2` up to
 * nginx 1.25.0, `listen ...;` plus `http2 on;` from 1.25.1, where the listen parameter is deprecated.
 */
export function nginxH2Listen(port: number): string {
  const [major = 0, minor = 0, patch = 0] = (/nginx\/(\d+)\.(\d+)\.(\d+)/.exec(nginxBuild()) ?? [])
    .slice(1)
    .map(Number);
  const modern = major > 1 || (major === 1 && (minor > 25 || (minor === 25 && patch >= 1)));
  return modern
    ? `listen 127.0.0.1:${port} backlog=4096;\n    http2 on;`
    : `listen 127.0.0.1:${port} http2 backlog=4096;`;
}

/** The h2c front to the HTTP/1.1 upstream and the gRPC front, when this run and this nginx build have them. */
async function http2Servers(env: BenchEnv): Promise<{ conf: string; h2Port?: number; grpcPort?: number }> {
  const h2Port = env.protocols.has('h2') && nginxHasHttp2() ? await freePort() : undefined;
  const grpcPort = env.grpcPort !== undefined && nginxHasHttp2(true) ? await freePort() : undefined;
  let conf = '';
  if (h2Port !== undefined) {
    conf += `
  server {
    ${nginxH2Listen(h2Port)}
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }`;
  }
  if (grpcPort !== undefined) {
    conf += `
  upstream grpc_up {
    server 127.0.0.1:${env.grpcPort};
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    ${nginxH2Listen(grpcPort)}
    location / { grpc_pass grpc://grpc_up; }
  }`;
  }
  return {
    conf,
    ...(h2Port === undefined ? {} : { h2Port }),
    ...(grpcPort === undefined ? {} : { grpcPort }),
  };
}

export const nginx: Target = {
  name: 'nginx',
  protocols: ['http', 'tcp', 'h2', 'grpc'],
  unavailable: () =>
    nginxPath === undefined ? 'nginx not installed (apt-get install nginx-light)' : undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const dir = join(env.tmpDir, 'nginx-proxy');
    const httpPort = await freePort();
    const h2 = await http2Servers(env);
    const stream = streamModule();
    const tcpPort = stream ? await freePort() : undefined;
    const streamBlock =
      tcpPort === undefined
        ? ''
        : `
stream {
  upstream echo { server 127.0.0.1:${env.echoPort}; }
  server { listen 127.0.0.1:${tcpPort}; proxy_pass echo; tcp_nodelay on; }
}`;
    const conf = `${nginxPreamble(dir, stream?.loadLine ?? '')}
http {${nginxHttpCommon(dir)}
  upstream up {
    server 127.0.0.1:${env.upstreamPort};
    keepalive 256;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
  }
  server {
    listen 127.0.0.1:${httpPort} backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }${h2.conf}
}${streamBlock}
`;
    const proc = spawnNginx('nginx', dir, conf, env.proxyCpu);
    const endpoints = {
      httpPort,
      ...(tcpPort === undefined ? {} : { tcpPort }),
      ...(h2.h2Port === undefined ? {} : { h2Port: h2.h2Port }),
      ...(h2.grpcPort === undefined ? {} : { grpcPort: h2.grpcPort }),
    };
    const ports = [httpPort, tcpPort, h2.h2Port, h2.grpcPort].filter((p) => p !== undefined);
    return runningTarget(proc, endpoints, { ports });
  },
};

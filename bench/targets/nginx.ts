// The nginx peer (one worker, proxy_pass with upstream keepalive, stream proxy for TCP), plus the shared nginx runner.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type Managed, spawnManaged, which } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

const nginxPath = which('nginx');

/** How this nginx build gets the stream module: built in, a loadable module file, or not at all. */
function streamModule(): { loadLine: string } | undefined {
  if (nginxPath === undefined) return undefined;
  // `nginx -V` prints its build options on stderr.
  const probe = spawnSync(nginxPath, ['-V'], { encoding: 'utf8' });
  const info = `${probe.stdout ?? ''}${probe.stderr ?? ''}`;
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

export const nginx: Target = {
  name: 'nginx',
  unavailable: () =>
    nginxPath === undefined ? 'nginx not installed (apt-get install nginx-light)' : undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const dir = join(env.tmpDir, 'nginx-proxy');
    const httpPort = await freePort();
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
  }
}${streamBlock}
`;
    const proc = spawnNginx('nginx', dir, conf, env.proxyCpu);
    const ports = tcpPort === undefined ? [httpPort] : [httpPort, tcpPort];
    return runningTarget(proc, { httpPort, ...(tcpPort === undefined ? {} : { tcpPort }) }, { ports });
  },
};

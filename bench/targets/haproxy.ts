// The haproxy peer: one thread, HTTP mode with connection reuse to the upstream, TCP mode to the echo server.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, spawnManaged, which } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

const haproxyPath = which('haproxy');

export const haproxy: Target = {
  name: 'haproxy',
  unavailable: () =>
    haproxyPath === undefined ? 'haproxy not installed (apt-get install haproxy)' : undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const dir = join(env.tmpDir, 'haproxy');
    mkdirSync(dir, { recursive: true });
    const httpPort = await freePort();
    const tcpPort = await freePort();
    const conf = `global
  nbthread 1
  maxconn 4096
  pidfile ${join(dir, 'haproxy.pid')}

defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 300s
  timeout server 300s
  timeout http-keep-alive 300s

frontend http_in
  bind 127.0.0.1:${httpPort}
  default_backend upstream

backend upstream
  http-reuse always
  server up 127.0.0.1:${env.upstreamPort}

frontend tcp_in
  mode tcp
  bind 127.0.0.1:${tcpPort}
  default_backend echo

backend echo
  mode tcp
  server echo 127.0.0.1:${env.echoPort}
`;
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    const proc = spawnManaged('haproxy', haproxyPath!, ['-db', '-f', file], env.proxyCpu);
    return runningTarget(proc, { httpPort, tcpPort }, { ports: [httpPort, tcpPort] });
  },
};

// The haproxy peer: one thread, HTTP mode with connection reuse to the upstream (HTTP/1.1 and h2c fronts),
// h2c to the grpc-js server, TCP mode to the echo server.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, spawnManaged, which } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

const haproxyPath = which('haproxy');

export const haproxy: Target = {
  name: 'haproxy',
  protocols: ['http', 'tcp', 'h2', 'grpc'],
  unavailable: () =>
    haproxyPath === undefined ? 'haproxy not installed (apt-get install haproxy)' : undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const dir = join(env.tmpDir, 'haproxy');
    mkdirSync(dir, { recursive: true });
    const httpPort = await freePort();
    const tcpPort = await freePort();
    const h2Port = env.protocols.has('h2') ? await freePort() : undefined;
    const grpcPort = env.grpcPort !== undefined ? await freePort() : undefined;
    // h2c with prior knowledge on `proto h2` binds; gRPC goes on to the grpc-js server over h2c as well.
    const h2Frontend =
      h2Port === undefined
        ? ''
        : `
frontend h2_in
  bind 127.0.0.1:${h2Port} proto h2
  default_backend upstream
`;
    const grpcProxy =
      grpcPort === undefined
        ? ''
        : `
frontend grpc_in
  bind 127.0.0.1:${grpcPort} proto h2
  default_backend grpc

backend grpc
  http-reuse always
  server grpc 127.0.0.1:${env.grpcPort} proto h2
`;
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
${h2Frontend}${grpcProxy}`;
    const file = join(dir, 'haproxy.cfg');
    writeFileSync(file, conf);
    const proc = spawnManaged('haproxy', haproxyPath!, ['-db', '-f', file], env.proxyCpu);
    const endpoints = {
      httpPort,
      tcpPort,
      ...(h2Port === undefined ? {} : { h2Port }),
      ...(grpcPort === undefined ? {} : { grpcPort }),
    };
    const ports = [httpPort, tcpPort, h2Port, grpcPort].filter((p) => p !== undefined);
    return runningTarget(proc, endpoints, { ports });
  },
};

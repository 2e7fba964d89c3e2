// The node:http2 reference peer: a few dozen lines of plain node:http2 (children/node-http2-proxy.ts), pinned.

import { join } from 'node:path';
import { benchDistDir, freePort, spawnManaged } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

export const nodeHttp2Proxy: Target = {
  name: 'node-http2-proxy',
  protocols: ['h2', 'grpc'],
  unavailable: () => undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    const h2Port = await freePort();
    const grpcPort = env.grpcPort === undefined ? undefined : await freePort();
    const args = [
      join(benchDistDir, 'children', 'node-http2-proxy.js'),
      String(h2Port),
      String(env.upstreamPort),
    ];
    if (grpcPort !== undefined) args.push(String(grpcPort), String(env.grpcPort));
    const proc = spawnManaged('node-http2-proxy', process.execPath, args, env.proxyCpu);
    const ports = grpcPort === undefined ? [h2Port] : [h2Port, grpcPort];
    return runningTarget(proc, { h2Port, ...(grpcPort === undefined ? {} : { grpcPort }) }, { ports });
  },
};

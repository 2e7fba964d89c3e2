// The node-http-proxy peer: the `http-proxy` package with a keep-alive agent, in its own pinned child process.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { benchDistDir, freePort, spawnManaged } from '../proc.js';
import { runningTarget } from './managed-target.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

export const nodeHttpProxy: Target = {
  name: 'node-http-proxy',
  protocols: ['http'],
  unavailable() {
    try {
      createRequire(import.meta.url).resolve('http-proxy');
      return undefined;
    } catch {
      return 'http-proxy package not installed (npm install)';
    }
  },
  async start(env: BenchEnv): Promise<RunningTarget> {
    const port = await freePort();
    const script = join(benchDistDir, 'children', 'node-http-proxy.js');
    const proc = spawnManaged(
      'node-http-proxy',
      process.execPath,
      [script, String(port), String(env.upstreamPort)],
      env.proxyCpu,
    );
    return runningTarget(proc, { httpPort: port }, { ports: [port] });
  },
};

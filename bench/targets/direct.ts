// The baseline target: no proxy, the load goes straight to the upstream and echo servers.

import type { BenchEnv, RunningTarget, Target } from './target.js';

export const direct: Target = {
  name: 'direct',
  unavailable: () => undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    return {
      endpoints: { httpPort: env.upstreamPort, tcpPort: env.echoPort },
      health: () => undefined,
      stop: async () => {},
    };
  },
};

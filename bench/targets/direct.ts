// The baseline target: no proxy, the load goes straight to the upstreams (h2c and gRPC too) and echo server.

import type { BenchEnv, RunningTarget, Target } from './target.js';

export const direct: Target = {
  name: 'direct',
  protocols: ['http', 'tcp', 'h2', 'grpc', 'mesh'],
  unavailable: () => undefined,
  async start(env: BenchEnv): Promise<RunningTarget> {
    return {
      endpoints: {
        httpPort: env.upstreamPort,
        meshPort: env.upstreamPort,
        tcpPort: env.echoPort,
        ...(env.h2UpstreamPort === undefined ? {} : { h2Port: env.h2UpstreamPort }),
        ...(env.grpcPort === undefined ? {} : { grpcPort: env.grpcPort }),
      },
      health: () => undefined,
      stop: async () => {},
    };
  },
};

// Test support: a gRPC echo server, and a real @grpc/grpc-js-xds client in a child process that calls one through
// an xDS server.

import { spawn } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { until } from './child.js';

/** The node the client names in its bootstrap. */
export const PROXYLESS_NODE = { id: 'proxyless-1', cluster: 'echo-client' } as const;

const passthrough = (b: Buffer) => b;
const ECHO = {
  Echo: {
    path: '/remora.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: passthrough,
    requestDeserialize: passthrough,
    responseSerialize: passthrough,
    responseDeserialize: passthrough,
  },
} as const;

/** A gRPC server whose one method answers with `name`. */
export async function echoServer(name: string): Promise<{ port: number; server: grpc.Server }> {
  const server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from(name)),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  return { port, server };
}

/** Calls the target every 50 ms (at most `maxCalls` times), printing each answer; stops once it has heard "B". */
function clientScript(target: string, maxCalls: number): string {
  return `
import { createRequire } from 'node:module';
const require = createRequire(process.env.REMORA_TEST_BASE);
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();
const id = (b) => b;
const def = { Echo: { path: '/remora.test.Echo/Echo', requestStream: false, responseStream: false,
  requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } };
const Client = grpc.makeGenericClientConstructor(def, 'Echo');
const client = new Client('xds:///${target}', grpc.credentials.createInsecure());
for (let i = 0; i < ${maxCalls}; i++) {
  const reply = await new Promise((resolve) =>
    client.Echo(Buffer.from('ping'), { deadline: Date.now() + 5000 }, (err, res) =>
      resolve(err ? 'ERROR ' + err.code + ' ' + err.details : 'REPLY ' + res.toString())));
  console.log(reply);
  if (reply === 'REPLY B') break;
  await new Promise((r) => setTimeout(r, 50));
}
client.close();
process.exit(0);
`;
}

export interface GrpcXdsClientOptions {
  /** `host:port`, dialled as `xds:///<target>`. */
  readonly target: string;
  /** The ADS server's port on 127.0.0.1. */
  readonly xdsPort: number;
  readonly maxCalls: number;
  /** More output for failure messages (the control plane's log, say). */
  readonly context?: () => string;
}

export interface GrpcXdsClient {
  /** Resolves with the exit code (null when ended by a signal). */
  readonly exited: Promise<number | null>;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Waits until the client has printed `line`; fails if it ends without doing so. */
  seen(line: string): Promise<void>;
  kill(): void;
}

/** Runs the client with a bootstrap that names only the ADS server at `xdsPort`, as PROXYLESS_NODE. */
export function spawnGrpcXdsClient(options: GrpcXdsClientOptions): GrpcXdsClient {
  const bootstrap = {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${options.xdsPort}`,
        channel_creds: [{ type: 'insecure' }],
        server_features: ['xds_v3'],
      },
    ],
    // grpc-js-xds refuses a bootstrap node without a locality. No NAMESPACE: the client is in "default".
    node: { ...PROXYLESS_NODE, locality: { zone: 'a' } },
  };
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', clientScript(options.target, options.maxCalls)],
    {
      env: {
        ...process.env,
        GRPC_XDS_BOOTSTRAP_CONFIG: JSON.stringify(bootstrap),
        REMORA_TEST_BASE: import.meta.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
  // 'close' comes after the last output: a line printed just before exiting is not missed.
  let closed = false;
  child.once('close', () => {
    closed = true;
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  return {
    exited,
    stdout: () => out,
    stderr: () => err,
    seen: (line) =>
      until(
        `the client to print "${line}"`,
        () => {
          if (out.split('\n').includes(line)) return true;
          if (closed)
            throw new Error(`client exited before "${line}":\n${out}\n${err}\n${options.context?.() ?? ''}`);
          return false;
        },
        30_000,
      ),
    kill: () => child.kill('SIGKILL'),
  };
}

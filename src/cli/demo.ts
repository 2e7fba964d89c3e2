// `remora demo` (and `npm start`): a small mesh on loopback — two services, each behind its own remora proxy.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** bin/remora, from the bundle (dist/remora.mjs) or from the compiled module (dist/src/cli/demo.js). */
const BIN = ['../bin/remora', '../../../bin/remora']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((p) => existsSync(p)) as string;

function staticCluster(name: string, port: number): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
          ],
        },
      ],
    },
  };
}

function hcm(prefix: string, routes: unknown[]): Record<string, unknown> {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type':
        'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      stat_prefix: prefix,
      use_remote_address: true,
      access_log: [
        {
          name: 'envoy.access_loggers.stdout',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
          },
        },
      ],
      route_config: { name: `${prefix}_routes`, virtual_hosts: [{ name: prefix, domains: ['*'], routes }] },
      http_filters: [
        {
          name: 'envoy.filters.http.router',
          typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
        },
      ],
    },
  };
}

function bootstrap(
  node: string,
  adminPort: number,
  listenerPort: number,
  routes: unknown[],
  clusters: unknown[],
) {
  return {
    node: { id: node, cluster: node },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } },
    static_resources: {
      listeners: [
        {
          name: `${node}_listener`,
          address: { socket_address: { address: '127.0.0.1', port_value: listenerPort } },
          filter_chains: [{ filters: [hcm(node.replace(/-/g, '_'), routes)] }],
        },
      ],
      clusters,
    },
  };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return typeof a === 'object' && a ? a.port : 0;
}

async function waitReady(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`proxy exited with code ${child.exitCode}`);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ready`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`proxy with admin port ${port} did not become ready`);
}

export async function runDemo(o: { port: number }): Promise<number> {
  // Two demo services: "hello" answers directly, "echo" reflects what it received.
  const hello = createServer((req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(`hello from the hello service (you asked for ${req.url})\n`);
  });
  const echo = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(
      `${JSON.stringify({ service: 'echo', method: req.method, url: req.url, headers: req.headers }, null, 2)}\n`,
    );
  });
  const helloPort = await listen(hello);
  const echoPort = await listen(echo);
  const dir = mkdtempSync(join(tmpdir(), 'remora-demo-'));
  const front = o.port;
  const back = o.port + 1;
  // The "echo" sidecar: inbound listener in front of the echo service.
  const echoSidecar = bootstrap(
    'echo-sidecar',
    15100,
    back,
    [{ match: { prefix: '/' }, route: { cluster: 'local_echo' } }],
    [staticCluster('local_echo', echoPort)],
  );
  // The "hello" sidecar: routes /hello to its local service and /echo through the echo sidecar.
  const helloSidecar = bootstrap(
    'hello-sidecar',
    15000,
    front,
    [
      {
        match: { prefix: '/echo' },
        route: { cluster: 'echo', retry_policy: { retry_on: '5xx,connect-failure', num_retries: 2 } },
      },
      { match: { prefix: '/hello' }, route: { cluster: 'local_hello' } },
      {
        match: { path: '/' },
        direct_response: { status: 200, body: { inline_string: 'remora demo: try /hello and /echo\n' } },
      },
    ],
    [staticCluster('local_hello', helloPort), staticCluster('echo', back)],
  );
  const files = [
    ['hello-sidecar.yaml', helloSidecar],
    ['echo-sidecar.yaml', echoSidecar],
  ] as const;
  const children: ChildProcess[] = [];
  const stop = () => {
    for (const c of children) c.kill('SIGTERM');
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    for (const [file, cfg] of files) {
      const path = join(dir, file);
      writeFileSync(path, JSON.stringify(cfg, null, 2));
      const child = spawn(process.execPath, [BIN, 'proxy', '-c', path], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const tag = file.replace('.yaml', '');
      child.stdout?.on('data', (d: Buffer) => process.stdout.write(prefixLines(tag, d)));
      child.stderr?.on('data', (d: Buffer) => process.stderr.write(prefixLines(tag, d)));
      children.push(child);
    }
    await waitReady(15100, children[1]!);
    await waitReady(15000, children[0]!);
  } catch (err) {
    process.stderr.write(`remora demo: ${(err as Error).message}\n`);
    stop();
    hello.close();
    echo.close();
    rmSync(dir, { recursive: true, force: true });
    return 1;
  }
  process.stdout.write(
    [
      '',
      'Remora demo mesh is running:',
      `  hello service  127.0.0.1:${helloPort}  behind hello-sidecar (admin http://127.0.0.1:15000/)`,
      `  echo service   127.0.0.1:${echoPort}  behind echo-sidecar  (admin http://127.0.0.1:15100/)`,
      '',
      'Try:',
      `  curl http://127.0.0.1:${front}/hello`,
      `  curl http://127.0.0.1:${front}/echo/anything     # hello-sidecar -> echo-sidecar -> echo service`,
      '  curl http://127.0.0.1:15000/stats/prometheus',
      '  curl http://127.0.0.1:15000/clusters',
      `Configs are in ${dir}. Press Ctrl-C to stop.`,
      '',
    ].join('\n'),
  );
  await Promise.all(children.map((c) => new Promise((r) => c.once('exit', r))));
  hello.close();
  echo.close();
  rmSync(dir, { recursive: true, force: true });
  return 0;
}

function prefixLines(tag: string, d: Buffer): string {
  return d
    .toString()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => `[${tag}] ${l}\n`)
    .join('');
}

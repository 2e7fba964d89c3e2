// A peer for the capture tests, run inside a network namespace: HTTP servers that say who connected to them,
// TCP echo servers, and a DNS server. `node netns_peer.js NAME http:PORT[,PORT] echo:PORT[,PORT]
// dns:IP:PORT=name/address[,name/address]`; prints "ready" once listening.

import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';
import { startDnsServer } from './dns_server.js';

const [name = 'peer', ...specs] = process.argv.slice(2);
const servers: Server[] = [];
const dnsStarted: Promise<unknown>[] = [];

for (const spec of specs) {
  if (spec.startsWith('dns:')) {
    const [where = '', records = ''] = spec.slice(4).split('=');
    const at = where.lastIndexOf(':');
    const entries = records.split(',').map((r) => r.split('/') as [string, string]);
    dnsStarted.push(
      startDnsServer(Object.fromEntries(entries), where.slice(0, at), Number(where.slice(at + 1))),
    );
    continue;
  }
  const [kind, list = ''] = spec.split(':');
  for (const port of list.split(',').map(Number)) {
    if (kind === 'http') {
      servers.push(
        createHttpServer((req, res) => {
          req.resume();
          const body = JSON.stringify({
            peer: name,
            port,
            remote: req.socket.remoteAddress,
            local: req.socket.localAddress,
            url: req.url,
          });
          res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        }),
      );
    } else if (kind === 'echo') {
      servers.push(
        createTcpServer((s) => {
          s.on('error', () => undefined);
          s.write(`${name}:${port} from ${s.remoteAddress}\n`);
          s.pipe(s);
        }),
      );
    } else {
      throw new Error(`unknown server kind ${JSON.stringify(kind)}`);
    }
    // `::` takes IPv4 and IPv6 (dual-stack).
    servers[servers.length - 1]!.listen({ host: '::', port });
  }
}

await Promise.all(dnsStarted);
await Promise.all(servers.map((s) => (s.listening ? undefined : new Promise((r) => s.once('listening', r)))));
process.stdout.write('ready\n');
process.on('SIGTERM', () => process.exit(0));

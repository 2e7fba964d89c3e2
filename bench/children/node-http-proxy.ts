// Child process: the node-http-proxy peer, a plain `http-proxy` server with a keep-alive upstream agent.

import { Agent, createServer } from 'node:http';
import httpProxy from 'http-proxy';

const port = Number(process.argv[2]);
const target = `http://127.0.0.1:${Number(process.argv[3])}`;

const agent = new Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 1024 });
const proxy = httpProxy.createProxyServer({ target, agent });
proxy.on('error', (err, _req, res) => {
  if ('writeHead' in res && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`upstream error: ${err.message}`);
  } else {
    res.destroy();
  }
});

const server = createServer((req, res) => proxy.web(req, res));
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.listen(port, '127.0.0.1', () => process.stdout.write(`node-http-proxy listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));

// Child process: the Node fallback upstream, answering every request with 200 'hello' over keep-alive.

import { createServer } from 'node:http';

const port = Number(process.argv[2]);
const body = Buffer.from('hello');

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 120_000;
server.headersTimeout = 130_000;
server.maxRequestsPerSocket = 0;
server.listen(port, '127.0.0.1', () => process.stdout.write(`upstream-http listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));

// Child process: the Node fallback h2c upstream (prior knowledge), answering every request with 200 'hello'.

import { createServer } from 'node:http2';

const port = Number(process.argv[2]);
const body = Buffer.from('hello');

const server = createServer({ settings: { maxConcurrentStreams: 1000 } });
server.on('stream', (stream) => {
  stream.on('error', () => stream.destroy());
  stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length });
  stream.end(body);
});
server.on('sessionError', () => {});
server.listen(port, '127.0.0.1', () => process.stdout.write(`upstream-h2 listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));

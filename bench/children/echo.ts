// Child process: a TCP echo server (everything received is written back) for the tcp_proxy scenarios.

import { createServer } from 'node:net';

const port = Number(process.argv[2]);

const server = createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => socket.destroy());
  socket.pipe(socket);
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`echo listening on ${port}\n`));
process.on('SIGTERM', () => process.exit(0));

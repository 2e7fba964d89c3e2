// Child process: the grpc-js server behind the gRPC scenario, answering bench.Echo/Unary with 'hello'.

import { Server, ServerCredentials, type sendUnaryData } from '@grpc/grpc-js';
import { REPLY, UNARY } from '../grpc-service.js';

const port = Number(process.argv[2]);

const server = new Server();
server.addService(
  { Unary: UNARY },
  { Unary: (_call: unknown, cb: sendUnaryData<Buffer>) => cb(null, REPLY) },
);
server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err) => {
  if (err) {
    process.stderr.write(`grpc-server: ${err.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`grpc-server listening on ${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));

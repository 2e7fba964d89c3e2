// The gRPC service the benchmark calls: one unary method of raw bytes, so neither side needs a .proto file.

import type { MethodDefinition } from '@grpc/grpc-js';

const bytes = (b: Buffer): Buffer => b;

/** `bench.Echo/Unary`: the server answers every request with the same few bytes. */
export const UNARY: MethodDefinition<Buffer, Buffer> = {
  path: '/bench.Echo/Unary',
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
};

/** Request and response payloads: small, like the 'hello' body of the HTTP scenarios. */
export const REQUEST = Buffer.from('ping');
export const REPLY = Buffer.from('hello');

// Authorization over mTLS for gRPC, through both sidecars: B is a grpc-js server behind a port named `grpc`, so the
// hop between the sidecars is HTTP/2 inside mTLS (istio.alpn offers istio-h2); A's application is a grpc-js client
// dialling its sidecar. "Only /test.Echo/* from namespace frontend" and "deny /test.Echo/Admin for everyone"
// decide on the identity B's sidecar verified; a denied call gets PERMISSION_DENIED and never reaches B.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { eventually, FQDN_B, type MtlsMesh, startMtlsMesh } from './support/mtls_mesh.js';

const bytes = (b: Buffer): Buffer => b;
const method = (name: string) => ({
  path: `/test.Echo/${name}`,
  requestStream: false,
  responseStream: false,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
});
const ECHO = { Say: method('Say'), Admin: method('Admin') };
type Unary = (m: Buffer, cb: (err: grpc.ServiceError | null, v?: Buffer) => void) => void;
type EchoClient = grpc.Client & { Say: Unary; Admin: Unary };
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo') as unknown as new (
  address: string,
  creds: grpc.ChannelCredentials,
  options?: grpc.ChannelOptions,
) => EchoClient;

let server: grpc.Server;
let mesh: MtlsMesh;
let client: EchoClient;
const seen: string[] = [];

before(async () => {
  server = new grpc.Server();
  const handler =
    (name: string) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      seen.push(name);
      cb(null, Buffer.concat([Buffer.from(`${name}:`), call.request]));
    };
  server.addService(ECHO, { Say: handler('Say'), Admin: handler('Admin') });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  mesh = await startMtlsMesh({ grpcB: { port } });
  // A's application dials its sidecar's outbound listener, naming service B as the authority.
  client = new EchoClient(`127.0.0.2:${mesh.svcPort}`, grpc.credentials.createInsecure(), {
    'grpc.default_authority': FQDN_B,
  });
});

after(async () => {
  client?.close();
  await mesh?.close();
  server?.forceShutdown();
});

const call = (m: 'Say' | 'Admin', text: string) =>
  new Promise<string>((resolve, reject) =>
    client[m](Buffer.from(text), (err, v) => (err ? reject(err) : resolve(v!.toString()))),
  );

const policies = (allowedNamespace: string) => [
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'PeerAuthentication',
    metadata: { name: 'default', namespace: 'backend' },
    spec: { mtls: { mode: 'STRICT' } },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'echo-from-frontend', namespace: 'backend' },
    spec: {
      selector: { matchLabels: { app: 'b' } },
      rules: [
        {
          from: [{ source: { namespaces: [allowedNamespace] } }],
          to: [{ operation: { paths: ['/test.Echo/*'] } }],
        },
      ],
    },
  },
  {
    apiVersion: 'security.istio.io/v1',
    kind: 'AuthorizationPolicy',
    metadata: { name: 'no-admin', namespace: 'istio-system' },
    spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/test.Echo/Admin'] } }] }] },
  },
];

test('gRPC through both sidecars over mTLS: allowed by namespace, denied by path and by identity', async () => {
  await eventually('A to reach B', async () => (await call('Say', 'hi')) === 'Say:hi');
  mesh.writeMesh(policies('frontend'));
  await eventually('the DENY policy to reach B', async () => {
    try {
      await call('Admin', 'x');
      return false;
    } catch (err) {
      return (err as grpc.ServiceError).code === grpc.status.PERMISSION_DENIED;
    }
  });
  const before = seen.length;
  assert.equal(await call('Say', 'again'), 'Say:again');
  await assert.rejects(call('Admin', 'x'), (err: grpc.ServiceError) => {
    assert.equal(err.code, grpc.status.PERMISSION_DENIED);
    assert.equal(err.details, 'RBAC: access denied');
    return true;
  });
  assert.deepEqual(seen.slice(before), ['Say'], 'the denied call never reached B');

  // Only another namespace is allowed now: A's verified identity (namespace frontend) no longer is.
  mesh.writeMesh(policies('ops'));
  await eventually('the ALLOW policy to change', async () => {
    try {
      await call('Say', 'x');
      return false;
    } catch (err) {
      return (err as grpc.ServiceError).code === grpc.status.PERMISSION_DENIED;
    }
  });
});

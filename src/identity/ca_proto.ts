// Istio's certificate service (istio/api security/v1alpha1/ca.proto, package istio.v1.auth), so that Istio's
// own clients can use Remora's CA and Remora's client could use istiod: the messages and the grpc-js definition.

import type { ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';

/** The field numbers are Istio's; `root_cert` is the newer optional field, which istiod itself leaves empty. */
const PROTO = `
syntax = "proto3";
import "google/protobuf/struct.proto";
package istio.v1.auth;
message IstioCertificateRequest {
  string csr = 1;
  int64 validity_duration = 3;
  google.protobuf.Struct metadata = 4;
}
message IstioCertificateResponse {
  repeated string cert_chain = 1;
  Roots root_cert = 2;
}
message Roots {
  repeated string ca_cert = 1;
}
service IstioCertificateService {
  rpc CreateCertificate(IstioCertificateRequest) returns (IstioCertificateResponse) {}
}
`;

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** A request as decoded: `metadata` in protobufjs's object form of google.protobuf.Struct. */
export interface CertificateRequest {
  /** PEM PKCS#10. */
  readonly csr: string;
  /** Seconds; 0 asks for the CA's default. */
  readonly validity_duration: number;
  readonly metadata?: { readonly fields?: Readonly<Record<string, unknown>> };
}

export interface CertificateResponse {
  /** PEM, one certificate each: the leaf first, then intermediates, then the trusted roots. */
  readonly cert_chain: readonly string[];
  readonly root_cert?: { readonly ca_cert?: readonly string[] };
}

interface Loaded {
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  readonly service: ServiceDefinition;
}

let loaded: Loaded | undefined;

function load(): Loaded {
  if (loaded !== undefined) return loaded;
  const root = protobuf.Root.fromJSON(
    protobuf.common.get('google/protobuf/struct.proto') as protobuf.INamespace,
  );
  protobuf.parse(PROTO, root, { keepCase: true });
  root.resolveAll();
  const request = root.lookupType('istio.v1.auth.IstioCertificateRequest');
  const response = root.lookupType('istio.v1.auth.IstioCertificateResponse');
  const encode = (t: protobuf.Type) => (value: object) => Buffer.from(t.encode(t.fromObject(value)).finish());
  const decode = (t: protobuf.Type) => (buf: Buffer) =>
    t.toObject(t.decode(buf), { longs: Number, defaults: true, arrays: true });
  const service: ServiceDefinition = {
    CreateCertificate: {
      path: CREATE_CERTIFICATE_PATH,
      requestStream: false,
      responseStream: false,
      requestSerialize: encode(request),
      requestDeserialize: decode(request),
      responseSerialize: encode(response),
      responseDeserialize: decode(response),
    },
  };
  loaded = { request, response, service };
  return loaded;
}

/** The service definition for grpc-js servers and clients (messages as the interfaces above). */
export function certificateService(): ServiceDefinition {
  return load().service;
}

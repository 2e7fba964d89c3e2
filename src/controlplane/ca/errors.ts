// Why the CA refuses a request: one table of stable codes and the gRPC status each becomes.

import { status } from '@grpc/grpc-js';

export const Refusals = {
  /** No `authorization: Bearer` and no client certificate. */
  noCredential: { code: 'REMORA_ERR_CA_NO_CREDENTIAL', grpc: status.UNAUTHENTICATED },
  /** A token that is malformed, unknown, of the wrong secret, or that the Kubernetes API does not accept. */
  badCredential: { code: 'REMORA_ERR_CA_BAD_CREDENTIAL', grpc: status.UNAUTHENTICATED },
  tokenExpired: { code: 'REMORA_ERR_CA_TOKEN_EXPIRED', grpc: status.UNAUTHENTICATED },
  tokenUsedUp: { code: 'REMORA_ERR_CA_TOKEN_USED_UP', grpc: status.UNAUTHENTICATED },
  /** The CSR asks for an identity other than the one the credential proves (or for more than it). */
  identityMismatch: { code: 'REMORA_ERR_CA_IDENTITY_MISMATCH', grpc: status.PERMISSION_DENIED },
  /** The CSR asks to be a CA. */
  caRequested: { code: 'REMORA_ERR_CA_CA_REQUESTED', grpc: status.PERMISSION_DENIED },
  /** A CSR that cannot be read, whose signature is wrong, or whose key is too weak. */
  badCsr: { code: 'REMORA_ERR_CA_BAD_CSR', grpc: status.INVALID_ARGUMENT },
  /** The credential could not be checked now (the Kubernetes API is unreachable, the token store unreadable). */
  unavailable: { code: 'REMORA_ERR_CA_UNAVAILABLE', grpc: status.UNAVAILABLE },
} as const;

export type RefusalKind = (typeof Refusals)[keyof typeof Refusals];

/** A refused request: sent to the caller as `<code>: <message>` with its gRPC status, and logged. */
export class CaRefusal extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
  ) {
    super(message);
    this.name = 'CaRefusal';
  }

  get code(): string {
    return this.kind.code;
  }
}

export function refuse(kind: RefusalKind, message: string): never {
  throw new CaRefusal(kind, message);
}

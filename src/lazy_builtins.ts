// node:tls and node:crypto, loaded at their first use rather than at start: together they are ~1.3 MiB of a
// sidecar's memory, and a sidecar without TLS uses crypto only once a request needs a random id.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

type Tls = typeof import('node:tls');
type Crypto = typeof import('node:crypto');

const nodeRequire = createRequire(import.meta.url);
let tls: Tls | undefined;
let crypto: Crypto | undefined;

export function nodeTls(): Tls {
  tls ??= nodeRequire('node:tls') as Tls;
  return tls;
}

export function nodeCrypto(): Crypto {
  crypto ??= nodeRequire('node:crypto') as Crypto;
  return crypto;
}

/** Whether a socket speaks TLS, told without loading node:tls: every TLSSocket is `encrypted`, a plain one is not. */
export function isTlsSocket(socket: Socket | undefined): socket is TLSSocket {
  return (socket as Partial<TLSSocket> | undefined)?.encrypted === true;
}

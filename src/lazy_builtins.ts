// Node built-ins loaded at their first use rather than at start: node:tls and node:crypto are ~1.3 MiB of a
// sidecar's memory together, and most sidecars never need node:os.

import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

type Tls = typeof import('node:tls');
type Crypto = typeof import('node:crypto');
type Os = typeof import('node:os');

const nodeRequire = createRequire(import.meta.url);
let tls: Tls | undefined;
let crypto: Crypto | undefined;
let os: Os | undefined;

export function nodeTls(): Tls {
  tls ??= nodeRequire('node:tls') as Tls;
  return tls;
}

export function nodeCrypto(): Crypto {
  crypto ??= nodeRequire('node:crypto') as Crypto;
  return crypto;
}

export function nodeOs(): Os {
  os ??= nodeRequire('node:os') as Os;
  return os;
}

/** Whether a socket speaks TLS, told without loading node:tls: every TLSSocket is `encrypted`, a plain one is not. */
export function isTlsSocket(socket: Socket | undefined): socket is TLSSocket {
  return (socket as Partial<TLSSocket> | undefined)?.encrypted === true;
}

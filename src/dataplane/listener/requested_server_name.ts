// The SNI a listener filter (tls_inspector) read from a connection's ClientHello: Envoy's requested server name.

import type { Socket } from 'node:net';

const names = new WeakMap<Socket, string>();

/** Records the server name a listener filter found; "" records nothing. */
export function setRequestedServerName(socket: Socket, name: string): void {
  if (name !== '') names.set(socket, name);
}

/**
 * The requested server name, "" when none was read. As in Envoy, TLS terminated without tls_inspector leaves it
 * empty: the name comes from the listener filters, not from the handshake.
 */
export function requestedServerName(socket: Socket): string {
  return names.get(socket) ?? '';
}

/** A socket that wraps `from` (TLS termination) keeps its requested server name. */
export function carryRequestedServerName(from: Socket, to: Socket): void {
  const n = names.get(from);
  if (n !== undefined) names.set(to, n);
}

// The destination a connection had before NAT redirected it, once a listener has restored it (original_dst).

import type { Socket } from 'node:net';
import type { SocketAddress } from '../../config/model.js';

const restored = new WeakMap<Socket, SocketAddress>();

/** Records the connection's original destination; it stands in for the local address from now on. */
export function setRestoredDestination(socket: Socket, destination: SocketAddress): void {
  restored.set(socket, destination);
}

/** The restored destination, or undefined when the connection was not redirected (or nothing restored it). */
export function restoredDestination(socket: Socket): SocketAddress | undefined {
  return restored.get(socket);
}

/** Where the connection was going: the restored destination, else the address it was accepted on. */
export function destinationOf(socket: Socket): SocketAddress {
  return restored.get(socket) ?? { address: socket.localAddress ?? '', port: socket.localPort ?? 0 };
}

/** A socket that wraps `from` (TLS termination) keeps its restored destination. */
export function carryRestoredDestination(from: Socket, to: Socket): void {
  const d = restored.get(from);
  if (d !== undefined) restored.set(to, d);
}

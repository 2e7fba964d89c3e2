// Puts a net.Server in the listening state on an IP address without loading Node's cluster and dns modules.
//
// server.listen(port, host) resolves the host with dns.lookup even when it is an IP literal, and then asks
// node:cluster whether this process is a worker; those two modules (with child_process and dgram, which cluster
// loads) are ~0.5 MiB of a sidecar that never resolves a name to listen and never runs as a cluster worker. A
// primary's listen ends in the server's setupListenHandle, exposed as `_listen2` (kept by Node as a legacy alias),
// which this calls directly for an IP address; anything else goes through listen().

import { isIP, type Server } from 'node:net';

export interface ListenOptions {
  host: string;
  port: number;
  backlog?: number;
  /** An IPv6 socket that takes no IPv4 connections. */
  ipv6Only?: boolean;
}

type SetupListenHandle = (
  address: string,
  port: number,
  addressType: number,
  backlog: number,
  fd: undefined,
  flags: number,
) => void;

/** libuv's UV_TCP_IPV6ONLY bind flag (what listen() passes for `ipv6Only`). */
const UV_TCP_IPV6ONLY = 1;
/** listen()'s default backlog. */
const DEFAULT_BACKLOG = 511;

/** Listens as server.listen(options, onListening) does; errors come as the server's 'error' event either way. */
export function listenOn(server: Server, options: ListenOptions, onListening: () => void): void {
  const family = isIP(options.host);
  const setup = (server as unknown as { _listen2?: SetupListenHandle })._listen2;
  if (family === 0 || typeof setup !== 'function') {
    server.listen(options, onListening);
    return;
  }
  server.once('listening', onListening);
  const flags = options.ipv6Only ? UV_TCP_IPV6ONLY : 0;
  setup.call(
    server,
    options.host,
    options.port,
    family,
    options.backlog ?? DEFAULT_BACKLOG,
    undefined,
    flags,
  );
}

// Opens a connection to a cluster's host: plaintext or TLS (the host's transport socket), from its bind address.

import { isIP, connect as netConnect, type OnReadOpts, type Socket } from 'node:net';
import type { ClusterConfig } from '../../config/model.js';
import type { UpstreamTls } from '../tls/upstream.js';
import type { Host } from './host.js';

/** What a pool or filter knows of the cluster it connects for. */
export interface ConnectTarget {
  readonly config: ClusterConfig;
  /** The transport socket of the host (`host.tls`, or a pool's, which keeps the one it was made with). */
  readonly tls: UpstreamTls | undefined;
}

/** What an HTTP/2 pool offers over TLS when nothing overrides it. */
export const H2_ALPN: readonly string[] = ['h2'];

export interface HostConnectOptions {
  readonly onread?: OnReadOpts;
  readonly allowHalfOpen?: boolean;
  /** ALPN to offer over TLS instead of the context's (an HTTP/2 pool offers ["h2"]; istio.alpn its own). */
  readonly alpn?: readonly string[];
}

/**
 * A new socket to `host`. With TLS it is established at 'secureConnect' (handshake and verification passed),
 * otherwise at 'connect'. upstream_bind_config's address of the host's family is the source, when there is one.
 */
export function connectToHost(target: ConnectTarget, host: Host, opts: HostConnectOptions = {}): Socket {
  const localAddress = sourceAddressFor(target.config.upstreamBindAddresses, host.address);
  if (target.tls) return target.tls.connect(host.address, host.port, { ...opts, localAddress });
  return netConnect({
    host: host.address,
    port: host.port,
    noDelay: true,
    onread: opts.onread,
    allowHalfOpen: opts.allowHalfOpen,
    localAddress,
  });
}

/** The bind address of the same IP family as `address`; a v4-mapped host uses the IPv4 one. */
export function sourceAddressFor(bind: readonly string[], address: string): string | undefined {
  if (bind.length === 0) return undefined;
  const family = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? 4 : isIP(address);
  return bind.find((b) => isIP(b) === family);
}

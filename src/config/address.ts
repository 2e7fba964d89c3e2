// envoy.config.core.v3.Address: TCP socket addresses (IP literals, or hostnames where DNS resolves them).

import { isIP } from 'node:net';
import type { SocketAddress } from './model.js';
import { type Ctx, Fields, quote } from './reader.js';

export interface AddressOptions {
  /** 'ip': the address must be an IP literal; 'ip_or_hostname': a DNS name is accepted too. */
  readonly host: 'ip' | 'ip_or_hostname';
  /** When the host must be an IP and is not: the error message. */
  readonly notIpMessage?: string;
  /** Endpoints need a real port; listeners and admin may bind port 0 (any free port). */
  readonly requirePort: boolean;
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?(\.[a-zA-Z0-9_]([a-zA-Z0-9_-]{0,61}[a-zA-Z0-9_])?)*\.?$/;

export function isHostname(name: string): boolean {
  return HOSTNAME.test(name);
}

/** An `Address` message: only `socket_address` is supported. */
export function translateAddress(
  ctx: Ctx,
  raw: unknown,
  path: string,
  opts: AddressOptions,
): SocketAddress | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  f.oneOf(['socket_address', 'pipe', 'envoy_internal_address'], { required: true });
  const sa = f.object('socket_address');
  f.unsupported(['pipe', 'envoy_internal_address']);
  f.finish();
  return sa === undefined ? undefined : socketAddress(sa, opts);
}

/** A `SocketAddress` message. */
export function socketAddress(f: Fields, opts: AddressOptions): SocketAddress | undefined {
  f.enumOf('protocol', ['TCP'], ['UDP']);
  const address = f.string('address', { required: true });
  const port = f.int('port_value', { min: opts.requirePort ? 1 : 0, max: 65535, required: opts.requirePort });
  f.unsupported(['named_port', 'resolver_name', 'network_namespace_filepath']);
  const ipv4Compat = f.bool('ipv4_compat') ?? false;
  f.finish();
  if (address === undefined) return undefined;
  if (isIP(address) === 0) {
    if (opts.host === 'ip') {
      f.error('address', opts.notIpMessage ?? `must be an IP address, got ${quote(address)}`);
      return undefined;
    }
    if (!isHostname(address)) {
      f.error('address', `must be an IP address or a DNS name, got ${quote(address)}`);
      return undefined;
    }
  }
  if (ipv4Compat && isIP(address) !== 6) {
    f.error('ipv4_compat', `only applies to an IPv6 address, not ${quote(address)}`);
    return undefined;
  }
  return ipv4Compat ? { address, port: port ?? 0, ipv4Compat } : { address, port: port ?? 0 };
}

/**
 * "ip:port" or "[ipv6]:port" with an IP literal (x-envoy-original-dst-host, --dns-resolvers). With `defaultPort`
 * the port may be left out ("ip", "[ipv6]", or a bare IPv6 address). Undefined when it is none of those.
 */
export function parseIpPort(spec: string, defaultPort?: number): SocketAddress | undefined {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(spec) ?? /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(spec);
  const address = m ? m[1]! : spec;
  const family = isIP(address);
  // Brackets hold IPv6 only; an IPv6 address without them is one only when no port can follow.
  if (family === 0 || (m === null ? defaultPort === undefined : spec.startsWith('[') !== (family === 6)))
    return undefined;
  const port = m?.[2] === undefined ? defaultPort : Number(m[2]);
  if (port === undefined || port < 1 || port > 65535) return undefined;
  return { address, port };
}

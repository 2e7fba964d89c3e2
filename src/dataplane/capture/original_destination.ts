// The original destination of a connection that iptables/nftables redirected to the proxy (SO_ORIGINAL_DST).

import type { Socket } from 'node:net';
import { addonFunction, fdOf } from '../native/addon.js';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** Whether original destinations can be read here; the reason when not. Loads the addon once. */
export function originalDestinationSupport():
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string } {
  const read = addonFunction('originalDst');
  return typeof read === 'string' ? { ok: false, reason: read } : { ok: true };
}

/**
 * Where the connection was going before NAT redirected it, or undefined when it was not redirected (no conntrack
 * entry) or cannot be told. Throws only when the addon is unavailable: callers check support at config time.
 */
export function originalDestination(socket: Socket): OriginalDestination | undefined {
  const read = addonFunction('originalDst');
  if (typeof read === 'string') throw new Error(read);
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  try {
    const dst = read(fd);
    return { address: dst.address, port: dst.port, family: dst.family };
  } catch {
    return undefined;
  }
}

// The original destination of a connection that iptables/nftables redirected to the proxy (SO_ORIGINAL_DST).

import type { Socket } from 'node:net';
import { type NativeAddon, nativeAddon } from '../native/addon.js';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

/** The addon's reader of SO_ORIGINAL_DST, or why there is none. */
function reader(): NativeAddon['originalDst'] | string {
  const support = nativeAddon();
  if (!support.ok) return support.reason;
  return (
    support.addon.originalDst ??
    "Remora's native addon was built from an older tree: rebuild it with `npm rebuild remora`"
  );
}

/** Whether original destinations can be read here; the reason when not. Loads the addon once. */
export function originalDestinationSupport():
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: string } {
  const read = reader();
  return typeof read === 'string' ? { ok: false, reason: read } : { ok: true };
}

/** The socket's file descriptor, read before any TLS wrapping (undefined for a socket without one). */
export function fdOf(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

/**
 * Where the connection was going before NAT redirected it, or undefined when it was not redirected (no conntrack
 * entry) or cannot be told. Throws only when the addon is unavailable: callers check support at config time.
 */
export function originalDestination(socket: Socket): OriginalDestination | undefined {
  const read = reader();
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

// The original destination of a connection that iptables/nftables redirected to the proxy (SO_ORIGINAL_DST).

import { existsSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
  readonly family: 4 | 6;
}

interface NativeAddon {
  originalDst(fd: number): OriginalDestination;
}

type Loaded =
  | { readonly ok: true; readonly addon: NativeAddon }
  | { readonly ok: false; readonly reason: string };

const ADDON = join('native', 'build', 'Release', 'remora_native.node');
let loaded: Loaded | undefined;

/** Remora's root: the nearest directory at or above `from` holding native/ (works from dist/src and the bundle). */
function findRoot(from: string): string | undefined {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'native', 'binding.gyp'))) return dir;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Loads the addon of the Remora tree at or above `from`, or says why it cannot. */
export function loadAddon(from: string): Loaded {
  if (process.platform !== 'linux')
    return {
      ok: false,
      reason: `original destinations are read with a Linux socket option; this is ${process.platform}`,
    };
  const root = findRoot(from);
  const path = root === undefined ? undefined : join(root, ADDON);
  if (root === undefined || path === undefined || !existsSync(path)) {
    const marker = root && join(root, 'native', 'build', 'UNAVAILABLE');
    const why = marker && existsSync(marker) ? readFileSync(marker, 'utf8').trim() : 'it was not built';
    return {
      ok: false,
      reason: `Remora's native addon (${ADDON}) is missing: ${why}. Build it with \`npm rebuild remora\` or \`node scripts/build-native.mjs\` (needs python3, make and a C compiler)`,
    };
  }
  try {
    // dlopen straight away: require() would resolve the path first, and its path handling is enough start-up work
    // for V8 to run its optimizing compiler (~3 MiB of the process's memory from then on).
    const module = { exports: {} };
    process.dlopen(module, path);
    return { ok: true, addon: module.exports as NativeAddon };
  } catch (err) {
    return { ok: false, reason: `Remora's native addon ${path} cannot be loaded: ${(err as Error).message}` };
  }
}

/** Whether original destinations can be read here; the reason when not. Loads the addon once. */
export function originalDestinationSupport(): Loaded {
  loaded ??= loadAddon(dirname(fileURLToPath(import.meta.url)));
  return loaded;
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
  const support = originalDestinationSupport();
  if (!support.ok) throw new Error(support.reason);
  const fd = fdOf(socket);
  if (fd === undefined) return undefined;
  try {
    const dst = support.addon.originalDst(fd);
    return { address: dst.address, port: dst.port, family: dst.family };
  } catch {
    return undefined;
  }
}

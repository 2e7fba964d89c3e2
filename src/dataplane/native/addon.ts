// Remora's native addon (native/): loaded once, on first use, from the Remora tree this module is part of; when it
// cannot be, the reason says what is wrong and how to fix it. Each feature takes its function with `addonFunction`.

import { existsSync, readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** What the addon exports; each file of native/ adds its part (original_dst.c, tcp_relay.c, heap.cc). */
export interface NativeAddon {
  originalDst(fd: number): { address: string; port: number; family: 4 | 6 };
  relayInit(onDone: (id: number) => void): void;
  relayStart(downstreamFd: number, upstreamFd: number): number;
  /** [bytes downstream→upstream, bytes upstream→downstream, ms since the last read, errno, done] */
  relayInfo(id: number): [number, number, number, number, number] | undefined;
  relayRelease(id: number): void;
  releaseMemory(): void;
}

export type Loaded =
  | { readonly ok: true; readonly addon: Partial<NativeAddon> }
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

/**
 * Loads the addon of the Remora tree at or above `from`, or says why it cannot. Its exports are `Partial`: an
 * addon built from an older tree may lack a function, and each feature checks for its own.
 */
export function loadAddon(from: string): Loaded {
  if (process.platform !== 'linux')
    return {
      ok: false,
      reason: `Remora's native addon uses Linux socket options; this is ${process.platform}`,
    };
  const root = findRoot(from);
  const path = root === undefined ? undefined : join(root, ADDON);
  if (root === undefined || path === undefined || !existsSync(path)) {
    const marker = root && join(root, 'native', 'build', 'UNAVAILABLE');
    const why = marker && existsSync(marker) ? readFileSync(marker, 'utf8').trim() : 'it was not built';
    return {
      ok: false,
      reason: `Remora's native addon (${ADDON}) is missing: ${why}. Build it with \`npm rebuild remora\` or \`node scripts/build-native.mjs\` (needs python3, make and a C and C++ compiler)`,
    };
  }
  try {
    // dlopen straight away: require() would resolve the path first, and its path handling is enough start-up work
    // for V8 to run its optimizing compiler (~3 MiB of the process's memory from then on).
    const module = { exports: {} };
    process.dlopen(module, path);
    return { ok: true, addon: module.exports as Partial<NativeAddon> };
  } catch (err) {
    return { ok: false, reason: `Remora's native addon ${path} cannot be loaded: ${(err as Error).message}` };
  }
}

/** The addon of this Remora tree, or why it is unavailable; loaded on the first call. */
export function nativeAddon(): Loaded {
  loaded ??= loadAddon(dirname(fileURLToPath(import.meta.url)));
  return loaded;
}

/** One function of the addon, or why it is unavailable (no addon, or one built from an older tree). */
export function addonFunction<K extends keyof NativeAddon>(name: K): NativeAddon[K] | string {
  const support = nativeAddon();
  if (!support.ok) return support.reason;
  return (
    support.addon[name] ??
    "Remora's native addon was built from an older tree: rebuild it with `npm rebuild remora`"
  );
}

/** The socket's file descriptor, read before any TLS wrapping (undefined for a socket without one). */
export function fdOf(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  const fd = handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : undefined;
}

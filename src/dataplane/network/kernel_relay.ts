// The kernel-side relay of a tcp_proxy connection (native/tcp_relay.c): once both sockets are plaintext TCP and
// connected, the addon's thread copies their bytes with read/write on epoll and JavaScript hears only of the end.
// Node's stream write path per relayed message (a WriteWrap, the Writable state machine, a tick) is most of the
// user-space CPU of a TCP proxy; without it a relayed message costs what the kernel charges.

import type { Socket } from 'node:net';
import { isTlsSocket } from '../../lazy_builtins.js';
import { fdOf, type NativeAddon, nativeAddon } from '../native/addon.js';

type RelayAddon = Pick<NativeAddon, 'relayInit' | 'relayStart' | 'relayInfo' | 'relayRelease'>;

export interface RelayCounts {
  /** Bytes the relay moved from downstream to upstream, and back. */
  readonly sent: number;
  readonly received: number;
  /** The errno of the read or write that ended the relay; 0 when both directions ended with a FIN. */
  readonly errno: number;
}

/** A running relay: its sockets are the relay's until it ends (onEnd) or is stopped. */
export class RelayedPair {
  private ended = false;

  constructor(
    private readonly addon: RelayAddon,
    readonly id: number,
    private readonly onEnd: (counts: RelayCounts) => void,
  ) {
    running.set(id, this);
  }

  /** Milliseconds since a byte was last read from either side. */
  idleMs(): number {
    return this.addon.relayInfo(this.id)?.[2] ?? 0;
  }

  /** The bytes moved so far. */
  counts(): RelayCounts {
    const info = this.addon.relayInfo(this.id);
    return { sent: info?.[0] ?? 0, received: info?.[1] ?? 0, errno: info?.[3] ?? 0 };
  }

  /** Stops relaying (the caller then closes the sockets); the counts so far. No onEnd follows. */
  stop(): RelayCounts {
    const counts = this.release();
    this.ended = true;
    return counts;
  }

  /** Called for the addon's done notification. */
  finished(): void {
    if (this.ended) return;
    this.ended = true;
    this.onEnd(this.release());
  }

  private release(): RelayCounts {
    running.delete(this.id);
    const counts = this.counts();
    this.addon.relayRelease(this.id);
    return counts;
  }
}

const running = new Map<number, RelayedPair>();
/** For a downstream socket whose bytes a kernel relay moves (or moved): those bytes. */
const relayedBytes = new WeakMap<Socket, () => RelayCounts>();

/** Marks `downstream`'s bytes as counted by `counts` too (what its relay moved, which Node's socket never sees). */
export function countRelayedBytes(downstream: Socket, counts: () => RelayCounts): void {
  relayedBytes.set(downstream, counts);
}

/** A downstream socket's bytes read and written, those a kernel relay moved included. */
export function socketBytes(socket: Socket): { readonly read: number; readonly written: number } {
  const relayed = relayedBytes.get(socket)?.();
  return {
    read: socket.bytesRead + (relayed?.sent ?? 0),
    written: socket.bytesWritten + (relayed?.received ?? 0),
  };
}

let addon: RelayAddon | null | undefined;

function relayAddon(): RelayAddon | null {
  if (addon !== undefined) return addon;
  const support = nativeAddon();
  const a = support.ok ? support.addon : undefined;
  // tcp_relay.c adds its four functions together: an addon built from an older tree has none of them.
  if (a?.relayInit === undefined) {
    addon = null;
    return addon;
  }
  a.relayInit((id) => running.get(id)?.finished());
  addon = a as RelayAddon;
  return addon;
}

/**
 * Whether new connections go to the kernel relay: the addon is built, and REMORA_TCP_RELAY is not `node` (which
 * keeps every byte in Node's streams, to compare).
 */
export function kernelRelayAvailable(): boolean {
  return process.env.REMORA_TCP_RELAY !== 'node' && relayAddon() !== null;
}

/** How many connections the kernel relay is moving bytes for now. */
export function runningRelays(): number {
  return running.size;
}

/** A socket's file descriptor when it is plaintext TCP with nothing in flight in Node; else undefined. */
function relayableFd(socket: Socket): number | undefined {
  if (isTlsSocket(socket) || socket.destroyed) return undefined;
  if (socket.writableLength > 0 || socket.readableLength > 0 || socket.readableEnded) return undefined;
  return fdOf(socket);
}

/**
 * Hands the pair to the kernel relay, or returns undefined (leaving them untouched) when it cannot take them:
 * no addon, TLS on either side, or bytes Node holds for either socket. Both sockets must be paused (Node reads
 * neither); `onEnd` comes once both directions have ended or one failed, and the caller then closes both.
 */
export function relayInKernel(
  downstream: Socket,
  upstream: Socket,
  onEnd: (counts: RelayCounts) => void,
): RelayedPair | undefined {
  const a = relayAddon();
  if (a === null) return undefined;
  const down = relayableFd(downstream);
  const up = relayableFd(upstream);
  if (down === undefined || up === undefined) return undefined;
  let id: number;
  try {
    id = a.relayStart(down, up);
  } catch {
    return undefined;
  }
  return new RelayedPair(a, id, onEnd);
}

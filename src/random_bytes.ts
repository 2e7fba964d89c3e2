// Cryptographically secure random bytes read from the kernel's CSPRNG (/dev/urandom), the source node:crypto
// seeds from too, so that a sidecar which only needs random request ids never loads node:crypto (~0.5 MiB of its
// memory: the module brings its ciphers, keys, hashes and X.509 with it).

import { closeSync, openSync, readSync } from 'node:fs';
import { nodeCrypto } from './lazy_builtins.js';

const DEVICE = '/dev/urandom';

/** The open device, undefined before the first read, null where it cannot be opened (node:crypto fills then). */
let fd: number | null | undefined;

/** Fills `buf` with random bytes; reads block never (the device is non-blocking once the kernel pool is ready). */
export function randomFill<T extends Uint8Array>(buf: T): T {
  if (fd === undefined) fd = openDevice();
  if (fd === null) return nodeCrypto().randomFillSync(buf);
  let at = 0;
  // A read beyond 256 bytes may be cut short by a signal: keep reading until the buffer is full.
  while (at < buf.length) {
    const n = readSync(fd, buf, at, buf.length - at, null);
    if (n === 0) throw new Error(`${DEVICE} returned no bytes`);
    at += n;
  }
  return buf;
}

function openDevice(): number | null {
  try {
    return openSync(DEVICE, 'r');
  } catch {
    return null;
  }
}

/** Closes the device (a later fill opens it again); for tests that count open descriptors. */
export function closeRandomSource(): void {
  if (typeof fd === 'number') closeSync(fd);
  fd = undefined;
}

// Test support for bulk-transfer tests: deterministic data, a backpressure-aware producer, body digests and RSS.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';

export const MiB = 1024 ** 2;
export const CHUNK = 256 * 1024;

/** Deterministic data made on the fly: a random block, each chunk stamped with its index. */
const block = randomBytes(CHUNK);
export function chunkAt(i: number, size = CHUNK): Buffer {
  const c = Buffer.allocUnsafe(size);
  block.copy(c, 0, 0, size);
  c.writeUInt32BE(i, 0);
  return c;
}

/**
 * Writes `total` bytes of chunkAt() data to `out`, honouring backpressure; resolves with the sha256.
 * `onBlocked` hears each time a write is refused until 'drain', with the bytes written so far.
 */
export async function produce(
  out: Writable,
  total: number,
  onBlocked?: (sent: number) => void,
): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  for (let i = 0; sent < total; i++) {
    const c = chunkAt(i, Math.min(CHUNK, total - sent));
    hash.update(c);
    sent += c.length;
    if (!out.write(c)) {
      onBlocked?.(sent);
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          out.off('error', onError);
          resolve();
        };
        const onError = (err: Error) => {
          out.off('drain', onDrain);
          reject(err);
        };
        out.once('drain', onDrain);
        out.once('error', onError);
      });
    }
  }
  return hash.digest('hex');
}

/**
 * One side of a transfer that a stalled peer should hold back: what it has written and since when backpressure
 * has refused it. Reused across transfers so a test can watch whichever one an upstream started last.
 */
export class Producer {
  written = 0;
  /** Date.now() of the last refused write not yet followed by 'drain'; 0 while writes are accepted. */
  blockedSince = 0;
  done = false;
  sha256 = '';

  /** Resets the record, then produce()s `total` bytes into `out`; resolves with their sha256. */
  run(out: Writable, total: number): Promise<string> {
    Object.assign(this, { written: 0, blockedSince: 0, done: false, sha256: '' });
    out.on('drain', () => {
      this.blockedSince = 0;
    });
    return produce(out, total, (sent) => {
      this.written = sent;
      this.blockedSince = Date.now();
    }).then((sha) => {
      Object.assign(this, { written: total, sha256: sha, done: true });
      return sha;
    });
  }

  /** True once a refused write has waited `ms` without a 'drain'. */
  heldFor(ms: number): boolean {
    return this.blockedSince > 0 && Date.now() - this.blockedSince >= ms;
  }
}

/** Reads `body` to its end; resolves with its length and sha256 (never on error: the peer sees that). */
export function digest(body: Readable): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    body.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
    });
    body.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
  });
}

/** Samples a process's resident memory from /proc every 20 ms while a transfer runs. */
export class RssSampler {
  peak = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.sample();
    this.timer = setInterval(() => this.sample(), 20);
  }
  sample(): number {
    let status: string;
    try {
      status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    } catch (err) {
      throw new Error(`the transfer tests need Linux /proc to read the proxy's VmRSS: ${String(err)}`);
    }
    const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
    const bytes = kb * 1024;
    if (bytes > this.peak) this.peak = bytes;
    return bytes;
  }
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}

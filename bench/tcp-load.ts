// TCP load generation against an echo server: request/response round trips over N connections, and bulk MB/s.

import { connect, type Socket } from 'node:net';
import { createHistogram } from 'node:perf_hooks';
import type { LoadResult } from './load.js';

export interface TcpLoadOptions {
  port: number;
  connections: number;
  durationS: number;
  /** Message size for round trips (bytes). */
  messageBytes?: number;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Each connection sends a small message, waits for all of it to come back, and repeats until the
 * deadline. Reports round trips/s and the round-trip latency percentiles.
 */
export async function tcpEchoLoad(opts: TcpLoadOptions): Promise<LoadResult> {
  const size = opts.messageBytes ?? 64;
  const message = Buffer.alloc(size, 0x61);
  const sockets = await Promise.all(Array.from({ length: opts.connections }, () => open(opts.port)));
  const histogram = createHistogram();
  let trips = 0;
  let errors = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(opts.durationS * 1e9));
  let end = start;
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((done) => {
          let pending = 0;
          let sentAt = 0n;
          const send = (): void => {
            pending = size;
            sentAt = process.hrtime.bigint();
            socket.write(message);
          };
          let over = false;
          const finish = (): void => {
            over = true;
            socket.removeAllListeners('data');
            socket.destroy();
            done();
          };
          socket.on('data', (chunk: Buffer) => {
            pending -= chunk.length;
            if (pending > 0) return;
            const now = process.hrtime.bigint();
            histogram.record(Math.max(1, Number(now - sentAt)));
            trips++;
            if (now > end) end = now;
            if (now >= deadline) finish();
            else send();
          });
          socket.once('error', () => {
            if (!over) errors++;
            finish();
          });
          socket.once('close', () => {
            // Closed by the peer before the deadline.
            if (!over) errors++;
            finish();
          });
          send();
          // A proxy that stops echoing must not hang the run.
          setTimeout(finish, opts.durationS * 1000 + 5000).unref();
        }),
    ),
  );
  if (trips === 0) throw new Error(`no echo received in ${opts.durationS}s (${errors} connection errors)`);
  const seconds = Number(end - start) / 1e9;
  return {
    rate: trips / seconds,
    p50Us: Math.round(histogram.percentile(50) / 1000),
    p99Us: Math.round(histogram.percentile(99) / 1000),
    count: trips,
    errors,
  };
}

/**
 * One connection writes 64 KiB chunks as fast as backpressure allows while reading the echo;
 * reports echoed MB/s (10^6 bytes) in `rate`.
 */
export async function tcpBulkLoad(opts: { port: number; durationS: number }): Promise<LoadResult> {
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const socket = await open(opts.port);
  let received = 0;
  let errors = 0;
  const start = process.hrtime.bigint();
  await new Promise<void>((done) => {
    let stopped = false;
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      socket.destroy();
      done();
    };
    const pump = (): void => {
      while (!stopped && socket.write(chunk)) {
        // keep writing until the socket asks us to wait
      }
    };
    socket.on('data', (c: Buffer) => {
      received += c.length;
    });
    socket.on('drain', pump);
    socket.once('error', () => {
      errors++;
      stop();
    });
    socket.once('close', stop);
    setTimeout(stop, opts.durationS * 1000);
    pump();
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (received === 0) throw new Error(`no echo received in ${opts.durationS}s`);
  return { rate: received / 1e6 / seconds, count: received, errors };
}

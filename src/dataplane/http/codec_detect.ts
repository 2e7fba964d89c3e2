// Tells an HTTP/2 connection from an HTTP/1.x one by its first bytes (the RFC 9113 connection preface).

import type { Socket } from 'node:net';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Reads until the first bytes match the HTTP/2 preface or cannot, puts them back (the codec reads them again)
 * and reports. A client that sends nothing is closed after `timeoutMs` (0 = wait forever).
 */
export function detectHttp2Preface(socket: Socket, timeoutMs: number, done: (h2: boolean) => void): void {
  let buf: Buffer | undefined;
  let timer: NodeJS.Timeout | undefined;
  const finish = (h2: boolean): void => {
    socket.off('data', onData);
    socket.off('close', onClose);
    if (timer) clearTimeout(timer);
    socket.pause();
    if (buf) socket.unshift(buf);
    done(h2);
  };
  const onData = (d: Buffer): void => {
    buf = buf ? Buffer.concat([buf, d]) : d;
    const n = Math.min(buf.length, PREFACE.length);
    const same = buf.compare(PREFACE, 0, n, 0, n) === 0;
    if (same && n < PREFACE.length) return;
    finish(same);
  };
  const onClose = (): void => {
    if (timer) clearTimeout(timer);
    socket.off('data', onData);
  };
  socket.on('data', onData);
  // Listener filters may hand the socket over paused (with what they read put back): a 'data' listener alone would not restart it.
  socket.resume();
  socket.once('close', onClose);
  socket.on('error', () => undefined);
  if (timeoutMs > 0) {
    timer = setTimeout(() => socket.destroy(), timeoutMs);
    timer.unref();
  }
}

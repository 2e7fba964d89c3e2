// The listener filter phase of one connection: read its first bytes until every listener filter has decided, then put them back.

import type { Socket } from 'node:net';
import type {
  Detected,
  ListenerFilter,
  ListenerFilterInstance,
  ListenerFilterStatus,
} from './listener_filters.js';

export interface DetectionOptions {
  /** listener_filters_timeout; 0 = none. */
  readonly timeoutMs: number;
  /** continue_on_listener_filters_timeout: on timeout, choose a chain with what is known instead of closing. */
  readonly continueOnTimeout: boolean;
}

/** How the phase ended when the connection did not survive it. */
export type DetectionFailure =
  /** The timeout fired and continue_on_listener_filters_timeout is false. */
  | 'timeout'
  /** The peer closed (FIN) before the filters decided. */
  | 'remote_close'
  /** The socket failed. */
  | 'error'
  /** A filter asked to close (a ClientHello or request line too large); it counted why. */
  | 'filter'
  /** Someone else destroyed the socket (listener closing). */
  | 'closed';

export interface DetectionCallbacks {
  /** The filters are done: the socket is paused, with every byte read put back (unshift) for the next owner. */
  onDetected(detected: Detected): void;
  /** The timeout fired (counted whether or not the connection goes on). */
  onTimeout(): void;
  /** The connection is gone (already destroyed). */
  onFailed(why: DetectionFailure): void;
}

/**
 * Runs `filters` in order on `socket`, as Envoy's listener filter chain does: each one sees every byte read so far
 * (a later filter starts on what earlier ones made the listener read), and may be skipped for the connection.
 * Returns at once; exactly one callback of `onDetected`/`onFailed` follows (`onTimeout` may come before either).
 */
export function detect(
  socket: Socket,
  destinationPort: number,
  filters: readonly ListenerFilter[],
  opts: DetectionOptions,
  cb: DetectionCallbacks,
): void {
  const detected: Detected = { transportProtocol: '', serverName: '', applicationProtocols: [] };
  const chunks: Buffer[] = [];
  let next = 0;
  let current: ListenerFilterInstance | undefined;
  let over = false;
  let timer: NodeJS.Timeout | undefined;

  const cleanup = (): void => {
    over = true;
    if (timer) clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
    socket.off('close', onClose);
  };
  const succeed = (): void => {
    cleanup();
    socket.pause();
    // The filter chain reads the same bytes again: a paused socket keeps them until its next owner resumes it.
    if (chunks.length > 0) socket.unshift(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
    if (detected.transportProtocol === '') detected.transportProtocol = 'raw_buffer';
    cb.onDetected(detected);
  };
  const fail = (why: DetectionFailure): void => {
    cleanup();
    socket.destroy();
    cb.onFailed(why);
  };
  /** Acts on a filter's verdict; starts the next filters while they finish on what was read already. */
  const advance = (status: ListenerFilterStatus): void => {
    for (;;) {
      if (status === 'close') return fail('filter');
      if (status === 'need_more') return;
      current = undefined;
      while (current === undefined && next < filters.length) {
        current = filters[next++]!.create(destinationPort, detected);
      }
      if (current === undefined) return succeed();
      if (chunks.length === 0) return;
      status = current.onData(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), detected);
    }
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    if (current !== undefined) advance(current.onData(chunk, detected));
  };
  const onEnd = (): void => fail('remote_close');
  const onError = (): void => {
    current?.onReadError();
    fail('error');
  };
  const onClose = (): void => fail('closed');

  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.on('close', onClose);
  if (opts.timeoutMs > 0) {
    timer = setTimeout(() => {
      if (over) return;
      cb.onTimeout();
      if (opts.continueOnTimeout) succeed();
      else fail('timeout');
    }, opts.timeoutMs);
  }
  advance('continue');
}

// What an upstream answers an upgrade request: the headers of its head as they go downstream, and the body of an
// answer other than 101, relayed as the upstream framed it.

import type { Socket } from 'node:net';
import type { StreamInfo } from '../observe/stream_info.js';
import { ChunkedDecoder, type Framing } from './h1/parse.js';
import { type HeaderList, headerRemove } from './header_list.js';
import { connectionListed, isHopByHop } from './hop_by_hop.js';
import type { DownstreamStream } from './stream.js';

/** The upstream's response headers without this hop's (Connection and those it lists ...), and its Upgrade. */
export function upstreamResponseHeaders(parsed: readonly string[]): {
  headers: HeaderList;
  upgrade: string | undefined;
} {
  const headers: HeaderList = [];
  let connection: string | undefined;
  let upgrade: string | undefined;
  for (let i = 0; i < parsed.length; i += 2) {
    const name = parsed[i]!;
    const value = parsed[i + 1]!;
    if (!isHopByHop(name)) headers.push(name, value);
    else if (name === 'connection') connection = connection === undefined ? value : `${connection},${value}`;
    else if (name === 'upgrade') upgrade = upgrade === undefined ? value : `${upgrade},${value}`;
  }
  const listed = connectionListed(connection);
  if (listed) for (const name of listed) headerRemove(headers, name);
  return { headers, upgrade };
}

/**
 * Relays the body of a refused upgrade's response from the upstream socket to the downstream stream, with
 * backpressure. `onComplete` is called once the body is whole; the owner then ends the stream.
 */
export class RefusalBody {
  private remaining: number;
  private readonly chunked: ChunkedDecoder | undefined;
  private awaitingDrain = false;
  private done = false;

  constructor(
    private readonly framing: Framing,
    private readonly stream: DownstreamStream,
    private readonly info: StreamInfo,
    private readonly socket: Socket,
    private readonly onComplete: () => void,
  ) {
    this.remaining = framing.kind === 'length' ? framing.length : 0;
    this.chunked = framing.kind === 'chunked' ? new ChunkedDecoder() : undefined;
  }

  /** No body at all (HEAD, 204, 304, Content-Length: 0). */
  get empty(): boolean {
    return this.framing.kind === 'none' || (this.framing.kind === 'length' && this.remaining === 0);
  }

  /** Bytes from the upstream; throws H1ParseError when a chunked body is malformed. */
  feed(d: Buffer): void {
    switch (this.framing.kind) {
      case 'length': {
        const take = Math.min(this.remaining, d.length);
        this.remaining -= take;
        this.forward(take === d.length ? d : d.subarray(0, take));
        if (this.remaining === 0) this.complete();
        return;
      }
      case 'chunked':
        this.chunked!.feed(d, (c) => this.forward(c));
        if (this.chunked!.done) this.complete();
        return;
      case 'close':
        this.forward(d);
        return;
      default:
        return; // bytes after a body-less answer belong to nothing: the connection closes anyway
    }
  }

  /** The upstream's FIN: true when it ends the body (read-until-close framing), false when it cuts it short. */
  upstreamEnded(): boolean {
    if (this.framing.kind !== 'close') return false;
    this.complete();
    return true;
  }

  private forward(chunk: Buffer): void {
    if (this.done || chunk.length === 0) return;
    this.info.bytesSent += chunk.length;
    if (!this.stream.write(chunk) && !this.awaitingDrain) {
      this.awaitingDrain = true;
      this.socket.pause();
      this.stream.onDrain(() => {
        this.awaitingDrain = false;
        this.socket.resume();
      });
    }
  }

  private complete(): void {
    if (this.done) return;
    this.done = true;
    this.onComplete();
  }
}

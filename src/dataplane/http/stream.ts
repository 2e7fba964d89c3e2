// The downstream request/response pair as the connection manager and router see it, whatever codec carries it.

import type { Socket } from 'node:net';
import type { SocketAddress } from '../../config/model.js';
import type { HeaderList } from './header_list.js';

/** Receives a request body; the stream buffers what arrives before a sink is attached. */
export interface BodySink {
  onData(chunk: Buffer): void;
  /** `trailers`: the request's trailing headers (HTTP/2), lower-cased flat list. */
  onEnd(trailers?: HeaderList): void;
  onError(err: Error): void;
}

/** The connection a stream arrived on, as far as routing and logging need it. */
export interface DownstreamConnection {
  /** The peer's IP. */
  readonly remoteIp: string;
  /** "ip:port" of the peer and of the proxy's end. */
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** Where the connection was going before NAT redirected it (original_dst); undefined when not redirected. */
  readonly originalDestination: SocketAddress | undefined;
  /** TLS was terminated on this connection. */
  readonly secure: boolean;
  /**
   * The socket (the TLS one when TLS was terminated), for what is read once per connection and only when asked
   * for: RBAC's connection facts, the client certificate for access logs. Absent for codecs driven without one.
   */
  readonly socket?: Socket;
}

export type DownstreamProtocol = 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';

/** One request and its response, on an HTTP/1.1 connection or an HTTP/2 stream. */
export interface DownstreamStream {
  readonly method: string;
  /** The request target: path and query. */
  readonly url: string;
  /** Regular request headers, lower-cased flat [name, value, ...]; no pseudo-headers. */
  readonly headers: string[];
  /** Host (HTTP/1.1) or :authority (HTTP/2); '' when absent. */
  readonly authority: string;
  readonly protocol: DownstreamProtocol;
  readonly connection: DownstreamConnection;
  readonly hasBody: boolean;
  /** The whole request (head and body) has been read. */
  readonly complete: boolean;
  readonly headersSent: boolean;
  /** The response has been completely handed to the transport. */
  readonly finished: boolean;
  /** The stream ended before its response finished (client gone, reset). */
  readonly aborted: boolean;
  /** The codec answered on its own (stream idle timeout): for the router this is a reset. */
  timedOut: boolean;
  readonly statusCode: number;
  /** HTTP/1.1: set false to close the connection after this response. HTTP/2 ignores it. */
  keepAlive: boolean;

  /** A request header (several values joined with ","), or undefined. */
  header(name: string): string | undefined;
  /** Attaches the body consumer; data that arrived earlier is delivered now. */
  setBodySink(sink: BodySink): void;
  pauseBody(): void;
  resumeBody(): void;
  /** Called once when the exchange ends: `aborted` when the response did not finish. */
  onDone(cb: (aborted: boolean) => void): void;
  /**
   * Prepares the response head (lower-cased names, hop-by-hop already removed); sent with the first write.
   * `noTrailers`: the response is known to end without trailers (an HTTP/1.1 upstream's), so an HTTP/2 stream
   * need not stay open for them.
   */
  writeHead(status: number, headers: HeaderList, reason?: string, noTrailers?: boolean): void;
  /** Writes body bytes (which may be a view of a shared buffer); false means wait for onDrain. */
  write(chunk: Buffer): boolean;
  /** Sends the response head now, without waiting for body bytes. */
  flushHeaders(): void;
  onDrain(cb: () => void): void;
  /** Ends the response, with an optional last chunk and trailers (dropped where the codec cannot carry them). */
  end(chunk?: Buffer | string, trailers?: HeaderList): void;
  /** Abandons the exchange: HTTP/1.1 closes the connection, HTTP/2 resets the stream. */
  destroy(): void;
}

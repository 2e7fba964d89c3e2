// One request to an upstream host as every pool and codec sees it: the request, its body, and the callbacks back.

import type { HeaderList } from '../http/header_list.js';

export type UpstreamErrorKind = 'connect_failure' | 'connect_timeout' | 'reset' | 'protocol_error';

export class UpstreamError extends Error {
  constructor(
    readonly kind: UpstreamErrorKind,
    message: string,
    /** The connection had served a response before (the keep-alive race). */
    readonly reused = false,
    /** Nothing of the response had arrived. */
    readonly beforeResponse = true,
  ) {
    super(message);
  }
}

/** Lets the router pause, resume or cancel one exchange (the same shape undici's controller has). */
export interface UpstreamController {
  pause(): void;
  resume(): void;
  abort(reason: Error): void;
}

/** The router's side of one exchange. Calls arrive in order: start, response start, data*, end | error. */
export interface UpstreamHandler {
  onRequestStart(c: UpstreamController): void;
  onResponseStart(c: UpstreamController, status: number, headers: HeaderList, reason: string): void;
  /** `chunk` is a view of the shared read buffer (read_buffer.ts): copy what is kept past this call. */
  onResponseData(c: UpstreamController, chunk: Buffer): void;
  /** `trailers`: the response's trailing headers, when the protocol carried any. */
  onResponseEnd(c: UpstreamController, trailers?: HeaderList): void;
  onResponseError(c: UpstreamController, err: UpstreamError): void;
  /** The bytes at hand are used up and the response is still incomplete (a slow body, a long poll). */
  onResponseWaiting(c: UpstreamController): void;
}

/** Feeds a request body to a connection; `resume` is called when the connection can take more. */
export interface BodyTarget {
  /** Returns false when the writer should pause until `resume()`. */
  onData(chunk: Buffer): boolean;
  onEnd(trailers?: HeaderList): void;
  onError(err: Error): void;
}

export interface RequestBody {
  /** Starts (or restarts, for a retry) delivering the body to `target`. */
  open(target: BodyTarget): void;
  /** The target drained: deliver more. */
  resume(): void;
  /** Stops delivering to `target`. */
  detach(target: BodyTarget): void;
}

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** The downstream's scheme ("http" or "https"), for :scheme on HTTP/2. */
  readonly scheme: string;
  /** Lower-cased flat list, hop-by-hop headers already removed. */
  readonly headers: HeaderList;
  readonly body: RequestBody | undefined;
}

/** A pool of connections to one host, whatever the protocol. */
export interface ConnectionPool {
  /** Sends a request; the returned controller cancels it at any stage: queued, connecting or in flight. */
  dispatch(req: UpstreamRequest, handler: UpstreamHandler): UpstreamController;
  /** Closes idle connections now; busy ones close when their requests end. */
  close(): Promise<void>;
  /** Drops every connection at once. */
  destroy(): Promise<void>;
}

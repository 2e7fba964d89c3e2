// One try of a request against one upstream host: relays what the connection reports to the router, until abandoned.

import type { HeaderList } from '../http/header_list.js';
import type { UpstreamController, UpstreamError, UpstreamHandler } from '../upstream/upstream_request.js';

/** What an attempt reports to the request it belongs to (the Forwarder). */
export interface AttemptOwner {
  attemptStarted(): void;
  attemptResponse(statusCode: number, headers: HeaderList, reason: string): void;
  attemptData(controller: UpstreamController, chunk: Buffer): void;
  attemptWaiting(): void;
  attemptEnd(trailers: HeaderList | undefined): void;
  attemptError(err: UpstreamError): void;
}

/** One try against one host: the upstream handler. Once abandoned, everything it hears is ignored. */
export class Attempt implements UpstreamHandler {
  controller: UpstreamController | undefined;
  private dead = false;

  constructor(private readonly owner: AttemptOwner) {}

  /** Stops listening and cancels the upstream exchange (now, or as soon as it starts). */
  abandon(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.controller?.abort(new Error(reason));
  }

  onRequestStart(controller: UpstreamController): void {
    this.controller = controller;
    if (this.dead) controller.abort(new Error('attempt abandoned'));
    else this.owner.attemptStarted();
  }

  onResponseStart(_c: UpstreamController, statusCode: number, headers: HeaderList, reason: string): void {
    if (!this.dead) this.owner.attemptResponse(statusCode, headers, reason);
  }

  onResponseData(controller: UpstreamController, chunk: Buffer): void {
    if (!this.dead) this.owner.attemptData(controller, chunk);
  }

  onResponseWaiting(): void {
    if (!this.dead) this.owner.attemptWaiting();
  }

  onResponseEnd(_c: UpstreamController, trailers?: HeaderList): void {
    if (!this.dead) {
      this.dead = true;
      this.owner.attemptEnd(trailers);
    }
  }

  onResponseError(_controller: UpstreamController, err: UpstreamError): void {
    if (!this.dead) {
      this.dead = true;
      this.owner.attemptError(err);
    }
  }
}

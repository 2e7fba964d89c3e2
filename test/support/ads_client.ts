// Test support: a raw ADS client on a real grpc-js channel, sending requests by hand and queueing responses.

import * as grpc from '@grpc/grpc-js';
import { xdsProtos } from '../../src/xds/protos.js';

type Msg = Record<string, unknown>;

export class RawAdsClient<Req extends object, Res extends object> {
  private readonly queue: Res[] = [];
  private readonly waiters: { resolve: (r: Res) => void; reject: (e: Error) => void }[] = [];
  private ended: Error | undefined;
  /** The status the server ended the stream with, once it has. */
  readonly status: Promise<grpc.StatusObject>;

  private constructor(
    private readonly client: grpc.Client,
    private readonly call: grpc.ClientDuplexStream<Req, Res>,
  ) {
    call.on('data', (r: Res) => {
      const w = this.waiters.shift();
      if (w) w.resolve(r);
      else this.queue.push(r);
    });
    this.status = new Promise((resolve) => call.on('status', resolve));
    call.on('error', (err) => this.end(err));
    call.on('end', () => this.end(new Error('stream ended')));
  }

  static sotw(port: number): RawAdsClient<Msg, Msg> {
    const client = newClient(port);
    const method = (client as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>)
      .StreamAggregatedResources!;
    return new RawAdsClient<Msg, Msg>(client, method.call(client));
  }

  static delta(port: number): RawAdsClient<Msg, Msg> {
    const client = newClient(port);
    const method = (client as unknown as Record<string, () => grpc.ClientDuplexStream<Msg, Msg>>)
      .DeltaAggregatedResources!;
    return new RawAdsClient<Msg, Msg>(client, method.call(client));
  }

  send(req: Req): void {
    this.call.write(req);
  }

  /** The next response; rejects when the stream ends or none comes within `timeoutMs` (a hang guard). */
  next(timeoutMs = 10_000): Promise<Res> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`no ADS response within ${timeoutMs} ms`));
      }, timeoutMs);
      const w = {
        resolve: (r: Res) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(w);
    });
  }

  /** Responses received and not yet taken. */
  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }

  private end(err: Error): void {
    this.ended ??= err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
}

function newClient(port: number): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(xdsProtos().adsService, 'AggregatedDiscoveryService');
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

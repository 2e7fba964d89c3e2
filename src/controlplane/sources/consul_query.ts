// Consul's HTTP API as the Consul source reads it: GETs with a token, and blocking queries kept by Consul's rules.

import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { canonicalJson } from '../model/digest.js';
import { Backoff, type BackoffOptions, CancellableSleep } from './backoff.js';

/** Larger answers are refused: a catalog that big is a problem of its own. */
const MAX_BODY_BYTES = 64 * 1024 * 1024;

export interface ConsulResponse {
  readonly status: number;
  /** `X-Consul-Index`, when present and a number. */
  readonly index: number | undefined;
  readonly body: unknown;
}

/** An HTTP client for one Consul agent; keeps its connections (one per blocking query) until `close()`. */
export class ConsulHttp {
  private readonly base: URL;
  private readonly agent: HttpAgent;

  constructor(
    address: string,
    private readonly token: string | undefined,
  ) {
    this.base = new URL(address.includes('://') ? address : `http://${address}`);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:')
      throw new Error(`consul address ${address}: expected an http:// or https:// URL`);
    this.agent =
      this.base.protocol === 'https:'
        ? new HttpsAgent({ keepAlive: true })
        : new HttpAgent({ keepAlive: true });
  }

  get address(): string {
    return this.base.origin;
  }

  get(path: string, params: Readonly<Record<string, string>>, signal: AbortSignal): Promise<ConsulResponse> {
    const url = new URL(path, this.base);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers['x-consul-token'] = this.token;
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(url, { agent: this.agent, headers, signal }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error(`answer larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const raw = res.headers['x-consul-index'];
          const index = typeof raw === 'string' && /^[0-9]+$/.test(raw) ? Number(raw) : undefined;
          if (res.statusCode !== 200) {
            resolve({ status: res.statusCode ?? 0, index, body: text.trim().slice(0, 200) });
            return;
          }
          try {
            resolve({ status: 200, index, body: JSON.parse(text) });
          } catch {
            reject(new Error(`GET ${url.pathname}: the answer is not JSON`));
          }
        });
      });
      req.on('error', reject);
      req.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

export interface BlockingQueryOptions {
  /** How long Consul may hold a query open (its `wait`; Consul caps it at 10 minutes). */
  readonly waitSeconds: number;
  /** Least time between the starts of two queries (Consul asks clients to rate limit their loops). */
  readonly minIntervalMs: number;
  readonly backoff?: BackoffOptions;
}

export interface BlockingQueryHandlers {
  /** A new answer (the first, or one that differs from the last). */
  result(body: unknown): void;
  failed(err: Error): void;
  /** An answer arrived after failures. */
  healthy(): void;
}

/**
 * Follows one endpoint with blocking queries: `?index=X&wait=W`, X the last `X-Consul-Index`. Consul's rules for
 * clients are kept: an index lower than the last one resets X to 0 (a plain read next), an index below 1 counts
 * as 1, and queries are rate limited. After a failure (an error, a status other than 200) the next query waits a
 * back-off and is a plain read: an agent that restarted may number its state lower than before, and a blocking
 * query with a higher index would only return after `wait`.
 */
export class BlockingQuery {
  private readonly backoff: Backoff;
  private readonly sleeper = new CancellableSleep();
  private inflight: AbortController | undefined;
  private closed = false;
  private failing = false;
  private last: string | undefined;
  private running: Promise<void> | undefined;
  /** Set by resync(): the next query is a plain read, and a query held meanwhile is abandoned. */
  private reread = false;

  constructor(
    private readonly http: ConsulHttp,
    readonly path: string,
    private readonly params: Readonly<Record<string, string>>,
    private readonly options: BlockingQueryOptions,
    private readonly handlers: BlockingQueryHandlers,
  ) {
    this.backoff = new Backoff({ initialMs: 200, maxMs: 10_000, ...options.backoff });
  }

  start(): void {
    this.running ??= this.loop();
  }

  /**
   * Reads again at once without an index. For when the agent is known to have gone away and come back (another
   * query of the same agent failed): this query may be holding an index the restarted agent will not reach.
   */
  resync(): void {
    if (this.closed) return;
    this.reread = true;
    this.inflight?.abort();
    this.sleeper.cancel();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.sleeper.cancel();
    this.inflight?.abort();
    await this.running;
  }

  private async loop(): Promise<void> {
    let index = 0;
    let started = 0;
    while (!this.closed) {
      const gap = started + this.options.minIntervalMs - Date.now();
      if (gap > 0) await this.sleeper.sleep(gap);
      if (this.closed) return;
      started = Date.now();
      if (this.reread) {
        this.reread = false;
        index = 0;
      }
      const ac = new AbortController();
      this.inflight = ac;
      const blocking = index > 0;
      // Consul adds up to wait/16 to spread wake-ups; past that (and a margin) the agent is not answering.
      const limitMs = blocking ? this.options.waitSeconds * 1000 * (17 / 16) + 10_000 : 10_000;
      const timer = setTimeout(() => ac.abort(), limitMs);
      try {
        const params = blocking
          ? { ...this.params, index: String(index), wait: `${this.options.waitSeconds}s` }
          : this.params;
        const r = await this.http.get(this.path, params, ac.signal);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}${r.body ? `: ${String(r.body)}` : ''}`);
        const got = r.index ?? 0;
        index = got < index ? 0 : Math.max(1, got);
        if (this.failing) {
          this.failing = false;
          this.handlers.healthy();
        }
        this.backoff.reset();
        const content = canonicalJson(r.body);
        if (content !== this.last) {
          this.last = content;
          this.handlers.result(r.body);
        }
      } catch (err) {
        if (this.closed) return;
        if (this.reread) continue;
        this.failing = true;
        index = 0;
        this.handlers.failed(
          ac.signal.aborted ? new Error(`no answer within ${limitMs} ms`) : (err as Error),
        );
        // resync() ends this wait early: the agent is back.
        await this.sleeper.sleep(this.backoff.next());
      } finally {
        clearTimeout(timer);
        this.inflight = undefined;
      }
    }
  }
}

// Integration: retry_policy conditions, limits, timeouts, body buffering, retry circuit breaker and the keep-alive race.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { curl, rawExchange } from './support/clients.js';
import {
  bootstrap,
  endpoint,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { closedPort, startTcpServer, startUpstream, type Upstream } from './support/upstream.js';

const FILE_ACCESS_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

let proxy: RunningProxy;
let svc: Upstream;
let dir: string;
let logPath: string;
/** Responses the scripted upstream holds ("hang"); ended in after(). */
const hung: ServerResponse[] = [];
const closers: (() => Promise<void>)[] = [];

/**
 * The scripted upstream. A request carries `x-key` (one per test request) and `x-script`: comma-separated actions
 * for its 1st, 2nd ... attempt — a status code, "reset" (drop the connection) or "hang" (never answer); attempts
 * past the script get 200. Every response closes its connection, so a reset always hits a fresh connection (on a
 * reused one the proxy's keep-alive race retry would step in, which has its own tests below).
 */
function scripted(req: IncomingMessage, res: ServerResponse): void {
  const key = String(req.headers['x-key'] ?? '');
  const attempt = svc.requests.filter((r) => r.headers['x-key'] === key).length;
  const script = String(req.headers['x-script'] ?? '').split(',');
  const action = script[attempt - 1]?.trim() || '200';
  if (action === 'reset') {
    res.socket?.destroy();
    return;
  }
  if (action === 'hang') {
    hung.push(res);
    return;
  }
  if (script[0] === 'cb') return cbAction(attempt, res);
  res.setHeader('connection', 'close');
  res.setHeader('x-attempt', String(attempt));
  res.statusCode = Number(action);
  res.end(`attempt ${attempt} answered ${action}\n`);
}

/** Attempts made for a key, as the upstream saw them. */
function attempts(key: string): Upstream['requests'] {
  return svc.requests.filter((r) => r.headers['x-key'] === key);
}

function delta(name: string): () => number {
  const start = proxy.stat(name);
  return () => proxy.stat(name) - start;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let keySeq = 0;
function send(
  path: string,
  script: string,
  extra: string[] = [],
): { key: string; done: ReturnType<typeof curl> } {
  const key = `k${++keySeq}`;
  return {
    key,
    done: curl(['-H', `x-key: ${key}`, '-H', `x-script: ${script}`, ...extra, `${proxy.url()}${path}`]),
  };
}

// ---- the retry circuit breaker scenario: first attempts wait for each other, retried attempts wait for the test

const cbFirst: ServerResponse[] = [];
const cbRetried: ServerResponse[] = [];
let cbRelease = false;
function cbAction(attempt: number, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  const answer = (r: ServerResponse) => {
    r.statusCode = 503;
    r.end('busy\n');
  };
  if (attempt === 1) {
    cbFirst.push(res);
    if (cbFirst.length === 4) for (const r of cbFirst.splice(0)) answer(r);
  } else if (cbRelease) {
    answer(res);
  } else {
    cbRetried.push(res);
  }
}

// ---- raw TCP upstreams for the keep-alive race

interface RawUpstream {
  readonly port: number;
  /** Connections accepted and requests seen (all connections together). */
  connections: number;
  requests: number;
}

/**
 * Answers the first request of each connection with a complete keep-alive response; on the second request of a
 * connection it calls `second` (which closes the connection in some way).
 */
async function rawUpstream(second: (s: Socket) => void): Promise<RawUpstream> {
  const state = { port: 0, connections: 0, requests: 0 };
  const server = await startTcpServer((s) => {
    state.connections++;
    const conn = state.connections;
    let buffered = '';
    let seen = 0;
    s.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
        buffered = buffered.slice(end + 4);
        seen++;
        state.requests++;
        if (seen === 1) {
          const body = `connection ${conn}\n`;
          s.write(
            `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body}`,
          );
        } else {
          second(s);
          return;
        }
      }
    });
  });
  closers.push(() => server.close());
  state.port = server.port;
  return state;
}

let race: RawUpstream;
let raceRst: RawUpstream;
let partialBody: RawUpstream;
let partialHead: RawUpstream;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'remora-retries-'));
  logPath = join(dir, 'access.log');
  svc = await startUpstream('svc', (req, res) => scripted(req, res));
  // A refused endpoint on an address no test listens on, so no other server can take its port meanwhile.
  const dead = await closedPort();
  const pair = (name: string, deadPort: number): Json => ({
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [endpoint(deadPort, { address: '127.0.0.254' }), endpoint(svc.port)] }],
    },
  });
  race = await rawUpstream((s) => s.destroy());
  raceRst = await rawUpstream((s) => s.resetAndDestroy());
  partialBody = await rawUpstream((s) => {
    s.end('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nonly ten..');
  });
  partialHead = await rawUpstream((s) => {
    s.end('HTTP/1.1 200 OK\r\ncontent-ty');
  });
  const retry = (retryPolicy: Json, extra: Json = {}) => ({
    cluster: 'svc',
    retry_policy: retryPolicy,
    ...extra,
  });
  const listener = httpListener(
    'main',
    routes([
      { match: { prefix: '/5xx' }, route: retry({ retry_on: '5xx', num_retries: 3 }) },
      { match: { prefix: '/gateway' }, route: retry({ retry_on: 'gateway-error', num_retries: 3 }) },
      {
        match: { prefix: '/status' },
        route: retry({ retry_on: 'retriable-status-codes', retriable_status_codes: [409], num_retries: 3 }),
      },
      { match: { prefix: '/reset' }, route: retry({ retry_on: 'reset', num_retries: 3 }) },
      { match: { prefix: '/none' }, route: { cluster: 'svc' } },
      {
        match: { prefix: '/pertry' },
        route: retry({ retry_on: '5xx', num_retries: 2, per_try_timeout: '0.3s' }),
      },
      {
        match: { prefix: '/capped' },
        route: retry({ retry_on: '5xx', num_retries: 10, per_try_timeout: '0.2s' }, { timeout: '0.5s' }),
      },
      {
        match: { prefix: '/backoff' },
        route: retry({
          retry_on: '5xx',
          num_retries: 3,
          retry_back_off: { base_interval: '0.05s', max_interval: '0.1s' },
        }),
      },
      {
        match: { prefix: '/connect-none' },
        route: { cluster: 'pair-noretry' },
      },
      {
        match: { prefix: '/connect' },
        route: { cluster: 'pair', retry_policy: { retry_on: 'connect-failure', num_retries: 3 } },
      },
      {
        match: { prefix: '/cb' },
        route: {
          cluster: 'cb',
          retry_policy: {
            retry_on: '5xx',
            num_retries: 3,
            retry_back_off: { base_interval: '0.02s', max_interval: '0.05s' },
          },
        },
      },
      { match: { prefix: '/race-rst' }, route: { cluster: 'race-rst' } },
      { match: { prefix: '/race' }, route: { cluster: 'race' } },
      { match: { prefix: '/partial-body' }, route: { cluster: 'partial-body' } },
      {
        match: { prefix: '/retrying-partial-body' },
        route: { cluster: 'partial-body', retry_policy: { retry_on: '5xx,reset', num_retries: 3 } },
      },
      { match: { prefix: '/partial-head' }, route: { cluster: 'partial-head' } },
    ]),
    {
      access_log: [
        {
          name: 'envoy.access_loggers.file',
          typed_config: {
            '@type': FILE_ACCESS_LOG,
            path: logPath,
            log_format: {
              text_format_source: {
                inline_string: '%REQ(X-KEY)% %RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_HOST%\n',
              },
            },
          },
        },
      ],
    },
  );
  // Request bodies above 1 KiB cannot be kept for a retry.
  listener.per_connection_buffer_limit_bytes = 1024;
  proxy = await startProxy(
    bootstrap(
      [listener],
      [
        staticCluster('svc', [svc.port]),
        pair('pair', dead),
        pair('pair-noretry', dead),
        staticCluster('cb', [svc.port], { circuit_breakers: { thresholds: [{ max_retries: 1 }] } }),
        staticCluster('race', [race.port]),
        staticCluster('race-rst', [raceRst.port]),
        staticCluster('partial-body', [partialBody.port]),
        staticCluster('partial-head', [partialHead.port]),
      ],
    ),
  );
});

after(async () => {
  for (const r of [...hung.splice(0), ...cbFirst.splice(0), ...cbRetried.splice(0)]) r.destroy();
  await proxy.close();
  await svc.close();
  for (const c of closers) await c();
  rmSync(dir, { recursive: true, force: true });
});

describe('retry_on conditions', () => {
  test('5xx: an upstream failing twice with 503 succeeds on the third attempt', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const success = delta('cluster.svc.upstream_rq_retry_success');
    const { key, done } = send('/5xx', '503,503');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-attempt'], '3');
    assert.equal(attempts(key).length, 3);
    assert.equal(retries(), 2);
    assert.equal(success(), 1);
  });

  test('5xx: a connection reset by the upstream is retried too', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const { key, done } = send('/5xx', 'reset,200');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(attempts(key).length, 2);
    assert.equal(retries(), 1);
  });

  test('gateway-error retries 502, 503 and 504', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const { key, done } = send('/gateway', '502,503,504');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(attempts(key).length, 4);
    assert.equal(retries(), 3);
  });

  test('gateway-error does not retry 500', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const { key, done } = send('/gateway', '500');
    const r = await done;
    assert.equal(r.status, 500);
    assert.equal(r.body, 'attempt 1 answered 500\n');
    assert.equal(attempts(key).length, 1);
    assert.equal(retries(), 0);
  });

  test('retriable-status-codes retries the listed 409, and only the listed codes', async () => {
    const first = send('/status', '409,409');
    const r = await first.done;
    assert.equal(r.status, 200);
    assert.equal(attempts(first.key).length, 3);
    const other = send('/status', '503');
    const r2 = await other.done;
    assert.equal(r2.status, 503);
    assert.equal(attempts(other.key).length, 1);
  });

  test('reset: the upstream destroying the socket is retried', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const resets = delta('cluster.svc.upstream_rq_rx_reset');
    const { key, done } = send('/reset', 'reset,reset');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(attempts(key).length, 3);
    assert.equal(retries(), 2);
    assert.equal(resets(), 2);
  });

  test('reset: a 503 is not a reset and is passed through', async () => {
    const { key, done } = send('/reset', '503');
    assert.equal((await done).status, 503);
    assert.equal(attempts(key).length, 1);
  });

  test('without a retry policy a reset on a fresh connection becomes a 503', async () => {
    const { key, done } = send('/none', 'reset');
    const r = await done;
    assert.equal(r.status, 503);
    assert.match(r.body, /upstream connect error or disconnect\/reset before headers/);
    assert.equal(attempts(key).length, 1);
  });

  test('connect-failure: a request whose first host refuses connections is retried on the other endpoint', async () => {
    const retries = delta('cluster.pair.upstream_rq_retry');
    const refused = delta('cluster.pair.upstream_cx_connect_fail');
    for (let i = 0; i < 6; i++) {
      const { done } = send('/connect', '200');
      assert.equal((await done).status, 200);
    }
    // Round robin over [dead, live]: at least five of the six first attempts go to the dead endpoint.
    assert.ok(retries() >= 5, `retries ${retries()}`);
    assert.ok(refused() >= 5, `connect failures ${refused()}`);
    // The same cluster without a retry policy answers 503 UF whenever the dead endpoint is picked.
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send('/connect-none', '200').done).status);
    assert.deepEqual([...new Set(statuses)].sort(), [200, 503]);
  });
});

describe('limits and timeouts', () => {
  test('exhaustion: an always-503 upstream gives its own 503 after num_retries + 1 attempts, flagged URX', async () => {
    const exceeded = delta('cluster.svc.upstream_rq_retry_limit_exceeded');
    const retries = delta('cluster.svc.upstream_rq_retry');
    const { key, done } = send('/5xx', '503,503,503,503,503,503');
    const r = await done;
    assert.equal(r.status, 503);
    assert.equal(r.body, 'attempt 4 answered 503\n', 'the upstream response, not a local reply');
    assert.equal(attempts(key).length, 4);
    assert.equal(retries(), 3);
    assert.equal(exceeded(), 1);
    let line: string | undefined;
    await waitFor('the access log line', () => {
      let text = '';
      try {
        text = readFileSync(logPath, 'utf8');
      } catch {
        return false;
      }
      line = text.split('\n').find((l) => l.startsWith(`${key} `));
      return line !== undefined;
    });
    assert.match(line!, new RegExp(`^${key} 503 URX 127\\.0\\.0\\.1:${svc.port}$`));
  });

  test('per_try_timeout: a slow first attempt is abandoned and the fast second one answers', async () => {
    const perTry = delta('cluster.svc.upstream_rq_per_try_timeout');
    const retries = delta('cluster.svc.upstream_rq_retry');
    const { key, done } = send('/pertry', 'hang,200');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-attempt'], '2');
    assert.equal(attempts(key).length, 2);
    assert.equal(perTry(), 1);
    assert.equal(retries(), 1);
  });

  test('the route timeout caps all attempts together: 504', async () => {
    const timeouts = delta('cluster.svc.upstream_rq_timeout');
    const { key, done } = send('/capped', 'hang,hang,hang,hang,hang,hang,hang,hang,hang,hang,hang');
    const r = await done;
    assert.equal(r.status, 504);
    assert.match(r.body, /upstream request timeout/);
    assert.equal(timeouts(), 1);
    // 0.5 s of route timeout fits at most three 0.2 s tries, far fewer than num_retries allows.
    const n = attempts(key).length;
    assert.ok(n >= 2 && n <= 3, `${n} attempts`);
  });

  test('retry_back_off: retries wait out their back-off and complete', async () => {
    const { key, done } = send('/backoff', '503,503');
    const r = await done;
    assert.equal(r.status, 200);
    assert.equal(attempts(key).length, 3);
  });

  test('a small POST body is replayed in full on every attempt', async () => {
    const body = 'x'.repeat(600);
    const { key, done } = send('/5xx', '503,503', ['--data-binary', body]);
    const r = await done;
    assert.equal(r.status, 200);
    const seen = attempts(key);
    assert.equal(seen.length, 3);
    for (const a of seen) {
      assert.equal(a.method, 'POST');
      assert.equal(a.body, body);
    }
  });

  test('a POST body larger than the buffer limit is not retried', async () => {
    const retries = delta('cluster.svc.upstream_rq_retry');
    const body = 'y'.repeat(8 * 1024);
    const { key, done } = send('/5xx', '503', ['--data-binary', body]);
    const r = await done;
    assert.equal(r.status, 503);
    assert.equal(r.body, 'attempt 1 answered 503\n');
    const seen = attempts(key);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.body, body, 'the one attempt still gets the whole body');
    assert.equal(retries(), 0);
  });

  test('circuit breaker max_retries 1: concurrent failing requests overflow instead of retrying', async () => {
    const overflow = delta('cluster.cb.upstream_rq_retry_overflow');
    const retries = delta('cluster.cb.upstream_rq_retry');
    const all = [0, 1, 2, 3].map(() => send('/cb', 'cb'));
    // The four first attempts fail together; one request takes the only retry slot and holds it while its retried
    // attempt is outstanding, so the other three overflow.
    await waitFor('three retry overflows', () => overflow() >= 3);
    // The retry is outstanding until its attempt ends: through the back-off and while the upstream holds it.
    await waitFor('the retried attempt', () => cbRetried.length === 1);
    assert.equal(proxy.stat('cluster.cb.circuit_breakers.default.rq_retry_open'), 1);
    assert.equal(proxy.stat('cluster.cb.circuit_breakers.default.remaining_retries'), 0);
    cbRelease = true;
    for (const r of cbRetried.splice(0)) {
      r.statusCode = 503;
      r.end('busy\n');
    }
    const results = await Promise.all(all.map((a) => a.done));
    assert.deepEqual(
      results.map((r) => r.status),
      [503, 503, 503, 503],
    );
    assert.equal(overflow(), 3);
    const counts = all.map((a) => attempts(a.key).length).sort();
    assert.deepEqual(counts, [1, 1, 1, 4]);
    assert.equal(retries(), 3);
    assert.equal(proxy.stat('cluster.cb.circuit_breakers.default.rq_retry_open'), 0);
  });
});

describe('the keep-alive race', () => {
  for (const [name, path, upstream] of [
    ['closes (FIN)', '/race', () => race],
    ['resets (RST)', '/race-rst', () => raceRst],
  ] as const) {
    test(`an upstream that ${name} a reused connection on its next request: no 503, one retry on a fresh connection`, async () => {
      const u = upstream();
      const statuses: number[] = [];
      const bodies: string[] = [];
      for (let i = 0; i < 8; i++) {
        const r = await curl([`${proxy.url()}${path}`]);
        statuses.push(r.status);
        bodies.push(r.body);
      }
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 200, 200], bodies.join(''));
      // Every request after the first found its reused connection dying and went again on a new one.
      assert.equal(u.connections, 8);
      assert.equal(u.requests, 8 + 7);
      assert.equal(bodies.at(-1), 'connection 8\n');
    });
  }

  test('a connection closed after a partial response body is not retried: the client sees a truncated response', async () => {
    for (const path of ['/partial-body', '/retrying-partial-body']) {
      const requestsBefore = partialBody.requests;
      const first = await curl([`${proxy.url()}${path}`]);
      assert.equal(first.status, 200);
      const raw = await rawExchange(
        proxy.port(),
        `GET ${path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n`,
        5000,
      );
      assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(raw, /content-length: 100\r\n/i);
      const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
      assert.equal(body, 'only ten..', `${path}: the response is cut short`);
      assert.equal(partialBody.requests - requestsBefore, 2, `${path}: no second try of the cut response`);
    }
  });

  test('a connection closed after part of the response head is not retried either: 503', async () => {
    const first = await curl([`${proxy.url()}/partial-head`]);
    assert.equal(first.status, 200);
    const requestsBefore = partialHead.requests;
    const r = await curl([`${proxy.url()}/partial-head`]);
    // The upstream had begun to answer, so it saw the request: sending it again is not safe.
    assert.equal(partialHead.requests - requestsBefore, 1);
    assert.equal(r.status, 503);
  });
});

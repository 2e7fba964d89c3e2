// Child process: fixed-rate (open-loop) HTTP/1.1 load, as fortio -qps or wrk2 make it. Request n is due at
// n / rate seconds and goes on connection n mod C; a request whose connection is still busy waits for it, and
// that wait counts in its latency, so a stalled target cannot slow the load down and hide its own stall
// (coordinated omission). Prints `measure begin`, `measure end`, then one JSON summary line.
//
// Latency runs from the moment the scheduler dispatches a request (at or just after its due time: Node's timers
// have millisecond resolution) to the last byte of the response. Timer lateness is the generator's own and is not
// counted, but reported (`dispatchLagP99Us`) so that a busy load core shows up.

import { connect, type Socket } from 'node:net';
import { createHistogram } from 'node:perf_hooks';

export interface RateLoadArgs {
  port: number;
  path: string;
  /** Requests per second over all connections. */
  rate: number;
  connections: number;
  /** Requests before the measured window, on the same connections (not counted). */
  warmupS: number;
  durationS: number;
}

export interface RateLoadSummary {
  /** Requests dispatched in the measured window. */
  sent: number;
  /** Of those, answered 2xx. */
  completed: number;
  errors: number;
  firstError?: string;
  seconds: number;
  p50Us?: number;
  p90Us?: number;
  p99Us?: number;
  p999Us?: number;
  maxUs?: number;
  /** Requests of the window that found their connection busy and waited for it. */
  queued: number;
  /** 99th percentile of how late the scheduler dispatched a request after its due time. */
  dispatchLagP99Us: number;
}

const args = JSON.parse(process.argv[2]!) as RateLoadArgs;
const request = Buffer.from(`GET ${args.path} HTTP/1.1\r\nHost: bench\r\nUser-Agent: remora-bench\r\n\r\n`);
const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection; requests go one at a time, the ones due meanwhile wait in `waiting`. */
interface Conn {
  socket: Socket;
  /** Dispatch time (ns) of the request on the wire, or undefined when idle. */
  inFlight: { at: bigint; counted: boolean } | undefined;
  waiting: { at: bigint; counted: boolean }[];
  buf: Buffer;
}

const latency = createHistogram();
const lag = createHistogram();
let sent = 0;
let completed = 0;
let errors = 0;
let queued = 0;
let firstError: string | undefined;

function fail(message: string, counted: boolean): void {
  if (counted) errors++;
  firstError ??= message;
}

function open(): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: args.port, host: '127.0.0.1', noDelay: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function send(c: Conn, req: { at: bigint; counted: boolean }): void {
  c.inFlight = req;
  c.socket.write(request);
}

/** Parses as much of a response as `c.buf` holds; true when one was complete (and removed). */
function takeResponse(c: Conn): boolean {
  const end = c.buf.indexOf(HEADER_END);
  if (end < 0) return false;
  const head = c.buf.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (length === null) throw new Error(`response without content-length: ${head.split('\r\n')[0]}`);
  const total = end + 4 + Number(length[1]);
  if (c.buf.length < total) return false;
  const status = Number(head.slice(9, 12));
  c.buf = c.buf.subarray(total);
  const req = c.inFlight!;
  c.inFlight = undefined;
  if (status >= 200 && status < 300) {
    if (req.counted) {
      completed++;
      latency.record(Math.max(1, Number(process.hrtime.bigint() - req.at)));
    }
  } else {
    fail(`status ${status}`, req.counted);
  }
  return true;
}

async function attach(c: Conn): Promise<void> {
  c.socket.on('data', (chunk: Buffer) => {
    c.buf = c.buf.length === 0 ? chunk : Buffer.concat([c.buf, chunk]);
    try {
      while (c.inFlight !== undefined && takeResponse(c)) {
        const next = c.waiting.shift();
        if (next !== undefined) send(c, next);
      }
    } catch (err) {
      fail((err as Error).message, c.inFlight?.counted ?? false);
      c.inFlight = undefined;
      c.socket.destroy();
    }
  });
  c.socket.once('close', () => void reopen(c));
  c.socket.on('error', () => {});
}

/** A connection the target closed: its request fails, the ones waiting go on a new connection. */
async function reopen(c: Conn): Promise<void> {
  if (over) return;
  if (c.inFlight !== undefined) fail('connection closed before the response', c.inFlight.counted);
  c.inFlight = undefined;
  c.buf = Buffer.alloc(0);
  try {
    c.socket = await open();
  } catch (err) {
    for (const w of c.waiting.splice(0)) fail((err as Error).message, w.counted);
    setTimeout(() => void reopen(c), 100);
    return;
  }
  await attach(c);
  const next = c.waiting.shift();
  if (next !== undefined) send(c, next);
}

let over = false;
const conns: Conn[] = [];
for (let i = 0; i < args.connections; i++) {
  const c: Conn = { socket: await open(), inFlight: undefined, waiting: [], buf: Buffer.alloc(0) };
  await attach(c);
  conns.push(c);
}

const intervalNs = 1e9 / args.rate;
const start = process.hrtime.bigint();
const beginNs = args.warmupS * 1e9;
const endNs = beginNs + args.durationS * 1e9;
let n = 0;
let begun = false;

function tick(): void {
  const now = process.hrtime.bigint();
  const elapsed = Number(now - start);
  if (!begun && elapsed >= beginNs) {
    begun = true;
    process.stdout.write('measure begin\n');
  }
  // Every request due by now goes out now (several when the timer fired late).
  while (n * intervalNs <= elapsed) {
    const due = n * intervalNs;
    if (due >= endNs) return void drain();
    const counted = due >= beginNs;
    if (counted) {
      sent++;
      lag.record(Math.max(1, Math.round(elapsed - due)));
    }
    const c = conns[n % conns.length]!;
    const req = { at: now, counted };
    if (c.inFlight === undefined) send(c, req);
    else {
      if (counted) queued++;
      c.waiting.push(req);
    }
    n++;
  }
  const waitMs = (n * intervalNs - elapsed) / 1e6;
  setTimeout(tick, Math.max(0, Math.floor(waitMs)));
}

/** After the last due time: waits for what is in flight (at most 5 s), then reports. */
function drain(): void {
  process.stdout.write('measure end\n');
  const deadline = Date.now() + 5000;
  const poll = (): void => {
    const busy = conns.some((c) => c.inFlight !== undefined || c.waiting.length > 0);
    if (busy && Date.now() < deadline) return void setTimeout(poll, 5);
    over = true;
    for (const c of conns) {
      if (c.inFlight !== undefined) fail('no response within 5 s of the end', c.inFlight.counted);
      for (const w of c.waiting) fail('not sent within 5 s of the end', w.counted);
      c.socket.destroy();
    }
    report();
  };
  poll();
}

function report(): void {
  const pct = (p: number): number | undefined =>
    completed > 0 ? Math.round(latency.percentile(p) / 1000) : undefined;
  const summary: RateLoadSummary = {
    sent,
    completed,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    seconds: args.durationS,
    p50Us: pct(50),
    p90Us: pct(90),
    p99Us: pct(99),
    p999Us: pct(99.9),
    maxUs: completed > 0 ? Math.round(latency.max / 1000) : undefined,
    queued,
    dispatchLagP99Us: sent > 0 ? Math.round(lag.percentile(99) / 1000) : 0,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(0);
}

tick();

// Unit tests: the native HTTP/2 session against a raw-frame client — malformed requests and frames, flow control,
// stream idle timeout — with a stub connection manager that answers each request itself.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, test } from 'node:test';
import { until } from '../../../../../test/support/child.js';
import {
  FRAME,
  frame,
  H2_PREFACE,
  headersFrame,
  RawH2Connection,
  settingsFrame,
} from '../../../../../test/support/h2.js';
import type { Http2Options } from '../../../../config/model.js';
import { StatsStore } from '../../../observe/stats.js';
import { HTTP2_CODEC_STATS } from '../../stats.js';
import type { DownstreamStream } from '../../stream.js';
import { ErrorCode, rstStreamFrame, windowUpdateFrame } from './frames.js';
import { NativeH2Session } from './session.js';

const http2: Http2Options = {
  maxConcurrentStreams: 100,
  initialStreamWindowSize: 65_535,
  initialConnectionWindowSize: 65_535,
  hpackTableSize: 4096,
  maxOutboundFrames: 10_000,
  maxOutboundControlFrames: 1000,
  maxConsecutiveInboundFramesWithEmptyPayload: 1,
  maxInboundPriorityFramesPerStream: 100,
  maxInboundWindowUpdateFramesPerDataFrameSent: 10,
};

let server: Server;
let port: number;
const sessions = new Set<NativeH2Session>();
const clients = new Set<RawH2Connection>();
const store = new StatsStore();
const stats = store.scope(undefined, HTTP2_CODEC_STATS);
let idleTimeouts = 0;
/** Streams the stub manager received, by path. */
const seen = new Map<string, DownstreamStream>();

function answer(s: DownstreamStream): void {
  seen.set(s.url, s);
  if (s.url.startsWith('/hold')) return;
  if (s.url === '/echo') {
    const chunks: Buffer[] = [];
    s.setBodySink({
      onData: (c) => chunks.push(Buffer.from(c)),
      onEnd: () => {
        s.writeHead(200, ['content-type', 'text/plain']);
        s.end(Buffer.concat(chunks));
      },
      onError: () => undefined,
    });
    return;
  }
  if (s.url.startsWith('/big')) {
    s.writeHead(200, []);
    s.end(Buffer.alloc(100_000, 0x62), ['x-done', 'yes']);
    return;
  }
  s.writeHead(200, ['x-path', s.url]);
  s.end('ok');
}

before(async () => {
  server = createServer((socket) => {
    const session = new NativeH2Session(
      socket,
      {
        remoteIp: '127.0.0.1',
        remoteAddress: '',
        localAddress: '',
        originalDestination: undefined,
        secure: false,
      },
      {
        http2,
        maxHeaderBytes: 8192,
        maxHeaders: 100,
        idleTimeoutMs: 0,
        drainTimeoutMs: 1000,
        streamIdleTimeoutMs: 300,
      },
      stats,
      {
        onStream: answer,
        onIdleTimeout: () => undefined,
        onStreamIdleTimeout: () => idleTimeouts++,
        onPrematureResets: () => undefined,
        onProtocolError: () => undefined,
      },
    );
    sessions.add(session);
    socket.once('close', () => sessions.delete(session));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  for (const c of clients) c.destroy();
  for (const s of sessions) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

async function open(): Promise<RawH2Connection> {
  const c = await RawH2Connection.open(port);
  clients.add(c);
  c.write(Buffer.concat([H2_PREFACE, settingsFrame(), settingsFrame([], true)]));
  return c;
}

function request(id: number, path: string, endStream = true, extra: [string, string][] = []): Buffer {
  return headersFrame(
    id,
    [
      [':method', endStream ? 'GET' : 'POST'],
      [':scheme', 'http'],
      [':authority', 'unit.test'],
      [':path', path],
      ...extra,
    ],
    endStream,
  );
}

const headersOn = (c: RawH2Connection, id: number) =>
  c.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === id);

test('the session sends SETTINGS first, answers a request, and says nothing else', async () => {
  const c = await open();
  c.write(request(1, '/a'));
  await until('the response', () =>
    c.frames.some((f) => f.type === FRAME.DATA && f.streamId === 1 && f.flags & 1),
  );
  assert.equal(c.frames[0]!.type, FRAME.SETTINGS);
  assert.equal(c.resets().size, 0);
  assert.equal(c.goaway, undefined);
});

test('malformed requests get RST_STREAM PROTOCOL_ERROR; the connection goes on', async () => {
  const c = await open();
  const bad: [string, [string, string][]][] = [
    [
      'uppercase',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/x'],
        ['X-Up', '1'],
      ],
    ],
    [
      'no path',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
      ],
    ],
    [
      'unknown pseudo',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/x'],
        [':foo', '1'],
      ],
    ],
    [
      'duplicate pseudo',
      [
        [':method', 'GET'],
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/x'],
      ],
    ],
    [
      'pseudo after regular',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        ['a', 'b'],
        [':path', '/x'],
      ],
    ],
    [
      'connection header',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/x'],
        ['connection', 'close'],
      ],
    ],
    [
      'te gzip',
      [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/x'],
        ['te', 'gzip'],
      ],
    ],
  ];
  let id = 1;
  for (const [, fields] of bad) {
    c.write(headersFrame(id, fields, true));
    id += 2;
  }
  await until('a reset for each', () => c.resets().size === bad.length);
  for (const code of c.resets().values()) assert.equal(code, ErrorCode.PROTOCOL_ERROR);
  c.write(request(id, '/after'));
  await until('the next request answered', () => headersOn(c, id));
  assert.equal(c.goaway, undefined);
});

test('a body longer than content-length is a stream error', async () => {
  const c = await open();
  c.write(request(1, '/echo', false, [['content-length', '2']]));
  c.write(frame(FRAME.DATA, 1, 1, Buffer.from('abc')));
  await until('the reset', () => c.resets().has(1));
  assert.equal(c.resets().get(1), ErrorCode.PROTOCOL_ERROR);
});

test('request body in, response body out past the 64 KiB windows once the client opens them', async () => {
  const c = await open();
  c.write(request(1, '/big'));
  await until(
    'the first window of DATA',
    () => c.frames.filter((f) => f.type === FRAME.DATA).reduce((n, f) => n + f.payload.length, 0) === 65_535,
  );
  c.write(Buffer.concat([windowUpdateFrame(0, 100_000), windowUpdateFrame(1, 100_000)]));
  await until('the trailers', () =>
    c.frames.some((f) => f.type === FRAME.HEADERS && f.streamId === 1 && f.flags & 1),
  );
  const data = c.frames.filter((f) => f.type === FRAME.DATA).reduce((n, f) => n + f.payload.length, 0);
  assert.equal(data, 100_000);

  const body = Buffer.alloc(30_000, 0x63);
  c.write(request(3, '/echo', false));
  c.write(frame(FRAME.DATA, 0, 3, body.subarray(0, 16_000)));
  c.write(frame(FRAME.DATA, 1, 3, body.subarray(16_000)));
  await until('the echo', () =>
    c.frames.some((f) => f.type === FRAME.DATA && f.streamId === 3 && f.flags & 1),
  );
  const echoed = c.frames
    .filter((f) => f.type === FRAME.DATA && f.streamId === 3)
    .reduce((n, f) => n + f.payload.length, 0);
  assert.equal(echoed, 30_000);
});

test('connection errors: DATA on stream 0, WINDOW_UPDATE of 0, a bad preface', async () => {
  for (const [what, bytes, code] of [
    ['DATA on 0', frame(FRAME.DATA, 0, 0, Buffer.from('x')), ErrorCode.PROTOCOL_ERROR],
    ['WINDOW_UPDATE 0', windowUpdateFrame(0, 0), ErrorCode.PROTOCOL_ERROR],
    ['RST on idle', rstStreamFrame(99, 0), ErrorCode.PROTOCOL_ERROR],
    ['PUSH_PROMISE', frame(5, 4, 1, Buffer.alloc(4)), ErrorCode.PROTOCOL_ERROR],
    ['oversized', frame(FRAME.DATA, 0, 1, Buffer.alloc(20_000)), ErrorCode.FRAME_SIZE_ERROR],
  ] as const) {
    const c = await open();
    c.write(bytes);
    await until(`GOAWAY for ${what}`, () => c.goaway !== undefined);
    assert.equal(c.goaway!.errorCode, code, what);
    await until(`close after ${what}`, () => c.closed);
  }
  const raw = await RawH2Connection.open(port);
  clients.add(raw);
  raw.write(Buffer.from('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
  await until('the bad preface refused', () => raw.closed);
});

test('stream_idle_timeout: 408 for a request waiting for its response', async () => {
  const c = await open();
  const before = idleTimeouts;
  c.write(request(1, '/hold-idle'));
  await until('the 408', () => headersOn(c, 1));
  assert.equal(idleTimeouts - before, 1);
  assert.equal(seen.get('/hold-idle')!.timedOut, true);
});

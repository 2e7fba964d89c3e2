// Unit tests: the HTTP/2 frame reader and writers, and every malformed frame they must refuse.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ErrorCode,
  Flag,
  FrameReader,
  frame,
  goawayFrame,
  H2ConnectionError,
  headerBlockFrames,
  rstStreamFrame,
  settingsFrame,
  Type,
  unpad,
  windowUpdateFrame,
} from './frames.js';

interface Seen {
  type: number;
  flags: number;
  id: number;
  payload: string;
}

function reader(max = 16_384): { r: FrameReader; seen: Seen[] } {
  const seen: Seen[] = [];
  const r = new FrameReader(max, (type, flags, id, payload) =>
    seen.push({ type, flags, id, payload: payload.toString('latin1') }),
  );
  return { r, seen };
}

test('whole frames in one read are handed out in order, as views', () => {
  const { r, seen } = reader();
  r.feed(
    Buffer.concat([
      frame(Type.DATA, Flag.END_STREAM, 1, Buffer.from('abc')),
      frame(Type.PING, 0, 0, Buffer.alloc(8, 1)),
    ]),
  );
  assert.deepEqual(
    seen.map((s) => [s.type, s.flags, s.id, s.payload.length]),
    [
      [Type.DATA, 1, 1, 3],
      [Type.PING, 0, 0, 8],
    ],
  );
  assert.equal(r.buffered, 0);
});

test('a frame split at every byte boundary is put back together', () => {
  const bytes = Buffer.concat([
    frame(Type.HEADERS, Flag.END_HEADERS, 3, Buffer.from('hello')),
    windowUpdateFrame(0, 10),
  ]);
  for (let cut = 1; cut < bytes.length; cut++) {
    const { r, seen } = reader();
    r.feed(bytes.subarray(0, cut));
    r.feed(bytes.subarray(cut));
    assert.equal(seen.length, 2, `cut at ${cut}`);
    assert.equal(seen[0]!.payload, 'hello');
    assert.equal(seen[1]!.type, Type.WINDOW_UPDATE);
  }
  const { r, seen } = reader();
  for (const b of bytes) r.feed(Buffer.from([b]));
  assert.equal(seen.length, 2);
});

test('the reserved bit of the stream id is ignored', () => {
  const { r, seen } = reader();
  const f = frame(Type.DATA, 0, 5, Buffer.from('x'));
  f[5]! |= 0x80;
  r.feed(f);
  assert.equal(seen[0]!.id, 5);
});

test('a frame over SETTINGS_MAX_FRAME_SIZE is a FRAME_SIZE_ERROR, known from its header alone', () => {
  const { r } = reader(16_384);
  const head = frame(Type.DATA, 0, 1, Buffer.alloc(16_385)).subarray(0, 9);
  assert.throws(
    () => r.feed(head),
    (e: unknown) => e instanceof H2ConnectionError && e.code === ErrorCode.FRAME_SIZE_ERROR,
  );
});

test('unpad strips padding and HEADERS priority fields; bad padding is a PROTOCOL_ERROR', () => {
  const padded = Buffer.from([3, 0x61, 0x62, 0, 0, 0]);
  assert.deepEqual(unpad(Type.DATA, Flag.PADDED, padded), [1, 3]);
  const prio = Buffer.from([2, 0, 0, 0, 1, 16, 0x61, 0, 0]);
  assert.deepEqual(unpad(Type.HEADERS, Flag.PADDED | Flag.PRIORITY, prio), [6, 7]);
  assert.deepEqual(unpad(Type.DATA, 0, Buffer.from('abc')), [0, 3]);
  assert.throws(
    () => unpad(Type.DATA, Flag.PADDED, Buffer.from([5, 1, 2])),
    (e: unknown) => e instanceof H2ConnectionError && e.code === ErrorCode.PROTOCOL_ERROR,
  );
  assert.throws(
    () => unpad(Type.DATA, Flag.PADDED, Buffer.alloc(0)),
    (e: unknown) => e instanceof H2ConnectionError && e.code === ErrorCode.FRAME_SIZE_ERROR,
  );
  assert.throws(() => unpad(Type.HEADERS, Flag.PRIORITY, Buffer.from([0, 0, 0])), H2ConnectionError);
});

test('writers: SETTINGS, RST_STREAM, GOAWAY and WINDOW_UPDATE round-trip through the reader', () => {
  const { r, seen } = reader();
  r.feed(
    Buffer.concat([
      settingsFrame([
        [3, 100],
        [4, 65_535],
      ]),
      rstStreamFrame(7, ErrorCode.CANCEL),
      goawayFrame(9, ErrorCode.ENHANCE_YOUR_CALM),
      windowUpdateFrame(1, 0x7fff_ffff),
    ]),
  );
  assert.deepEqual(
    seen.map((s) => [s.type, s.id, s.payload.length]),
    [
      [Type.SETTINGS, 0, 12],
      [Type.RST_STREAM, 7, 4],
      [Type.GOAWAY, 0, 8],
      [Type.WINDOW_UPDATE, 1, 4],
    ],
  );
  const p = (i: number) => Buffer.from(seen[i]!.payload, 'latin1');
  assert.equal(p(0).readUInt32BE(2), 100);
  assert.equal(p(1).readUInt32BE(0), ErrorCode.CANCEL);
  assert.equal(p(2).readUInt32BE(0), 9);
  assert.equal(p(2).readUInt32BE(4), ErrorCode.ENHANCE_YOUR_CALM);
  assert.equal(p(3).readUInt32BE(0), 0x7fff_ffff);
});

test('a header block larger than the peer frame size goes out as HEADERS + CONTINUATION', () => {
  const block = Buffer.alloc(40_000, 0x61);
  const { r, seen } = reader();
  r.feed(headerBlockFrames(3, block, true, 16_384));
  assert.deepEqual(
    seen.map((s) => [s.type, s.flags, s.payload.length]),
    [
      [Type.HEADERS, Flag.END_STREAM, 16_384],
      [Type.CONTINUATION, 0, 16_384],
      [Type.CONTINUATION, Flag.END_HEADERS, 40_000 - 2 * 16_384],
    ],
  );
  const small = reader();
  small.r.feed(headerBlockFrames(1, Buffer.from('ab'), false, 16_384));
  assert.deepEqual(small.seen, [{ type: Type.HEADERS, flags: Flag.END_HEADERS, id: 1, payload: 'ab' }]);
});

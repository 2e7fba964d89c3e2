import assert from 'node:assert/strict';
import { once } from 'node:events';
import http2 from 'node:http2';
import net from 'node:net';
import { after, test } from 'node:test';
import { HpackDecoder, HpackEncoder } from './hpack.js';

// A minimal HTTP/2 server over a raw socket: our decoder reads node's request HEADERS, our encoder writes the
// response HEADERS that node's client (nghttp2) then decodes.

const PREFACE_LENGTH = 24;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

function startServer(respond: (request: string[]) => [number, string[]]): {
  server: net.Server;
  received: string[][];
} {
  const received: string[][] = [];
  const server = net.createServer((socket) => {
    const decoder = new HpackDecoder();
    const encoder = new HpackEncoder();
    let buf = Buffer.alloc(0);
    let prefaceSeen = false;
    let block: Buffer[] = [];
    let blockStream = 0;
    socket.write(frame(SETTINGS, 0, 0, Buffer.alloc(0)));
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!prefaceSeen) {
        if (buf.length < PREFACE_LENGTH) return;
        buf = buf.subarray(PREFACE_LENGTH);
        prefaceSeen = true;
      }
      while (buf.length >= 9) {
        const length = buf.readUIntBE(0, 3);
        if (buf.length < 9 + length) return;
        const type = buf[3]!;
        const flags = buf[4]!;
        const stream = buf.readUInt32BE(5) & 0x7fffffff;
        let payload = buf.subarray(9, 9 + length);
        buf = buf.subarray(9 + length);
        if (type === SETTINGS && (flags & 1) === 0) socket.write(frame(SETTINGS, 1, 0, Buffer.alloc(0)));
        if (type !== HEADERS && type !== CONTINUATION) continue;
        if (type === HEADERS) {
          if (flags & PADDED) payload = payload.subarray(1, payload.length - payload[0]!);
          if (flags & PRIORITY) payload = payload.subarray(5);
          block = [];
          blockStream = stream;
        }
        block.push(payload);
        if ((flags & END_HEADERS) === 0) continue;
        const headers: string[] = [];
        decoder.decode(Buffer.concat(block), headers);
        received.push(headers);
        const [status, response] = respond(headers);
        socket.write(
          frame(HEADERS, END_HEADERS | END_STREAM, blockStream, encoder.encodeResponse(status, response)),
        );
      }
    });
    socket.on('error', () => {});
  });
  return { server, received };
}

const toClose: { close(): void }[] = [];
after(() => {
  for (const c of toClose) c.close();
});

test('decodes the header blocks of node http2 client requests and node decodes our responses', async () => {
  const responses: [number, string[]][] = [
    [200, ['content-type', 'application/grpc', 'server', 'remora', 'x-trace', 'abc', 'x-bytes', 'café ÿ']],
    [
      503,
      ['content-type', 'text/plain', 'server', 'remora', 'retry-after', '3', 'set-cookie', 'a=b; Path=/'],
    ],
    [
      204,
      ['server', 'remora', 'x-long', 'z'.repeat(300), 'vary', 'accept-encoding', 'date', 'Tue, 01 Jan 2030'],
    ],
  ];
  let n = 0;
  const { server, received } = startServer(() => responses[n++ % responses.length]!);
  toClose.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const client = http2.connect(`http://127.0.0.1:${port}`);
  toClose.push(client);
  client.on('error', () => {});

  const requests: http2.OutgoingHttpHeaders[] = [];
  for (let i = 0; i < 9; i++) {
    requests.push({
      ':method': i % 3 === 0 ? 'POST' : 'GET',
      ':path': `/svc/method/${i % 2}?q=${'x'.repeat(i * 40)}`,
      'content-type': 'application/grpc',
      'user-agent': 'grpc-node-js/1.14.7',
      te: 'trailers',
      cookie: `session=${i}; theme=dark`,
      authorization: 'Bearer abcdef',
      'x-custom': `value-${i % 3}`,
      'x-bytes': 'café ÿ',
    });
  }
  for (const [i, headers] of requests.entries()) {
    const req = client.request(headers, { endStream: true });
    // The third argument is node's raw list [name, value, ...], in wire order.
    const [, , raw] = (await once(req, 'response')) as [http2.IncomingHttpHeaders, number, string[]];
    req.resume();
    await once(req, 'close');
    const [status, expected] = responses[i % responses.length]!;
    assert.deepEqual(raw, [':status', String(status), ...expected]);

    // What node sent (it orders pseudo-headers first, so compare as sets of pairs).
    const got = received[i]!;
    const sent: string[] = [];
    for (const [name, value] of Object.entries(headers)) sent.push(name, String(value));
    assert.deepEqual(
      pairsSorted(got),
      pairsSorted([...sent, ':scheme', 'http', ':authority', `127.0.0.1:${port}`]),
    );
  }
});

function pairsSorted(list: string[]): string[] {
  const pairs: string[] = [];
  for (let i = 0; i < list.length; i += 2) pairs.push(`${list[i]}: ${list[i + 1]}`);
  return pairs.sort();
}

// Unit: the ClientHello parser on real ClientHellos (Node's TLS client, openssl s_client), refragmented, truncated and hostile.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import { before, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { ClientHelloParser, type ClientHelloResult, inspectClientHello } from './tls_inspector.js';

/** Starts a plain TCP server, lets `client(port)` open a TLS connection to it, and returns the first TLS record. */
async function captureClientHello(client: (port: number) => { destroy(): void }): Promise<Buffer> {
  let close: () => void = () => undefined;
  const bytes = await new Promise<Buffer>((resolve, reject) => {
    const server = createServer((s: Socket) => {
      let buf = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          resolve(buf.subarray(0, 5 + buf.readUInt16BE(3)));
          s.destroy();
        }
      });
      s.on('error', () => undefined);
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const c = client(port);
      close = () => {
        c.destroy();
        server.close();
      };
    });
    server.on('error', reject);
  });
  close();
  return bytes;
}

function nodeHello(opts: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  return captureClientHello((port) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    s.on('error', () => undefined);
    return s;
  });
}

function opensslHello(args: string[]): Promise<Buffer> {
  return captureClientHello((port) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], {
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    p.on('error', () => undefined);
    return { destroy: () => p.kill() };
  });
}

let withSniAndAlpn: Buffer;
let withoutSni: Buffer;
let fromOpenssl: Buffer;

before(async () => {
  withSniAndAlpn = await nodeHello({ servername: 'A.Example.Test', ALPNProtocols: ['h2', 'http/1.1'] });
  withoutSni = await nodeHello({});
  fromOpenssl = await opensslHello(['-servername', 'b.example.test', '-alpn', 'http/1.1']);
});

const tls = (serverName: string, alpn: string[]): ClientHelloResult => ({ kind: 'tls', serverName, alpn });

/** The handshake message (without record headers) of a one-record ClientHello. */
function handshakeOf(record: Buffer): Buffer {
  return record.subarray(5);
}

/** The handshake message split over records of at most `size` bytes each. */
function records(handshake: Buffer, size: number, version = 0x0301): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += size) {
    const part = handshake.subarray(i, i + size);
    const h = Buffer.alloc(5);
    h[0] = 0x16;
    h.writeUInt16BE(version, 1);
    h.writeUInt16BE(part.length, 3);
    out.push(h, part);
  }
  return Buffer.concat(out);
}

test('a ClientHello from Node: SNI lower-cased, ALPN in the client order', () => {
  assert.deepEqual(inspectClientHello(withSniAndAlpn), tls('a.example.test', ['h2', 'http/1.1']));
});

test('a ClientHello without SNI or ALPN (Node connecting to an IP address)', () => {
  assert.deepEqual(inspectClientHello(withoutSni), tls('', []));
});

test('a ClientHello from openssl s_client', () => {
  assert.deepEqual(inspectClientHello(fromOpenssl), tls('b.example.test', ['http/1.1']));
});

test('one byte at a time: need_more until the last byte, then the same verdict', () => {
  const p = new ClientHelloParser();
  for (let i = 0; i < withSniAndAlpn.length - 1; i++) {
    assert.equal(p.push(withSniAndAlpn.subarray(i, i + 1)).kind, 'need_more', `byte ${i}`);
  }
  assert.deepEqual(p.push(withSniAndAlpn.subarray(-1)), tls('a.example.test', ['h2', 'http/1.1']));
});

test('a ClientHello split over several TLS records and reads', () => {
  for (const size of [1, 7, 100, 333]) {
    const bytes = records(handshakeOf(fromOpenssl), size);
    assert.deepEqual(inspectClientHello(bytes), tls('b.example.test', ['http/1.1']), `records of ${size}`);
    const p = new ClientHelloParser();
    let r: ClientHelloResult = { kind: 'need_more' };
    for (let i = 0; i < bytes.length; i += 13) r = p.push(bytes.subarray(i, i + 13));
    assert.deepEqual(r, tls('b.example.test', ['http/1.1']), `records of ${size} in reads of 13`);
  }
});

test('bytes after the ClientHello (early data) do not change the verdict', () => {
  const bytes = Buffer.concat([withSniAndAlpn, Buffer.from([0x17, 3, 3, 0, 5, 1, 2, 3, 4, 5])]);
  assert.deepEqual(inspectClientHello(bytes), tls('a.example.test', ['h2', 'http/1.1']));
});

test('every truncation of a ClientHello needs more, and none throws', () => {
  for (let n = 0; n < withSniAndAlpn.length; n++) {
    assert.equal(inspectClientHello(withSniAndAlpn.subarray(0, n)).kind, 'need_more', `first ${n} bytes`);
  }
});

test('plaintext is not TLS from its first byte', () => {
  for (const text of [
    'GET / HTTP/1.1\r\n',
    'P',
    'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
    'SSH-2.0-OpenSSH\r\n',
    '\x00',
  ]) {
    assert.equal(inspectClientHello(Buffer.from(text, 'latin1')).kind, 'not_tls', JSON.stringify(text));
  }
});

test('a handshake record that is not a ClientHello, or bad record headers, are not TLS', () => {
  const hs = Buffer.from(handshakeOf(withoutSni));
  hs[0] = 2; // ServerHello
  assert.equal(inspectClientHello(records(hs, 16384)).kind, 'not_tls');
  assert.equal(inspectClientHello(Buffer.from([0x16, 0x02])).kind, 'not_tls', 'record version 2.x');
  assert.equal(inspectClientHello(Buffer.from([0x16, 3, 1, 0, 0])).kind, 'not_tls', 'empty record');
  assert.equal(inspectClientHello(Buffer.from([0x16, 3, 1, 0x40, 1])).kind, 'not_tls', 'record over 2^14');
  // A record of another type in the middle of the ClientHello.
  const split = records(handshakeOf(withoutSni), 50);
  const mixed = Buffer.concat([
    split.subarray(0, 55),
    Buffer.from([0x17, 3, 3, 0, 1, 0]),
    split.subarray(55),
  ]);
  assert.equal(inspectClientHello(mixed).kind, 'not_tls');
});

/** A ClientHello body with the given extensions (type, data), wrapped in a handshake header and one record. */
function helloWith(extensions: [number, Buffer][], tweak: (body: Buffer) => Buffer = (b) => b): Buffer {
  const ext = Buffer.concat(
    extensions.map(([type, data]) => {
      const h = Buffer.alloc(4);
      h.writeUInt16BE(type, 0);
      h.writeUInt16BE(data.length, 2);
      return Buffer.concat([h, data]);
    }),
  );
  const extLen = Buffer.alloc(2);
  extLen.writeUInt16BE(ext.length);
  const body = tweak(
    Buffer.concat([
      Buffer.from([3, 3]),
      Buffer.alloc(32, 7),
      Buffer.from([0]), // session id
      Buffer.from([0, 2, 0x13, 0x01]), // one cipher suite
      Buffer.from([1, 0]), // null compression
      extLen,
      ext,
    ]),
  );
  const hs = Buffer.alloc(4);
  hs[0] = 1;
  hs.writeUIntBE(body.length, 1, 3);
  return records(Buffer.concat([hs, body]), 16384);
}

function sni(...names: Buffer[]): Buffer {
  const entries = Buffer.concat(
    names.map((n) => {
      const h = Buffer.alloc(3);
      h.writeUInt16BE(n.length, 1);
      return Buffer.concat([h, n]);
    }),
  );
  const len = Buffer.alloc(2);
  len.writeUInt16BE(entries.length);
  return Buffer.concat([len, entries]);
}

function alpn(...protocols: string[]): Buffer {
  const list = Buffer.concat(protocols.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])));
  const len = Buffer.alloc(2);
  len.writeUInt16BE(list.length);
  return Buffer.concat([len, list]);
}

test('hand-made ClientHellos: the smallest one, SNI and ALPN', () => {
  assert.deepEqual(inspectClientHello(helloWith([])), tls('', []));
  assert.deepEqual(
    inspectClientHello(
      helloWith([
        [0, sni(Buffer.from('X.Test'))],
        [16, alpn('h2')],
      ]),
    ),
    tls('x.test', ['h2']),
  );
  // No extensions block at all (TLS 1.0 style).
  assert.deepEqual(inspectClientHello(helloWith([], (b) => b.subarray(0, b.length - 2))), tls('', []));
});

test('malformed ClientHellos are not TLS, as the TLS library would refuse them', () => {
  const cases: [string, Buffer][] = [
    ['session id longer than 32', helloWith([], (b) => Buffer.from(b).fill(33, 34, 35))],
    ['odd cipher suite length', helloWith([], (b) => Buffer.concat([b.subarray(0, 36), Buffer.from([3])]))],
    [
      'duplicate extension',
      helloWith([
        [16, alpn('h2')],
        [16, alpn('h2')],
      ]),
    ],
    ['two server names', helloWith([[0, sni(Buffer.from('a'), Buffer.from('b'))]])],
    ['empty server name', helloWith([[0, sni(Buffer.alloc(0))]])],
    ['NUL in the server name', helloWith([[0, sni(Buffer.from('a\0b'))]])],
    ['bytes after the extensions block', helloWith([], (b) => Buffer.concat([b, Buffer.from([0, 0, 0, 9])]))],
    ['legacy version 2.0', helloWith([], (b) => Buffer.from(b).fill(2, 0, 1))],
  ];
  for (const [what, bytes] of cases) assert.equal(inspectClientHello(bytes).kind, 'not_tls', what);
});

test('a malformed ALPN list is ignored: still TLS, no protocols (as Envoy)', () => {
  const bad = Buffer.from([0, 3, 0, 1, 0x61]);
  assert.deepEqual(
    inspectClientHello(
      helloWith([
        [0, sni(Buffer.from('a.b'))],
        [16, bad],
      ]),
    ),
    tls('a.b', []),
  );
});

test('too large: a declared length over the limit is refused at once; tiny records past the limit too', () => {
  const header = Buffer.from([0x16, 3, 1, 0x40, 0, 1, 0x01, 0x20, 0x00]); // handshake of 73728 bytes
  assert.equal(inspectClientHello(header).kind, 'too_large');
  const small = inspectClientHello(withSniAndAlpn, 100);
  assert.equal(small.kind, 'too_large', 'a real ClientHello over a 100-byte limit');
  // One-byte records: five bytes of header per byte of message, over a limit the message itself fits in.
  const hello = handshakeOf(withoutSni);
  const p = new ClientHelloParser(hello.length + 100);
  let r: ClientHelloResult = { kind: 'need_more' };
  const bytes = records(hello, 1);
  for (let i = 0; i < bytes.length && r.kind === 'need_more'; i += 64) r = p.push(bytes.subarray(i, i + 64));
  assert.equal(r.kind, 'too_large');
});

test('the first verdict is final', () => {
  const p = new ClientHelloParser();
  assert.equal(p.push(Buffer.from('GET')).kind, 'not_tls');
  assert.equal(p.push(withSniAndAlpn).kind, 'not_tls');
});

test('fuzz: random bytes and mutated ClientHellos never throw', () => {
  const kinds = new Set(['need_more', 'not_tls', 'too_large', 'tls']);
  for (let i = 0; i < 3000; i++) {
    const random = randomBytes(1 + (i % 300));
    if (i % 2 === 0) random[0] = 0x16;
    if (i % 4 === 0) random[1] = 3;
    assert.ok(kinds.has(inspectClientHello(random).kind));
    const mutated = Buffer.from(i % 2 ? withSniAndAlpn : fromOpenssl);
    for (let j = 0; j < 1 + (i % 5); j++)
      mutated[5 + ((i * 7919 + j * 104729) % (mutated.length - 5))] ^= 1 << (j % 8);
    const p = new ClientHelloParser();
    for (let k = 0; k < mutated.length; k += 1 + (i % 97))
      assert.ok(kinds.has(p.push(mutated.subarray(k, k + 1 + (i % 97))).kind));
  }
});

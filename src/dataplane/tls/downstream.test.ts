// Tests of DownstreamTls on real sockets: unshifted ClientHello bytes, ALPN, client certificates, stats, close.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { type ConnectionOptions, connect, type TLSSocket } from 'node:tls';
import { type Certs, CLIENT_SPIFFE_ID, makeCerts } from '../../../test/support/certs.js';
import type { DownstreamTlsConfig, SanMatcherConfig } from '../../config/model.js';
import { Logger } from '../observe/log.js';
import { StatsStore, scopes } from '../observe/stats.js';
import { DownstreamTls } from './downstream.js';

let certs: Certs;
before(async () => {
  certs = await makeCerts();
});
after(() => certs.close());

function config(opts: {
  alpn?: string[];
  trustCa?: boolean;
  require?: boolean;
  sans?: SanMatcherConfig[];
  timeoutMs?: number;
}): DownstreamTlsConfig {
  const file = (filename: string) => ({ kind: 'file' as const, filename, field: 'test' });
  return {
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: 'TLSv1_2',
        tlsMaximumProtocolVersion: 'TLSv1_3',
        cipherSuites: [],
        ecdhCurves: [],
      },
      tlsCertificates: [
        { certificateChain: file(certs.server.certFile), privateKey: file(certs.server.keyFile) },
      ],
      validationContext: opts.trustCa
        ? { trustedCa: file(certs.ca.certFile), matchTypedSubjectAltNames: opts.sans ?? [] }
        : undefined,
      alpnProtocols: opts.alpn ?? [],
    },
    requireClientCertificate: opts.require ?? false,
    preferClientCiphers: false,
    transportSocketConnectTimeoutMs: opts.timeoutMs ?? 0,
  };
}

interface Harness {
  readonly server: Server;
  readonly port: number;
  readonly tls: DownstreamTls;
  readonly secured: TLSSocket[];
  stat(name: string): number;
  close(): Promise<void>;
}

/**
 * A plain TCP server handing its sockets to a DownstreamTls, after peeking at the first bytes and putting them
 * back as a tls_inspector does; secure sockets echo what they read.
 */
async function harness(cfg: DownstreamTlsConfig, peekBytes: number | 'data' = 5): Promise<Harness> {
  const store = new StatsStore();
  const tls = new DownstreamTls(cfg, {
    store,
    scope: () => scopes.listener('test'),
    logger: new Logger('off'),
    name: 'test chain',
  });
  const secured: TLSSocket[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    if (peekBytes === 0) {
      tls.accept(socket, onSecure);
      return;
    }
    if (peekBytes === 'data') {
      // As the listener filters leave it: read in flowing mode, paused, the bytes put back.
      const onData = (chunk: Buffer) => {
        socket.off('data', onData);
        socket.pause();
        socket.unshift(chunk);
        tls.accept(socket, onSecure);
      };
      socket.on('data', onData);
      return;
    }
    socket.once('readable', () => {
      const head: Buffer | null = socket.read(Math.min(peekBytes, socket.readableLength));
      if (head === null) {
        socket.destroy();
        return;
      }
      assert.equal(head[0], 0x16, 'a TLS handshake record');
      socket.unshift(head);
      tls.accept(socket, onSecure);
    });
  });
  const onSecure = (s: TLSSocket) => {
    secured.push(s);
    s.on('data', (d) => s.write(d));
    s.on('end', () => s.end());
  };
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as { port: number }).port,
    tls,
    secured,
    stat(name) {
      for (const c of store.allCounters()) if (c.name === `listener.test.${name}`) return c.value;
      throw new Error(`no stat ${name}`);
    },
    async close() {
      tls.close();
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** Connects, sends "ping", and resolves with what came back or the error that ended it. */
function exchange(
  port: number,
  opts: ConnectionOptions = {},
): Promise<{ alpn: string | false; echo: string; error?: string }> {
  return new Promise((resolve) => {
    let echo = '';
    let alpn: string | false = false;
    let error: string | undefined;
    const c = connect(
      { host: '127.0.0.1', port, ca: certs.ca.cert, servername: 'localhost', ...opts },
      () => {
        alpn = c.alpnProtocol ?? false;
        c.end('ping');
      },
    );
    c.setEncoding('utf8');
    c.on('data', (d: string) => {
      echo += d;
    });
    c.on('error', (e: Error & { code?: string }) => {
      error ??= e.code ?? e.message;
    });
    c.on('close', () => resolve({ alpn, echo, error }));
  });
}

test('handshakes a socket whose first bytes were read and unshifted, and negotiates ALPN', async () => {
  const h = await harness(config({ alpn: ['h2', 'http/1.1'] }));
  try {
    assert.deepEqual(await exchange(h.port, { ALPNProtocols: ['h2', 'http/1.1'] }), {
      alpn: 'h2',
      echo: 'ping',
      error: undefined,
    });
    assert.deepEqual(await exchange(h.port, { ALPNProtocols: ['http/1.1'] }), {
      alpn: 'http/1.1',
      echo: 'ping',
      error: undefined,
    });
    // No ALPN offered: none negotiated, the connection works.
    assert.deepEqual(await exchange(h.port), { alpn: false, echo: 'ping', error: undefined });
    assert.equal(h.stat('ssl.handshake'), 3);
    assert.equal(h.stat('ssl.no_certificate'), 3);
    assert.equal(h.secured[0]!.alpnProtocol, 'h2');
  } finally {
    await h.close();
  }
});

test('also works when the whole ClientHello was read and unshifted (flowing or not), or nothing was', async () => {
  for (const peek of [0, 1, 4096, 'data' as const]) {
    const h = await harness(config({}), peek);
    try {
      const r = await exchange(h.port);
      assert.equal(r.echo, 'ping', `peek ${peek}`);
    } finally {
      await h.close();
    }
  }
});

test('without alpn_protocols no ALPN is negotiated', async () => {
  const h = await harness(config({}));
  try {
    assert.deepEqual(await exchange(h.port, { ALPNProtocols: ['h2', 'http/1.1'] }), {
      alpn: false,
      echo: 'ping',
      error: undefined,
    });
  } finally {
    await h.close();
  }
});

test('require_client_certificate: none, one from another CA, a good one', async () => {
  const h = await harness(config({ trustCa: true, require: true }));
  try {
    const none = await exchange(h.port);
    assert.equal(none.echo, '');
    assert.ok(none.error, 'the handshake fails');
    const wrong = await exchange(h.port, { cert: certs.otherCa.cert, key: certs.otherCa.key });
    assert.equal(wrong.echo, '');
    const good = await exchange(h.port, { cert: certs.client.cert, key: certs.client.key });
    assert.deepEqual(good, { alpn: false, echo: 'ping', error: undefined });
    assert.equal(h.stat('ssl.fail_verify_no_cert'), 1);
    assert.equal(h.stat('ssl.fail_verify_error'), 1);
    assert.equal(h.stat('ssl.handshake'), 1);
    assert.equal(h.secured.length, 1);
  } finally {
    await h.close();
  }
});

test('with trusted_ca only, a client certificate is optional but checked when given', async () => {
  const h = await harness(config({ trustCa: true }));
  try {
    assert.equal((await exchange(h.port)).echo, 'ping');
    assert.equal((await exchange(h.port, { cert: certs.client.cert, key: certs.client.key })).echo, 'ping');
    assert.equal((await exchange(h.port, { cert: certs.otherCa.cert, key: certs.otherCa.key })).echo, '');
    assert.equal(h.stat('ssl.no_certificate'), 1);
    assert.equal(h.stat('ssl.handshake'), 2);
    assert.equal(h.stat('ssl.fail_verify_error'), 1);
  } finally {
    await h.close();
  }
});

test("SAN matchers check the client certificate's names", async () => {
  const uri = (value: string): SanMatcherConfig => ({
    sanType: 'URI',
    matcher: { kind: 'exact', value, ignoreCase: false },
  });
  const good = await harness(config({ trustCa: true, sans: [uri(CLIENT_SPIFFE_ID)] }));
  const bad = await harness(
    config({ trustCa: true, sans: [uri('spiffe://cluster.local/ns/default/sa/admin')] }),
  );
  try {
    const client = { cert: certs.client.cert, key: certs.client.key };
    assert.equal((await exchange(good.port, client)).echo, 'ping');
    assert.equal((await exchange(bad.port, client)).echo, '');
    assert.equal(bad.stat('ssl.fail_verify_san'), 1);
    // SAN matchers make a certificate mandatory.
    assert.equal((await exchange(good.port)).echo, '');
    assert.equal(good.stat('ssl.fail_verify_no_cert'), 1);
  } finally {
    await good.close();
    await bad.close();
  }
});

test('a handshake that does not finish in transport_socket_connect_timeout is closed and counted', async () => {
  const h = await harness(config({ timeoutMs: 50 }), 0);
  try {
    const { connect: tcp } = await import('node:net');
    const s = tcp(h.port, '127.0.0.1');
    s.on('error', () => undefined);
    await once(s, 'close');
    assert.equal(h.stat('downstream_cx_transport_socket_connect_timeout'), 1);
  } finally {
    await h.close();
  }
});

test('not TLS at all is a connection error', async () => {
  const h = await harness(config({}), 0);
  try {
    const { connect: tcp } = await import('node:net');
    const s = tcp(h.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    s.on('error', () => undefined);
    s.resume();
    await once(s, 'close');
    assert.equal(h.stat('ssl.connection_error'), 1);
    assert.equal(h.secured.length, 0);
  } finally {
    await h.close();
  }
});

test('close() drops handshakes in progress', async () => {
  const h = await harness(config({}), 0);
  const { connect: tcp } = await import('node:net');
  const accepted = once(h.server, 'connection');
  const s = tcp(h.port, '127.0.0.1');
  s.on('error', () => undefined);
  // The harness hands the socket to the DownstreamTls in its own 'connection' listener, which runs first.
  await accepted;
  h.tls.close();
  await once(s, 'close');
  await h.close();
});

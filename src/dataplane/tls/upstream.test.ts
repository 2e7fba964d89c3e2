// Tests of UpstreamTls: the connection options an HTTP/2 pool takes, ALPN, onread, SNI and how failures read.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { type Certs, makeCerts } from '../../../test/support/certs.js';
import type { SanMatcherConfig, UpstreamTlsConfig } from '../../config/model.js';
import { Logger } from '../observe/log.js';
import { StatsStore, scopes } from '../observe/stats.js';
import { UpstreamTls } from './upstream.js';

let certs: Certs;
let server: Server;
let port: number;
const servernames: (string | false)[] = [];

before(async () => {
  certs = await makeCerts();
  server = createServer(
    { cert: certs.server.cert, key: certs.server.key, ALPNProtocols: ['h2', 'http/1.1'] },
    (s: TLSSocket) => {
      servernames.push((s as TLSSocket & { servername: string | false }).servername);
      s.end(`alpn=${s.alpnProtocol}`);
    },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as { port: number }).port;
});

after(async () => {
  server.close();
  await certs.close();
});

function upstreamTls(opts: {
  sni?: string;
  ca?: string;
  sans?: SanMatcherConfig[];
  alpn?: string[];
}): UpstreamTls {
  const config: UpstreamTlsConfig = {
    commonTlsContext: {
      tlsParams: {
        tlsMinimumProtocolVersion: 'TLSv1_2',
        tlsMaximumProtocolVersion: 'TLSv1_2',
        cipherSuites: [],
        ecdhCurves: [],
      },
      tlsCertificates: [],
      validationContext: opts.ca
        ? {
            trustedCa: { kind: 'file', filename: opts.ca, field: 'ca' },
            matchTypedSubjectAltNames: opts.sans ?? [],
          }
        : undefined,
      alpnProtocols: opts.alpn ?? [],
    },
    sni: opts.sni ?? '',
  };
  return new UpstreamTls(config, {
    store: new StatsStore(),
    scope: scopes.cluster('t'),
    logger: new Logger('off'),
    name: 'cluster "t"',
  });
}

/** Connects and resolves with what the server said, or the error's message. */
async function exchange(t: UpstreamTls, alpn?: string[]): Promise<string> {
  const chunks: Buffer[] = [];
  const s = t.connect('127.0.0.1', port, {
    alpn,
    onread: {
      buffer: Buffer.alloc(1024),
      callback: (n, b) => chunks.push(Buffer.from(b.subarray(0, n))) > 0,
    },
  });
  return new Promise((resolve) => {
    s.on('error', (e) => resolve(e.message));
    s.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
}

test('connectionOptions: context, SNI, ALPN (the caller may override it) and verification', () => {
  const t = upstreamTls({ sni: 'api.example.test', ca: certs.ca.certFile, alpn: ['http/1.1'] });
  const o = t.connectionOptions();
  assert.equal(o.servername, 'api.example.test');
  assert.deepEqual(o.ALPNProtocols, ['http/1.1']);
  assert.equal(o.rejectUnauthorized, true);
  assert.ok(o.secureContext);
  assert.deepEqual(t.connectionOptions(['h2']).ALPNProtocols, ['h2']);
  const none = upstreamTls({});
  assert.equal(none.connectionOptions().servername, undefined);
  assert.equal(none.connectionOptions().ALPNProtocols, undefined);
  assert.equal(none.connectionOptions().rejectUnauthorized, false);
  t.close();
  none.close();
});

test('connect: reads through onread, SNI sent, ALPN offered, handshake counted', async () => {
  const t = upstreamTls({ sni: 'localhost', ca: certs.ca.certFile });
  assert.equal(await exchange(t, ['h2']), 'alpn=h2');
  assert.equal(servernames.at(-1), 'localhost');
  assert.equal(await exchange(t), 'alpn=false');
  assert.equal(t.stats['ssl.handshake'].value, 2);
  t.close();
});

test('failures say what failed', async () => {
  const wrongCa = upstreamTls({ ca: certs.otherCa.certFile });
  assert.match(await exchange(wrongCa), /^certificate verify failed: .+ \([A-Z_]+\)$/);
  assert.equal(wrongCa.stats['ssl.fail_verify_error'].value, 1);
  const dns = (value: string): SanMatcherConfig => ({
    sanType: 'DNS',
    matcher: { kind: 'exact', value, ignoreCase: false },
  });
  const san = upstreamTls({ ca: certs.ca.certFile, sans: [dns('db.internal')] });
  assert.match(
    await exchange(san),
    /^certificate verify failed: SAN mismatch: expected one of \[DNS exact "db\.internal"\], got \[DNS:localhost, /,
  );
  assert.equal(san.stats['ssl.fail_verify_san'].value, 1);
  const wildcard = upstreamTls({ ca: certs.ca.certFile, sans: [dns('api.example.test')] });
  assert.equal(await exchange(wildcard), 'alpn=false', 'the certificate has *.example.test');
  for (const t of [wrongCa, san, wildcard]) t.close();
});

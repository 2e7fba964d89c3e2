// x-forwarded-client-cert with real mutual TLS (curl with a client certificate): each forward_client_cert_details
// mode, what the application behind the proxy receives, and a client's forged header never passing by default.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { after, before, test } from 'node:test';
import { type Certs, CLIENT_SPIFFE_ID, makeCerts, SERVER_SANS } from './support/certs.js';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  routes,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { serving, trusting, withTls } from './support/tls_config.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let certs: Certs;
let app: Upstream;
let proxy: RunningProxy;
const FORGED = 'By=spiffe://cluster.local/ns/x/sa/forged;URI=spiffe://cluster.local/ns/x/sa/admin';

/** One mTLS listener per mode (client certificate requested, not required), and a plaintext one. */
const MODES: Record<string, Json> = {
  default: {},
  append: {
    forward_client_cert_details: 'APPEND_FORWARD',
    set_current_client_cert_details: { subject: true, uri: true, dns: true },
  },
  set: {
    forward_client_cert_details: 'SANITIZE_SET',
    set_current_client_cert_details: { uri: true, cert: true },
  },
  forward: { forward_client_cert_details: 'FORWARD_ONLY' },
  always: { forward_client_cert_details: 'ALWAYS_FORWARD_ONLY' },
};

before(async () => {
  certs = await makeCerts();
  app = await startUpstream('app');
  const route = routes([{ match: { prefix: '/' }, route: { cluster: 'app' } }]);
  const context = {
    ...serving(certs.server),
    common_tls_context: {
      ...(serving(certs.server).common_tls_context as Json),
      ...(trusting(certs.ca).common_tls_context as Json),
    },
  };
  const listeners = Object.entries(MODES).map(([name, hcm]) =>
    withTls(httpListener(name, route, hcm), context),
  );
  listeners.push(httpListener('plain-append', route, MODES.append));
  proxy = await startProxy(bootstrap(listeners, [staticCluster('app', [app.port])]));
});

after(async () => {
  await proxy?.close();
  await app?.close();
  await certs?.close();
});

/** A GET through listener `name` over TLS with the client certificate (unless `anonymous`), forging XFCC. */
async function xfccSeen(
  name: string,
  opts: { anonymous?: boolean; forged?: boolean } = {},
): Promise<string | undefined> {
  const url = proxy.url(name).replace('http://127.0.0.1', 'https://localhost');
  const port = new URL(url).port;
  const tls = name.startsWith('plain')
    ? []
    : ['--cacert', certs.ca.certFile, '--resolve', `localhost:${port}:127.0.0.1`];
  const client =
    opts.anonymous || name.startsWith('plain')
      ? []
      : ['--cert', certs.client.certFile, '--key', certs.client.keyFile];
  const forged = opts.forged === false ? [] : ['-H', `x-forwarded-client-cert: ${FORGED}`];
  const r = await curl([...tls, ...client, ...forged, name.startsWith('plain') ? proxy.url(name) : url]);
  assert.equal(r.status, 200, r.body);
  return app.requests.at(-1)?.headers['x-forwarded-client-cert'] as string | undefined;
}

test('SANITIZE (the default): a forged header never reaches the application, with or without a certificate', async () => {
  assert.equal(await xfccSeen('default'), undefined);
  assert.equal(await xfccSeen('default', { anonymous: true }), undefined);
});

test("APPEND_FORWARD (Istio's inbound): the proxy's element after what came before; By, Hash, Subject, URI, DNS", async () => {
  const hash = new X509Certificate(certs.client.cert).fingerprint256.replaceAll(':', '').toLowerCase();
  const mine = `By=${SERVER_SANS.uri};Hash=${hash};Subject="CN=client";URI=${CLIENT_SPIFFE_ID}`;
  assert.equal(await xfccSeen('append', { forged: false }), mine);
  assert.equal(await xfccSeen('append'), `${FORGED},${mine}`);
  // No client certificate, or no TLS at all: nothing to vouch for, and what the client sent is removed.
  assert.equal(await xfccSeen('append', { anonymous: true }), undefined);
  assert.equal(await xfccSeen('plain-append'), undefined);
});

test('SANITIZE_SET replaces; FORWARD_ONLY keeps only with a certificate; ALWAYS_FORWARD_ONLY always keeps', async () => {
  const set = await xfccSeen('set');
  assert.ok(set?.startsWith(`By=${SERVER_SANS.uri};Hash=`), String(set));
  assert.match(
    String(set),
    new RegExp(`;Cert="-----BEGIN%20CERTIFICATE-----%0A[^"]+";URI=${CLIENT_SPIFFE_ID}$`),
  );
  assert.equal(await xfccSeen('forward'), FORGED);
  assert.equal(await xfccSeen('forward', { anonymous: true }), undefined);
  assert.equal(await xfccSeen('always', { anonymous: true }), FORGED);
});

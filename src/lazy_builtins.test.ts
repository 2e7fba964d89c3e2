import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { test } from 'node:test';
import { TLSSocket } from 'node:tls';
import { isTlsSocket, nodeCrypto, nodeTls } from './lazy_builtins.js';

test('isTlsSocket tells a TLS socket from a plain one, as instanceof TLSSocket does', () => {
  const plain = new Socket();
  const secure = new TLSSocket(new Socket());
  assert.equal(isTlsSocket(plain), false);
  assert.equal(isTlsSocket(secure), true);
  assert.equal(isTlsSocket(undefined), false);
  plain.destroy();
  secure.destroy();
});

test('nodeTls and nodeCrypto are the built-ins, loaded once', () => {
  assert.equal(nodeTls().TLSSocket, TLSSocket);
  assert.equal(nodeTls(), nodeTls());
  assert.equal(typeof nodeCrypto().randomFillSync, 'function');
});

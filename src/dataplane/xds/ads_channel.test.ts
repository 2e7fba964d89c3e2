import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostOf } from './ads_channel.js';

test('the host a TLS channel to an ADS target verifies by', () => {
  assert.equal(hostOf('127.0.0.1:15012'), '127.0.0.1');
  assert.equal(hostOf('[::1]:15012'), '::1');
  assert.equal(hostOf('istiod.istio-system.svc:15012'), 'istiod.istio-system.svc');
  assert.equal(hostOf('dns:///cp.mesh:15012'), 'cp.mesh');
  assert.equal(hostOf('cp.mesh'), 'cp.mesh');
});

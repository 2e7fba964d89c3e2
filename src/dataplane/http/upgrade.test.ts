// Unit tests: which requests are upgrades, and Envoy's table of HCM and route upgrade_configs.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { UpgradeConfig } from '../../config/model.js';
import type { CompiledRoute } from '../router/route_table.js';
import { headerGet } from './header_list.js';
import type { DownstreamStream } from './stream.js';
import { requestedUpgrade, upgradeAllowed } from './upgrade.js';

function stream(headers: string[], opts: { protocol?: string; hasBody?: boolean } = {}): DownstreamStream {
  const s = {
    protocol: opts.protocol ?? 'HTTP/1.1',
    hasBody: opts.hasBody ?? false,
    header: (name: string) => headerGet(headers, name),
  };
  return s as unknown as DownstreamStream;
}

function route(upgradeConfigs: UpgradeConfig[]): CompiledRoute {
  return { action: { kind: 'route', route: { upgradeConfigs } } } as unknown as CompiledRoute;
}

test('an upgrade needs Upgrade and a Connection header listing "upgrade"', () => {
  assert.equal(requestedUpgrade(stream(['connection', 'Upgrade', 'upgrade', 'WebSocket'])), 'WebSocket');
  assert.equal(requestedUpgrade(stream(['connection', 'keep-alive, upgrade', 'upgrade', 'foo'])), 'foo');
  assert.equal(requestedUpgrade(stream(['upgrade', 'websocket'])), undefined);
  assert.equal(requestedUpgrade(stream(['connection', 'upgrades', 'upgrade', 'websocket'])), undefined);
  assert.equal(requestedUpgrade(stream(['connection', 'upgrade'])), undefined);
});

test('h2c, HTTP/1.0, HTTP/2 and requests with a body are not upgrades', () => {
  const h = ['connection', 'Upgrade, HTTP2-Settings', 'upgrade', 'h2c'];
  assert.equal(requestedUpgrade(stream(h)), undefined);
  const ws = ['connection', 'upgrade', 'upgrade', 'websocket'];
  assert.equal(requestedUpgrade(stream(ws, { protocol: 'HTTP/1.0' })), undefined);
  assert.equal(requestedUpgrade(stream(ws, { protocol: 'HTTP/2' })), undefined);
  assert.equal(requestedUpgrade(stream(ws, { hasBody: true })), undefined);
});

test("Envoy's table: the route's entry for the type overrides the HCM's; a type named nowhere is refused", () => {
  const on = (t: string): UpgradeConfig => ({ upgradeType: t, enabled: true });
  const off = (t: string): UpgradeConfig => ({ upgradeType: t, enabled: false });
  const cases: [UpgradeConfig[], UpgradeConfig[] | undefined, boolean][] = [
    [[on('websocket')], [on('websocket')], true],
    [[on('websocket')], [off('websocket')], false],
    [[off('websocket')], [on('websocket')], true],
    [[off('websocket')], [off('websocket')], false],
    [[on('websocket')], [], true],
    [[off('websocket')], [], false],
    [[], [on('websocket')], true],
    [[], [], false],
    [[on('websocket')], undefined, true],
    [[on('foo')], [on('bar')], false],
  ];
  for (const [hcm, own, expected] of cases) {
    const r = own === undefined ? undefined : route(own);
    assert.equal(upgradeAllowed(hcm, r, 'WebSocket'), expected, JSON.stringify({ hcm, own }));
  }
});

test('a redirect or direct response route leaves the decision to the HCM', () => {
  const direct = { action: { kind: 'direct_response', status: 200 } } as unknown as CompiledRoute;
  assert.equal(upgradeAllowed([{ upgradeType: 'websocket', enabled: true }], direct, 'websocket'), true);
  assert.equal(upgradeAllowed([], direct, 'websocket'), false);
});

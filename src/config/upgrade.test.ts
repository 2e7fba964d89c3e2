// Unit tests of upgrade_configs at the HTTP connection manager and on a RouteAction: the model, and errors with paths.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateBootstrap } from './bootstrap.js';
import { backend, hcmFilter, router, socket } from './full_config.fixture.js';
import type { Bootstrap, HcmConfig } from './model.js';
import { formatErrors } from './result.js';

const H = 'static_resources.listeners[0].filter_chains[0].filters[0].typed_config';
const R = `${H}.route_config.virtual_hosts[0].routes[0].route`;

function bootstrap(hcmUpgrades: unknown, routeUpgrades?: unknown): unknown {
  const route: Record<string, unknown> = { cluster: 'backend' };
  if (routeUpgrades !== undefined) route.upgrade_configs = routeUpgrades;
  const hcm: Record<string, unknown> = {
    stat_prefix: 'h',
    http_filters: [router],
    route_config: {
      virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route }] }],
    },
  };
  if (hcmUpgrades !== undefined) hcm.upgrade_configs = hcmUpgrades;
  return {
    static_resources: {
      listeners: [
        { name: 'l', address: socket('0.0.0.0', 8080), filter_chains: [{ filters: [hcmFilter(hcm)] }] },
      ],
      clusters: [backend],
    },
  };
}

function valid(raw: unknown): HcmConfig {
  const r = translateBootstrap(raw);
  if (!r.ok) assert.fail(formatErrors(r.errors));
  const f = (r.value as Bootstrap).listeners[0]!.filterChains[0]!.filter;
  return f.kind === 'http_connection_manager' ? f.hcm : assert.fail('not an HCM');
}

function routeUpgrades(hcm: HcmConfig) {
  const action = hcm.routeConfig!.virtualHosts[0]!.routes[0]!.action;
  return action.kind === 'route' ? action.route.upgradeConfigs : assert.fail('not a route action');
}

function errors(raw: unknown): string[] {
  const r = translateBootstrap(raw);
  if (r.ok) assert.fail('expected errors');
  return formatErrors(r.errors).split('\n');
}

test('no upgrade_configs: none at either level (every upgrade is refused)', () => {
  const hcm = valid(bootstrap(undefined));
  assert.deepEqual(hcm.upgradeConfigs, []);
  assert.deepEqual(routeUpgrades(hcm), []);
});

test('HCM and route upgrade_configs: types lower-cased, enabled defaults to true', () => {
  const hcm = valid(
    bootstrap(
      [{ upgrade_type: 'WebSocket' }, { upgrade_type: 'foo', enabled: false }],
      [{ upgradeType: 'websocket', enabled: false }, { upgrade_type: 'Foo' }],
    ),
  );
  assert.deepEqual(hcm.upgradeConfigs, [
    { upgradeType: 'websocket', enabled: true },
    { upgradeType: 'foo', enabled: false },
  ]);
  assert.deepEqual(routeUpgrades(hcm), [
    { upgradeType: 'websocket', enabled: false },
    { upgradeType: 'foo', enabled: true },
  ]);
});

test('a protocol with a version ("SPDY/3.1") is a valid upgrade type', () => {
  assert.deepEqual(valid(bootstrap([{ upgrade_type: 'SPDY/3.1' }])).upgradeConfigs, [
    { upgradeType: 'spdy/3.1', enabled: true },
  ]);
});

test('filters (HCM) and connect_config (route) are not supported; an empty filters list is unset', () => {
  assert.deepEqual(
    errors(
      bootstrap(
        [{ upgrade_type: 'websocket', filters: [router] }],
        [{ upgrade_type: 'websocket', connect_config: {} }],
      ),
    ),
    [
      `${R}.upgrade_configs[0].connect_config: field not supported by Remora`,
      `${H}.upgrade_configs[0].filters: field not supported by Remora`,
    ],
  );
  assert.equal(valid(bootstrap([{ upgrade_type: 'websocket', filters: [] }])).upgradeConfigs.length, 1);
});

test('bad entries are reported with their paths', () => {
  assert.deepEqual(
    errors(
      bootstrap(
        [
          {},
          { upgrade_type: '' },
          { upgrade_type: 'web socket' },
          { upgrade_type: 'other', enabled: 'yes' },
          { upgrade_type: 'CONNECT' },
          { upgrade_type: 'h2c' },
          { upgrade_type: 'websocket' },
          { upgrade_type: 'WEBSOCKET' },
          'websocket',
          { upgrade_type: 'x', upgrade: 1 },
        ],
        { upgrade_type: 'websocket' },
      ),
    ),
    [
      `${R}.upgrade_configs: expected an array, got object`,
      `${H}.upgrade_configs[0].upgrade_type: missing required field`,
      `${H}.upgrade_configs[1].upgrade_type: must not be empty`,
      `${H}.upgrade_configs[2].upgrade_type: invalid upgrade type "web socket": expected a protocol name such as "websocket"`,
      `${H}.upgrade_configs[3].enabled: expected a boolean, got string`,
      `${H}.upgrade_configs[4].upgrade_type: upgrade type "CONNECT" (CONNECT tunnelling) is not supported by Remora yet`,
      `${H}.upgrade_configs[5].upgrade_type: upgrade type "h2c" is never tunnelled: an h2c Upgrade header is dropped, as Envoy does`,
      `${H}.upgrade_configs[7].upgrade_type: duplicate upgrade type "WEBSOCKET" (also upgrade_configs[6])`,
      `${H}.upgrade_configs[8]: expected an object, got string`,
      `${H}.upgrade_configs[9].upgrade: unknown field "upgrade"`,
    ],
  );
});

test('route-level duplicates differing only in case are an error', () => {
  assert.deepEqual(
    errors(bootstrap(undefined, [{ upgrade_type: 'websocket' }, { upgrade_type: 'WebSocket' }])),
    [`${R}.upgrade_configs[1].upgrade_type: duplicate upgrade type "WebSocket" (also upgrade_configs[0])`],
  );
});

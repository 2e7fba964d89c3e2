// Tests of the xDS parts of the config: dynamic_resources, EDS clusters, HCM rds and ClusterLoadAssignment.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bootstrapErrors as errors, validBootstrap as valid } from './bootstrap.fixture.js';
import { summarize, translateClusterLoadAssignment } from './bootstrap.js';
import { translateCluster } from './cluster.js';
import { hcmFilter, router, socket } from './full_config.fixture.js';
import { translateListener } from './listener.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from './load_assignment_policy.js';
import { formatErrors } from './result.js';

function xdsCluster(name: string, ports: number[]): unknown {
  return {
    name,
    type: 'STATIC',
    load_assignment: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: ports.map((p) => ({
            endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: p } } },
          })),
        },
      ],
    },
  };
}

function adsBootstrap(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    node: { id: 'sidecar~10.0.0.1~a.ns~ns.svc.cluster.local', cluster: 'a', metadata: { NAMESPACE: 'ns' } },
    dynamic_resources: {
      ads_config: {
        api_type: 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: 'xds' } }],
        set_node_on_first_message_only: true,
      },
      lds_config: { ads: {}, resource_api_version: 'V3' },
      cds_config: { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '2s' },
    },
    static_resources: { clusters: [xdsCluster('xds', [15010, 15011])] },
    ...extra,
  };
}

test('dynamic_resources with ads_config, lds_config and cds_config', () => {
  const b = valid(adsBootstrap());
  assert.deepEqual(b.dynamicResources, {
    ads: { apiType: 'GRPC', servers: [{ kind: 'envoy_grpc', clusterName: 'xds' }] },
    lds: { initialFetchTimeoutMs: 15_000 },
    cds: { initialFetchTimeoutMs: 2000 },
  });
  const google = valid({
    dynamic_resources: {
      ads_config: {
        api_type: 'DELTA_GRPC',
        grpc_services: [
          { google_grpc: { target_uri: '127.0.0.1:15010', stat_prefix: 'ads' } },
          { google_grpc: { target_uri: 'dns:///istiod.istio-system.svc:15010', stat_prefix: 'ads' } },
        ],
      },
      lds_config: { ads: {} },
    },
  });
  assert.deepEqual(google.dynamicResources, {
    ads: {
      apiType: 'DELTA_GRPC',
      servers: [
        { kind: 'google_grpc', targetUri: '127.0.0.1:15010' },
        { kind: 'google_grpc', targetUri: 'dns:///istiod.istio-system.svc:15010' },
      ],
    },
    lds: { initialFetchTimeoutMs: 15_000 },
    cds: undefined,
  });
  assert.equal(
    summarize(b),
    'valid: 0 listeners, 1 cluster, 0 routes; listeners and clusters from ADS (GRPC) (node "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local")',
  );
});

test('dynamic_resources errors carry their field paths', () => {
  const raw = adsBootstrap();
  const dr = raw.dynamic_resources as Record<string, Record<string, unknown>>;
  dr.ads_config = {
    api_type: 'REST',
    transport_api_version: 'V2',
    grpc_services: [
      { envoy_grpc: { cluster_name: 'nope' } },
      { envoy_grpc: { cluster_name: 'xds' }, google_grpc: { target_uri: 'x' } },
      { google_grpc: {} },
      { envoy_grpc: { cluster_name: 'eds' } },
    ],
    refresh_delay: '1s',
  };
  dr.lds_config = { path: '/etc/lds.yaml' };
  dr.cds_config = { ads: { x: 1 } };
  (raw.static_resources as { clusters: unknown[] }).clusters.push({
    name: 'eds',
    type: 'EDS',
    eds_cluster_config: { eds_config: { ads: {} } },
  });
  assert.deepEqual(errors(raw), [
    'dynamic_resources.ads_config.api_type: value "REST" is not supported by Remora yet (supported: GRPC, DELTA_GRPC)',
    'dynamic_resources.ads_config.transport_api_version: value "V2" is not supported by Remora yet (supported: V3, AUTO)',
    'dynamic_resources.ads_config.grpc_services[1]: only one of envoy_grpc, google_grpc may be set (got envoy_grpc, google_grpc)',
    'dynamic_resources.ads_config.grpc_services[2].google_grpc.target_uri: missing required field',
    'dynamic_resources.ads_config.refresh_delay: field not supported by Remora',
    'dynamic_resources.lds_config.path: not supported by Remora yet: resources come over ADS only (ads: {})',
    'dynamic_resources.cds_config.ads.x: unknown field "x"',
    'dynamic_resources.ads_config.grpc_services[0].envoy_grpc.cluster_name: unknown cluster "nope": the ADS server must be a static cluster',
    'dynamic_resources.ads_config.grpc_services[3].envoy_grpc.cluster_name: cluster "eds" is EDS: the ADS server must be a STATIC or STRICT_DNS cluster',
  ]);
});

test('a static listener or cluster naming ADS needs ads_config', () => {
  const raw = {
    static_resources: {
      listeners: [
        {
          name: 'l',
          address: socket('127.0.0.1', 0),
          filter_chains: [
            {
              filters: [
                hcmFilter({
                  stat_prefix: 'in',
                  rds: { route_config_name: 'web', config_source: { ads: {} } },
                  http_filters: [router],
                }),
              ],
            },
          ],
        },
      ],
      clusters: [{ name: 'e', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } }],
    },
  };
  assert.deepEqual(errors(raw), [
    'static_resources.listeners[0].filter_chains[0].filters[0].typed_config.rds.config_source.ads: ADS is named here but the bootstrap has no dynamic_resources.ads_config',
    'static_resources.clusters[0].eds_cluster_config.eds_config.ads: ADS is named here but the bootstrap has no dynamic_resources.ads_config',
  ]);
  const withAds = adsBootstrap({ static_resources: raw.static_resources });
  (withAds.static_resources as { clusters: unknown[] }).clusters.push(xdsCluster('xds', [15010]));
  const b = valid(withAds);
  const f = b.listeners[0]!.filterChains[0]!.filter;
  assert.ok(f.kind === 'http_connection_manager');
  assert.equal(f.hcm.routeConfig, undefined);
  assert.deepEqual(f.hcm.rds, { routeConfigName: 'web', configSource: { initialFetchTimeoutMs: 15_000 } });
});

test('EDS clusters: eds_cluster_config required, service_name defaults to the name, no load_assignment', () => {
  const ok = translateCluster(
    {
      name: 'outbound|80||web.ns.svc.cluster.local',
      type: 'EDS',
      connect_timeout: '1s',
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
    },
    '',
  );
  assert.ok(ok.ok);
  assert.equal(ok.value.type, 'EDS');
  assert.deepEqual(ok.value.eds, {
    serviceName: 'outbound|80||web.ns.svc.cluster.local',
    configSource: { initialFetchTimeoutMs: 15_000 },
  });
  const named = translateCluster(
    { name: 'c', type: 'EDS', eds_cluster_config: { service_name: 'svc', eds_config: { ads: {} } } },
    '',
  );
  assert.ok(named.ok);
  assert.equal(named.value.eds?.serviceName, 'svc');
  const bad = translateCluster(
    {
      name: 'c',
      type: 'EDS',
      load_assignment: { cluster_name: 'c', endpoints: [] },
      eds_cluster_config: { eds_config: { path: '/x' } },
    },
    'resources[0]',
  );
  assert.ok(!bad.ok);
  assert.deepEqual(formatErrors(bad.errors).split('\n'), [
    'resources[0].load_assignment: an EDS cluster has no configured endpoints: its hosts come from EDS',
    'resources[0].eds_cluster_config.eds_config.path: not supported by Remora yet: resources come over ADS only (ads: {})',
  ]);
  const notEds = translateCluster({ name: 'c', eds_cluster_config: { eds_config: { ads: {} } } }, '');
  assert.ok(!notEds.ok);
  assert.equal(
    formatErrors(notEds.errors),
    'eds_cluster_config: only an EDS cluster takes eds_cluster_config',
  );
  const missing = translateCluster({ name: 'c', type: 'EDS' }, '');
  assert.ok(!missing.ok);
  assert.equal(formatErrors(missing.errors), 'eds_cluster_config: missing required field');
});

test('translateClusterLoadAssignment: localities, priorities, weights; IP addresses only', () => {
  const ok = translateClusterLoadAssignment(
    {
      cluster_name: 'web',
      endpoints: [
        {
          locality: { region: 'r', zone: 'z' },
          load_balancing_weight: 3,
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } },
            {
              endpoint: { address: { socket_address: { address: '::1', port_value: 80 } } },
              load_balancing_weight: 2,
              health_status: 'HEALTHY',
            },
          ],
        },
        { priority: 1, lb_endpoints: [] },
      ],
    },
    '',
  );
  assert.ok(ok.ok, ok.ok ? '' : formatErrors(ok.errors));
  assert.deepEqual(ok.value, {
    clusterName: 'web',
    localities: [
      {
        priority: 0,
        weight: 3,
        endpoints: [
          { address: { address: '10.0.0.1', port: 80 }, weight: 1, hostname: undefined, health: 'HEALTHY' },
          { address: { address: '::1', port: 80 }, weight: 2, hostname: undefined, health: 'HEALTHY' },
        ],
      },
      { priority: 1, weight: undefined, endpoints: [] },
    ],
    policy: DEFAULT_LOAD_ASSIGNMENT_POLICY,
  });
  const bad = translateClusterLoadAssignment(
    {
      endpoints: [
        { lb_endpoints: [{ endpoint: { address: { socket_address: { address: 'web', port_value: 0 } } } }] },
      ],
      policy: { overprovisioning_factor: 0 },
    },
    'EDS["web"]',
  );
  assert.ok(!bad.ok);
  assert.deepEqual(formatErrors(bad.errors).split('\n'), [
    'EDS["web"].cluster_name: missing required field',
    'EDS["web"].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value: must be between 1 and 65535, got 0',
    'EDS["web"].endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address: an EDS endpoint must be an IP address',
    'EDS["web"].policy.overprovisioning_factor: must be between 1 and 4294967295, got 0',
  ]);
});

test('an LDS listener may use rds without a bootstrap around it', () => {
  const l = translateListener(
    {
      name: 'web',
      address: socket('0.0.0.0', 8080),
      filter_chains: [
        {
          filters: [
            hcmFilter({
              stat_prefix: 'web',
              rds: {
                route_config_name: 'web-routes',
                config_source: { ads: {}, resource_api_version: 'V3' },
              },
              http_filters: [router],
            }),
          ],
        },
      ],
    },
    '',
  );
  assert.ok(l.ok, l.ok ? '' : formatErrors(l.errors));
  const f = l.value.filterChains[0]!.filter;
  assert.ok(f.kind === 'http_connection_manager');
  assert.equal(f.hcm.rds?.routeConfigName, 'web-routes');
});

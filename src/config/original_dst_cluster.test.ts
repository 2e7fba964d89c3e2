// Tests of ORIGINAL_DST clusters (original_dst_lb_config, cleanup_interval) and upstream_bind_config.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateCluster } from './bootstrap.js';
import type { ClusterConfig } from './model.js';
import { formatErrors } from './result.js';

function cluster(extra: Record<string, unknown>) {
  return translateCluster({ name: 'c', connect_timeout: '1s', ...extra }, 'c');
}

function valid(extra: Record<string, unknown>): ClusterConfig {
  const r = cluster(extra);
  if (!r.ok) assert.fail(formatErrors(r.errors));
  return r.value;
}

function errors(extra: Record<string, unknown>): string[] {
  const r = cluster(extra);
  assert.equal(r.ok, false, 'expected errors');
  return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
}

test("ORIGINAL_DST: Istio's PassthroughCluster is accepted with Envoy's defaults", () => {
  const c = valid({ type: 'ORIGINAL_DST', lb_policy: 'CLUSTER_PROVIDED' });
  assert.equal(c.type, 'ORIGINAL_DST');
  assert.equal(c.lbPolicy, 'CLUSTER_PROVIDED');
  assert.deepEqual(c.originalDst, {
    cleanupIntervalMs: 5000,
    useHttpHeader: false,
    httpHeaderName: 'x-envoy-original-dst-host',
    upstreamPortOverride: undefined,
  });
  assert.deepEqual(c.upstreamBindAddresses, []);
  assert.equal(valid({ type: 'ORIGINAL_DST' }).lbPolicy, 'CLUSTER_PROVIDED');
});

test('ORIGINAL_DST: original_dst_lb_config and cleanup_interval', () => {
  const c = valid({
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    cleanup_interval: '30s',
    original_dst_lb_config: {
      use_http_header: true,
      http_header_name: 'X-Dst',
      upstream_port_override: 8443,
    },
  });
  assert.deepEqual(c.originalDst, {
    cleanupIntervalMs: 30000,
    useHttpHeader: true,
    httpHeaderName: 'x-dst',
    upstreamPortOverride: 8443,
  });
});

test('ORIGINAL_DST mistakes are errors with their paths', () => {
  assert.deepEqual(
    errors({
      type: 'ORIGINAL_DST',
      lb_policy: 'MAGLEV',
      load_assignment: { cluster_name: 'c', endpoints: [] },
      original_dst_lb_config: { metadata_key: { key: 'k' }, upstream_port_override: 0 },
    }),
    [
      'c.lb_policy: "MAGLEV" is not valid for an ORIGINAL_DST cluster: only CLUSTER_PROVIDED (the host is where the connection was going)',
      'c.load_assignment: an ORIGINAL_DST cluster has no configured endpoints: its hosts come from connections',
      'c.original_dst_lb_config.upstream_port_override: must be between 1 and 65535, got 0',
      'c.original_dst_lb_config.metadata_key: field not supported by Remora',
    ],
  );
  assert.deepEqual(errors({ type: 'STATIC', lb_policy: 'CLUSTER_PROVIDED', cleanup_interval: '1s' }), [
    'c.lb_policy: value "CLUSTER_PROVIDED" is not supported by Remora yet (supported: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV)',
    'c.cleanup_interval: only applies to clusters of type ORIGINAL_DST',
  ]);
});

test("upstream_bind_config: one source address per family, as Istio's inbound passthrough uses", () => {
  const c = valid({
    type: 'ORIGINAL_DST',
    upstream_bind_config: {
      source_address: { address: '127.0.0.6', port_value: 0 },
      extra_source_addresses: [{ address: { address: '::6', port_value: 0 } }],
    },
  });
  assert.deepEqual(c.upstreamBindAddresses, ['127.0.0.6', '::6']);
  assert.deepEqual(
    errors({
      upstream_bind_config: {
        source_address: { address: '127.0.0.6', port_value: 1234 },
        extra_source_addresses: [
          { address: { address: '127.0.0.7', port_value: 0 } },
          { address: { address: 'example.com', port_value: 0 } },
        ],
        freebind: true,
      },
    }),
    [
      'c.upstream_bind_config.source_address.port_value: must be 0: every upstream connection needs a port of its own',
      'c.upstream_bind_config.extra_source_addresses[1].address.address: a source address must be an IP address',
      'c.upstream_bind_config.freebind: field not supported by Remora',
    ],
  );
});

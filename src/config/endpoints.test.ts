// ClusterLoadAssignment translation: health_status (DEGRADED included) and the policy, every error with its path.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { translateCluster } from './cluster.js';
import { translateClusterLoadAssignment } from './endpoints.js';
import { DEFAULT_LOAD_ASSIGNMENT_POLICY } from './load_assignment_policy.js';
import { formatErrors } from './result.js';

const ep = (port: number, extra: Record<string, unknown> = {}) => ({
  endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: port } } },
  ...extra,
});

function eds(extra: Record<string, unknown>) {
  return translateClusterLoadAssignment(
    { cluster_name: 'web', endpoints: [{ lb_endpoints: [ep(80)] }], ...extra },
    '',
  );
}

function errorsOf(extra: Record<string, unknown>): string[] {
  const r = eds(extra);
  assert.ok(!r.ok, 'expected errors');
  return formatErrors(r.errors).split('\n');
}

describe('lb_endpoints[].health_status', () => {
  it('reads each status as Envoy does: UNKNOWN is HEALTHY, DRAINING and TIMEOUT are UNHEALTHY', () => {
    const statuses = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING', 'TIMEOUT', 'DEGRADED'];
    const r = translateClusterLoadAssignment(
      {
        cluster_name: 'web',
        endpoints: [{ lb_endpoints: [ep(1), ...statuses.map((s, i) => ep(i + 2, { health_status: s }))] }],
      },
      '',
    );
    assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
    assert.deepEqual(
      r.value.localities[0]!.endpoints.map((e) => e.health),
      ['HEALTHY', 'HEALTHY', 'HEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'UNHEALTHY', 'DEGRADED'],
    );
  });

  it('rejects a value Envoy does not have', () => {
    const r = translateClusterLoadAssignment(
      { cluster_name: 'web', endpoints: [{ lb_endpoints: [ep(80, { health_status: 'SICK' })] }] },
      'EDS["web"]',
    );
    assert.ok(!r.ok);
    assert.equal(
      formatErrors(r.errors),
      'EDS["web"].endpoints[0].lb_endpoints[0].health_status: unsupported value "SICK" (expected one of UNKNOWN, HEALTHY, UNHEALTHY, DRAINING, TIMEOUT, DEGRADED)',
    );
  });
});

describe('ClusterLoadAssignment.policy', () => {
  it('defaults: overprovisioning 140, no drops, never stale, health by host count', () => {
    for (const extra of [{}, { policy: {} }, { policy: null }]) {
      const r = eds(extra);
      assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
      assert.deepEqual(r.value.policy, DEFAULT_LOAD_ASSIGNMENT_POLICY);
    }
    assert.deepEqual(DEFAULT_LOAD_ASSIGNMENT_POLICY, {
      overprovisioningFactor: 140,
      dropOverload: undefined,
      endpointStaleAfterMs: undefined,
      weightedPriorityHealth: false,
    });
  });

  it('reads every field, in snake_case or camelCase', () => {
    const snake = eds({
      policy: {
        overprovisioning_factor: 100,
        drop_overloads: [
          { category: 'throttle', drop_percentage: { numerator: 25, denominator: 'TEN_THOUSAND' } },
        ],
        endpoint_stale_after: '2.5s',
        weighted_priority_health: true,
      },
    });
    assert.ok(snake.ok, snake.ok ? '' : formatErrors(snake.errors));
    assert.deepEqual(snake.value.policy, {
      overprovisioningFactor: 100,
      dropOverload: { category: 'throttle', perMillion: 2500 },
      endpointStaleAfterMs: 2500,
      weightedPriorityHealth: true,
    });
    const camel = eds({
      policy: {
        overprovisioningFactor: 100,
        dropOverloads: [
          { category: 'throttle', dropPercentage: { numerator: 25, denominator: 'TEN_THOUSAND' } },
        ],
        endpointStaleAfter: { seconds: 2, nanos: 500_000_000 },
        weightedPriorityHealth: true,
      },
    });
    assert.ok(camel.ok, camel.ok ? '' : formatErrors(camel.errors));
    assert.deepEqual(camel.value.policy, snake.value.policy);
  });

  it('reads drop_percentage as a FractionalPercent: HUNDRED by default, capped at 100%, absent = 0', () => {
    const drop = (percent: unknown) => {
      const r = eds({ policy: { drop_overloads: [{ category: 'lb', drop_percentage: percent }] } });
      assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
      return r.value.policy.dropOverload?.perMillion;
    };
    assert.equal(drop({ numerator: 100 }), 1_000_000);
    assert.equal(drop({ numerator: 50, denominator: 'HUNDRED' }), 500_000);
    assert.equal(drop({ numerator: 3, denominator: 'MILLION' }), 3);
    assert.equal(drop({ numerator: 150 }), 1_000_000);
    assert.equal(drop({}), 0);
    assert.equal(drop(undefined), 0);
  });

  it('reports every invalid field with its path', () => {
    assert.deepEqual(errorsOf({ policy: 'drop' }), ['policy: expected an object, got string']);
    assert.deepEqual(
      errorsOf({
        policy: {
          overprovisioning_factor: 0,
          endpoint_stale_after: '0s',
          weighted_priority_health: 'yes',
          disable_overprovisioning: true,
        },
      }),
      [
        'policy.overprovisioning_factor: must be between 1 and 4294967295, got 0',
        'policy.endpoint_stale_after: must be greater than 0s',
        'policy.weighted_priority_health: expected a boolean, got string',
        'policy.disable_overprovisioning: unknown field "disable_overprovisioning"',
      ],
    );
    assert.deepEqual(errorsOf({ policy: { endpoint_stale_after: '5' } }), [
      'policy.endpoint_stale_after: invalid duration "5": expected seconds with an "s" suffix, e.g. "5s" or "0.250s"',
    ]);
    assert.deepEqual(errorsOf({ policy: { drop_overloads: { category: 'lb' } } }), [
      'policy.drop_overloads: expected an array, got object',
    ]);
  });

  it('takes at most one drop_overloads category, as Envoy does', () => {
    assert.deepEqual(
      errorsOf({
        policy: {
          drop_overloads: [
            { category: 'throttle', drop_percentage: { numerator: 60 } },
            { category: 'lb', drop_percentage: { numerator: 50 } },
          ],
        },
      }),
      ['policy.drop_overloads: only one category is supported (as in Envoy), got 2'],
    );
  });

  it('reports an invalid drop_overloads entry with its path', () => {
    const drop = (entry: unknown) => errorsOf({ policy: { drop_overloads: [entry] } });
    assert.deepEqual(drop({ drop_percentage: { numerator: 1 } }), [
      'policy.drop_overloads[0].category: missing required field',
    ]);
    assert.deepEqual(drop({ category: '' }), ['policy.drop_overloads[0].category: must not be empty']);
    assert.deepEqual(drop({ category: 'lb', drop_percentage: { numerator: 5, denominator: 'THOUSAND' } }), [
      'policy.drop_overloads[0].drop_percentage.denominator: unsupported value "THOUSAND" (expected one of HUNDRED, TEN_THOUSAND, MILLION)',
    ]);
    assert.deepEqual(drop({ category: 'lb', drop_percentage: { numerator: -1 } }), [
      'policy.drop_overloads[0].drop_percentage.numerator: must be between 0 and 4294967295, got -1',
    ]);
    // envoy.type.v3.Percent is another message: its `value` is not a FractionalPercent field.
    assert.deepEqual(drop({ category: 'lb', drop_percentage: { value: 50 } }), [
      'policy.drop_overloads[0].drop_percentage.value: unknown field "value"',
    ]);
    assert.deepEqual(drop({ category: 'lb', drop_percentage: 50 }), [
      'policy.drop_overloads[0].drop_percentage: expected an object, got number',
    ]);
    assert.deepEqual(drop('lb'), ['policy.drop_overloads[0]: expected an object, got string']);
  });

  it('still rejects named_endpoints', () => {
    assert.deepEqual(errorsOf({ named_endpoints: { a: {} } }), [
      'named_endpoints: field not supported by Remora',
    ]);
  });
});

describe("a cluster's own load_assignment.policy", () => {
  const cluster = (type: string, policy: unknown) =>
    translateCluster(
      {
        name: 'c',
        type,
        load_assignment: {
          cluster_name: 'c',
          endpoints: [{ lb_endpoints: [ep(80)] }],
          policy,
        },
      },
      'clusters[0]',
    );

  it('applies to STATIC and STRICT_DNS clusters', () => {
    for (const type of ['STATIC', 'STRICT_DNS']) {
      const r = cluster(type, {
        overprovisioning_factor: 120,
        drop_overloads: [{ category: 'lb', drop_percentage: { numerator: 10 } }],
      });
      assert.ok(r.ok, r.ok ? '' : formatErrors(r.errors));
      assert.deepEqual(r.value.loadAssignmentPolicy, {
        ...DEFAULT_LOAD_ASSIGNMENT_POLICY,
        overprovisioningFactor: 120,
        dropOverload: { category: 'lb', perMillion: 100_000 },
      });
    }
    const plain = translateCluster({ name: 'c', type: 'STATIC' }, '');
    assert.ok(plain.ok);
    assert.deepEqual(plain.value.loadAssignmentPolicy, DEFAULT_LOAD_ASSIGNMENT_POLICY);
  });

  it('refuses endpoint_stale_after, which only an EDS assignment can honour', () => {
    const r = cluster('STATIC', { endpoint_stale_after: '5s' });
    assert.ok(!r.ok);
    assert.equal(
      formatErrors(r.errors),
      "clusters[0].load_assignment.policy.endpoint_stale_after: applies only to a ClusterLoadAssignment delivered by EDS: a cluster's own load_assignment never goes stale",
    );
  });

  it('reports policy errors under the cluster path', () => {
    const r = cluster('STATIC', { drop_overloads: [{}] });
    assert.ok(!r.ok);
    assert.equal(
      formatErrors(r.errors),
      'clusters[0].load_assignment.policy.drop_overloads[0].category: missing required field',
    );
  });
});

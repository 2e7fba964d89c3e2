import assert from 'node:assert/strict';
import { test } from 'node:test';
import { translateBootstrap } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';
import { formatJoinToken } from '../identity/join_token.js';
import { generatedBootstrap, metadataFromEnv } from './proxy_bootstrap.js';

// biome-ignore lint/suspicious/noExplicitAny: reading deep into generated JSON in assertions
type Json = Record<string, any>;

test('ISTIO_META_* and ISTIO_METAJSON_* become node metadata, as pilot-agent reads them', () => {
  assert.deepEqual(
    metadataFromEnv({
      ISTIO_META_INTERCEPTION_MODE: 'NONE',
      ISTIO_METAJSON_LABELS: '{"app":"web"}',
      PATH: '/bin',
    }),
    { INTERCEPTION_MODE: 'NONE', LABELS: { app: 'web' } },
  );
  assert.match(metadataFromEnv({ ISTIO_METAJSON_LABELS: '{' }) as string, /^ISTIO_METAJSON_LABELS: not JSON/);
});

test('with a workload identity: mTLS to the control plane, the node claims the identity', () => {
  const identity = {
    caAddress: 'cp.mesh:15012',
    credential: () => 'unused',
    identity: { namespace: 'shop', serviceAccount: 'web' },
  };
  const raw = generatedBootstrap(
    { xdsAddress: 'cp.mesh:15012', adminPort: 15100, labels: { app: 'web' } },
    identity,
    { ISTIO_META_NAMESPACE: 'bank', ISTIO_META_INTERCEPTION_MODE: 'NONE' },
  ) as Json;
  assert.equal(typeof raw, 'object', String(raw));
  assert.deepEqual(raw.node.metadata, {
    INTERCEPTION_MODE: 'NONE',
    NAMESPACE: 'shop',
    SERVICE_ACCOUNT: 'web',
    LABELS: { app: 'web' },
  });
  assert.match(raw.node.id, /\.shop$/);
  const cluster = raw.static_resources.clusters[0];
  assert.equal(
    cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address,
    'cp.mesh',
  );
  const ctx = cluster.transport_socket.typed_config.common_tls_context;
  assert.deepEqual(ctx.tls_certificate_sds_secret_configs, [{ name: 'default' }]);
  assert.deepEqual(ctx.combined_validation_context.validation_context_sds_secret_config, { name: 'ROOTCA' });
  assert.deepEqual(ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names, [
    { san_type: 'DNS', matcher: { exact: 'cp.mesh' } },
  ]);
  const valid = translateBootstrap(raw, { localSecrets: ['default', 'ROOTCA'] });
  assert.ok(valid.ok, valid.ok ? '' : formatErrors(valid.errors));
  assert.ok(valid.value.clusters[0]!.tls !== undefined);
  // Without the workload identity the validator refuses the secrets: nobody would supply them.
  assert.equal(translateBootstrap(raw).ok, false);
});

test('the identity comes from the join token; an IP address is verified as an IP SAN; no CA: plaintext', () => {
  const token = formatJoinToken({
    id: '0123456789abcdef',
    secret: 'a'.repeat(43),
    caPin: `sha256:${'b'.repeat(64)}`,
    identity: { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'api' },
  });
  const raw = generatedBootstrap(
    { xdsAddress: '[::1]:15012', nodeId: 'api-1' },
    { caAddress: '[::1]:15012', credential: () => token },
    {},
  ) as Json;
  assert.equal(typeof raw, 'object', String(raw));
  assert.equal(raw.node.id, 'api-1');
  assert.equal(raw.node.metadata.SERVICE_ACCOUNT, 'api');
  const sans =
    raw.static_resources.clusters[0].transport_socket.typed_config.common_tls_context
      .combined_validation_context.default_validation_context.match_typed_subject_alt_names;
  assert.deepEqual(sans, [{ san_type: 'IP_ADDRESS', matcher: { exact: '::1' } }]);

  const plain = generatedBootstrap({ xdsAddress: '127.0.0.1:15010' }, undefined, {}) as Json;
  assert.equal(plain.static_resources.clusters[0].transport_socket, undefined);
  assert.deepEqual(plain.node.metadata, { NAMESPACE: 'default' });
  assert.ok(translateBootstrap(plain).ok);

  assert.match(
    generatedBootstrap({ xdsAddress: 'nowhere' }, undefined, {}) as string,
    /--xds-address "nowhere" is not host:port/,
  );
});

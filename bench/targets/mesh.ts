// The sidecar pair of the mesh scenario: client sidecar (HTTP listener -> cluster with mutual TLS) and server
// sidecar (TLS listener requiring a client certificate -> the upstream), run by Remora or, when installed, Envoy
// from the same two static Envoy bootstraps.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type IdentityFiles,
  type MeshCerts,
  SERVER_ID,
  TRUST_DOMAIN,
  writeMeshCerts,
} from '../mesh-certs.js';
import { freePort, lastLine, type Managed, spawnManaged, waitReady, which } from '../proc.js';
import { remoraCommand, unavailable as remoraUnavailable } from './remora.js';
import type { BenchEnv, RunningTarget, Target } from './target.js';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const TLS_INSPECTOR = 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';
const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
const DOWNSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext';

/** The service the client calls, named as Istio names its outbound cluster and SNI. */
const SERVICE_HOST = 'server.bench.svc.cluster.local';
const SERVICE_PORT = 8080;

/** TLS 1.2 at least, 1.3 offered by both sides (Envoy's client default stops at 1.2; Istio raises it). */
const TLS_PARAMS = '{ tls_minimum_protocol_version: TLSv1_2, tls_maximum_protocol_version: TLSv1_3 }';

/** The identity's certificate (`default`) and the trust bundle (`ROOTCA`) as static secrets, named as Istio's SDS. */
function secretsYaml(id: IdentityFiles, root: string): string {
  return `  secrets:
  - name: default
    tls_certificate: { certificate_chain: { filename: ${id.cert} }, private_key: { filename: ${id.key} } }
  - name: ROOTCA
    validation_context: { trusted_ca: { filename: ${root} } }
`;
}

function hcmYaml(statPrefix: string, cluster: string, indent: string): string {
  return `${indent}- name: envoy.filters.network.http_connection_manager
${indent}  typed_config:
${indent}    "@type": ${HCM}
${indent}    stat_prefix: ${statPrefix}
${indent}    route_config:
${indent}      virtual_hosts: [{ name: all, domains: ["*"], routes: [{ match: { prefix: "/" }, route: { cluster: "${cluster}" } }] }]
${indent}    http_filters: [{ name: envoy.filters.http.router, typed_config: { "@type": ${ROUTER} } }]
`;
}

const endpointYaml = (cluster: string, port: number): string =>
  `{ cluster_name: "${cluster}", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } } }] }] }`;

const adminYaml = (port: number): string =>
  `admin: { address: { socket_address: { address: 127.0.0.1, port_value: ${port} } } }\n`;

/**
 * The client sidecar: plaintext HTTP from the app, then Istio's outbound cluster shape: mutual TLS with the workload
 * certificate, the server verified against ROOTCA and by its SPIFFE ID, ALPN as Istio's istio.alpn filter sets it
 * for HTTP/1.1, SNI as Istio names it. Connections to the server sidecar stay open between requests (keep-alive).
 */
export function clientSidecarBootstrap(p: {
  adminPort: number;
  listenPort: number;
  serverSidecarPort: number;
  certs: MeshCerts;
}): string {
  const cluster = `outbound|${SERVICE_PORT}||${SERVICE_HOST}`;
  return `${adminYaml(p.adminPort)}static_resources:
${secretsYaml(p.certs.client, p.certs.root)}  listeners:
  - name: outbound_${SERVICE_PORT}
    address: { socket_address: { address: 127.0.0.1, port_value: ${p.listenPort} } }
    filter_chains:
    - filters:
${hcmYaml(`outbound_${SERVICE_PORT}`, cluster, '      ')}  clusters:
  - name: "${cluster}"
    type: STATIC
    connect_timeout: 10s
    load_assignment: ${endpointYaml(cluster, p.serverSidecarPort)}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": ${UPSTREAM_TLS}
        sni: outbound_.${SERVICE_PORT}_._.${SERVICE_HOST}
        common_tls_context:
          tls_params: ${TLS_PARAMS}
          alpn_protocols: [istio-http/1.1, istio]
          tls_certificate_sds_secret_configs: [{ name: default }]
          combined_validation_context:
            default_validation_context:
              match_typed_subject_alt_names: [{ san_type: URI, matcher: { exact: "${SERVER_ID}" } }]
            validation_context_sds_secret_config: { name: ROOTCA }
`;
}

/**
 * The server sidecar: Istio's inbound shape for HTTP inside mutual TLS: tls_inspector, a chain matched on TLS and
 * Istio's HTTP ALPN values, a client certificate required and verified against ROOTCA and the trust domain, then
 * plaintext HTTP/1.1 with keep-alive to the app. No alpn_protocols of its own: Istio's inbound context offers
 * [h2, http/1.1], which Envoy passes over when the client asks only for Istio's values, but Node refuses the
 * handshake when the lists share nothing (src/dataplane/tls/downstream.ts).
 */
export function serverSidecarBootstrap(p: {
  adminPort: number;
  listenPort: number;
  upstreamPort: number;
  certs: MeshCerts;
}): string {
  const cluster = `inbound|${SERVICE_PORT}||`;
  return `${adminYaml(p.adminPort)}static_resources:
${secretsYaml(p.certs.server, p.certs.root)}  listeners:
  - name: virtualInbound
    address: { socket_address: { address: 127.0.0.1, port_value: ${p.listenPort} } }
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: { "@type": ${TLS_INSPECTOR} }
    filter_chains:
    - filter_chain_match:
        transport_protocol: tls
        application_protocols: [istio-http/1.0, istio-http/1.1, istio-h2]
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": ${DOWNSTREAM_TLS}
          require_client_certificate: true
          common_tls_context:
            tls_params: ${TLS_PARAMS}
            tls_certificate_sds_secret_configs: [{ name: default }]
            combined_validation_context:
              default_validation_context:
                match_typed_subject_alt_names: [{ san_type: URI, matcher: { prefix: "spiffe://${TRUST_DOMAIN}/" } }]
              validation_context_sds_secret_config: { name: ROOTCA }
      filters:
${hcmYaml(`inbound_${SERVICE_PORT}`, cluster, '      ')}  clusters:
  - name: "${cluster}"
    type: STATIC
    connect_timeout: 10s
    load_assignment: ${endpointYaml(cluster, p.upstreamPort)}
`;
}

/** How one implementation runs a sidecar from a bootstrap file. */
interface SidecarRunner {
  command: string;
  args(bootstrap: string): string[];
}

/** Writes certificates and both bootstraps under `<tmpDir>/<name>/`, starts server then client sidecar. */
async function startPair(name: string, env: BenchEnv, runner: SidecarRunner): Promise<RunningTarget> {
  const dir = join(env.tmpDir, name);
  mkdirSync(dir, { recursive: true });
  const certs = await writeMeshCerts(dir);
  const [clientPort, clientAdmin, serverPort, serverAdmin] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const serverFile = join(dir, 'server-sidecar.yaml');
  writeFileSync(
    serverFile,
    serverSidecarBootstrap({
      adminPort: serverAdmin,
      listenPort: serverPort,
      upstreamPort: env.upstreamPort,
      certs,
    }),
  );
  const clientFile = join(dir, 'client-sidecar.yaml');
  writeFileSync(
    clientFile,
    clientSidecarBootstrap({
      adminPort: clientAdmin,
      listenPort: clientPort,
      serverSidecarPort: serverPort,
      certs,
    }),
  );
  const procs: Managed[] = [];
  try {
    // Both sidecars share the proxy core: the load and the upstream keep the other one.
    const server = spawnManaged(`${name}-server`, runner.command, runner.args(serverFile), env.proxyCpu);
    procs.push(server);
    await waitReady(server, { ports: [serverPort], url: `http://127.0.0.1:${serverAdmin}/ready` }, 15_000);
    const client = spawnManaged(`${name}-client`, runner.command, runner.args(clientFile), env.proxyCpu);
    procs.push(client);
    await waitReady(client, { ports: [clientPort], url: `http://127.0.0.1:${clientAdmin}/ready` }, 15_000);
  } catch (err) {
    await Promise.all(procs.map((p) => p.stop()));
    throw err;
  }
  return {
    endpoints: { meshPort: clientPort },
    pid: procs[1]!.pid,
    pids: [procs[1]!.pid, procs[0]!.pid],
    health: () => {
      const dead = procs.find((p) => p.exited !== undefined);
      if (dead === undefined) return undefined;
      return `${dead.name} exited (${dead.exited!.signal ?? `code ${dead.exited!.code}`}): ${lastLine(dead.output())}`;
    },
    output: () => procs.map((p) => `[${p.name}]\n${p.output()}`).join('\n'),
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
}

export const remoraMesh: Target = {
  name: 'remora-mesh',
  protocols: ['mesh'],
  unavailable: remoraUnavailable,
  start: (env) =>
    startPair('remora-mesh', env, {
      command: remoraCommand([]).command,
      args: (bootstrap) => remoraCommand(['proxy', '-c', bootstrap]).args,
    }),
};

const envoyPath = which('envoy');

export const envoyMesh: Target = {
  name: 'envoy-mesh',
  protocols: ['mesh'],
  unavailable: () => (envoyPath === undefined ? 'envoy not installed (no envoy on PATH)' : undefined),
  // One worker thread each: both sidecars share one core, as the Remora pair does.
  start: (env) =>
    startPair('envoy-mesh', env, {
      command: envoyPath!,
      args: (bootstrap) => ['-c', bootstrap, '--concurrency', '1', '--disable-hot-restart', '-l', 'warning'],
    }),
};

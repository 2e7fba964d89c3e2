// `remora proxy --xds-address`: the bootstrap made from flags instead of a file. Its node claims the workload
// identity the sidecar gets from the CA, and with that identity its ADS goes over mTLS.

import { hostname } from 'node:os';
import type { WorkloadIdentityConfig } from '../dataplane/identity/workload_identity.js';
import { identityFromKubernetesToken } from '../identity/client.js';
import { parseJoinToken } from '../identity/join_token.js';
import type { WorkloadIdentity } from '../identity/spiffe.js';
import { adsBootstrap } from './ads_bootstrap.js';

export interface GeneratedBootstrapFlags {
  /** `host:port` or `[v6]:port` of the control plane. */
  readonly xdsAddress: string;
  /** Default `<hostname>.<namespace>`. */
  readonly nodeId?: string;
  /** Default 15000. */
  readonly adminPort?: number;
  /** The workload's labels (node metadata LABELS): they choose its Sidecar and the Services it serves. */
  readonly labels?: Readonly<Record<string, string>>;
  /** ADS in delta form. */
  readonly delta?: boolean;
}

/**
 * Node metadata from the environment, as Istio's pilot-agent reads it: `ISTIO_META_<KEY>=text` and
 * `ISTIO_METAJSON_<KEY>=<JSON>` (`ISTIO_META_INTERCEPTION_MODE=NONE`, `ISTIO_METAJSON_LABELS={"app":"web"}`).
 */
export function metadataFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> | string {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (value === undefined) continue;
    const json = /^ISTIO_METAJSON_(.+)$/.exec(name);
    if (json !== null) {
      try {
        out[json[1]!] = JSON.parse(value);
      } catch (err) {
        return `${name}: not JSON: ${(err as Error).message}`;
      }
      continue;
    }
    const text = /^ISTIO_META_(.+)$/.exec(name);
    if (text !== null) out[text[1]!] = value;
  }
  return out;
}

const DEFAULT_ADMIN_PORT = 15000;

/**
 * The bootstrap for a control plane at `xdsAddress`. Its node metadata is the environment's `ISTIO_META_*`, the
 * labels, and, with a workload identity (`--ca-address`), that identity's namespace and service account; ADS then
 * goes over mTLS with the workload certificate, verifying the control plane by the host it is dialled at (the CA
 * port 15012 serves both). Without one, plaintext ADS (the development port 15010) and the namespace of
 * `ISTIO_META_NAMESPACE`, else `default`. Returns the bootstrap, or why it cannot be made.
 */
export function generatedBootstrap(
  flags: GeneratedBootstrapFlags,
  identity: WorkloadIdentityConfig | undefined,
  env: NodeJS.ProcessEnv = process.env,
): Record<string, unknown> | string {
  const fromEnv = metadataFromEnv(env);
  if (typeof fromEnv === 'string') return fromEnv;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(flags.xdsAddress) ?? /^([^:[\]]+):(\d+)$/.exec(flags.xdsAddress);
  const port = Number(m?.[2]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535)
    return `--xds-address ${JSON.stringify(flags.xdsAddress)} is not host:port (or [ipv6]:port)`;
  const host = m[1]!;
  let who: WorkloadIdentity | undefined;
  if (identity !== undefined) {
    try {
      who = claimedIdentity(identity);
    } catch (err) {
      return (err as Error).message;
    }
    if (who === undefined)
      return '--xds-address: the credential names no identity: give --namespace and --service-account';
  }
  const envNamespace = typeof fromEnv.NAMESPACE === 'string' ? fromEnv.NAMESPACE : undefined;
  const namespace = who?.namespace ?? envNamespace ?? 'default';
  // The identity's namespace and service account win: on the mTLS port a node claiming others is refused.
  const metadata: Record<string, unknown> = {
    ...fromEnv,
    NAMESPACE: namespace,
    ...(who !== undefined && { SERVICE_ACCOUNT: who.serviceAccount }),
    ...(flags.labels !== undefined && Object.keys(flags.labels).length > 0 && { LABELS: flags.labels }),
  };
  return adsBootstrap({
    node: { id: flags.nodeId ?? `${hostname()}.${namespace}`, cluster: who?.serviceAccount ?? '', metadata },
    adminPort: flags.adminPort ?? DEFAULT_ADMIN_PORT,
    controlPlanes: [{ address: host, port }],
    ...(flags.delta === true && { delta: true }),
    ...(identity !== undefined && { tls: { serverNames: [host] } }),
  });
}

/** The identity the sidecar will hold: the one asked for, else the one its credential names. */
function claimedIdentity(identity: WorkloadIdentityConfig): WorkloadIdentity | undefined {
  if (identity.identity !== undefined) return identity.identity;
  const token = identity.credential();
  const join = parseJoinToken(token);
  if (join !== undefined) return join.identity;
  return identityFromKubernetesToken(token);
}

// The gate of ADS on the CA's TLS port (Istio's 15012): a stream needs a client certificate of this mesh, and gets
// only the configuration of the workload that certificate names.

import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { formatErrors } from '../../config/result.js';
import type { ParsedSpiffeId } from '../../identity/spiffe.js';
import { spiffeId } from '../../identity/spiffe.js';
import type { NodeJson } from '../../xds/protos.js';
import { clientIdentity, type MeshTrust } from '../ca/client_certificate.js';
import { proxyIdentity } from '../generator/identity.js';
import type { AdsGuard } from './ads_server.js';
import type { NodeAdmission, StreamRefusal } from './stream_state.js';

export const XDS_UNAUTHENTICATED = 'REMORA_ERR_XDS_UNAUTHENTICATED';
export const XDS_IDENTITY_MISMATCH = 'REMORA_ERR_XDS_IDENTITY_MISMATCH';

/** Counters of the authenticated port: streams admitted, and refused by why. */
export const WORKLOAD_GUARD_STATS = ['admitted', 'unauthenticated', 'permission_denied'] as const;
export type WorkloadGuardStat = (typeof WORKLOAD_GUARD_STATS)[number];

export type GuardLog = (level: 'info' | 'warning' | 'error', message: string) => void;

/**
 * Who may stream: a caller whose TLS client certificate leads to the mesh's roots (the handshake checked that;
 * grpc-js shows a handler no other) and carries exactly one SPIFFE ID of the trust domain. Its node must then claim
 * that identity: the node's namespace (metadata NAMESPACE, or what its id says) must be the certificate's, and a
 * SERVICE_ACCOUNT, when given, the certificate's. A refusal is counted, logged, and told to the client.
 */
export class WorkloadGuard implements AdsGuard {
  private readonly counters = new Map<WorkloadGuardStat, number>(WORKLOAD_GUARD_STATS.map((s) => [s, 0]));

  constructor(
    private readonly trust: MeshTrust,
    private readonly log: GuardLog = () => undefined,
  ) {}

  open(
    call: grpc.ServerDuplexStream<unknown, unknown>,
  ): { refused: StreamRefusal } | { admit: NodeAdmission } {
    const peer = call.getPeer();
    const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
    let problem: string;
    if (raw === undefined) {
      problem =
        "no client certificate issued by this mesh's CA (none was sent, or it does not lead to the mesh's roots)";
    } else {
      let cert: X509Certificate | undefined;
      try {
        cert = new X509Certificate(raw);
      } catch (err) {
        problem = `the client certificate cannot be read: ${(err as Error).message}`;
      }
      if (cert !== undefined) {
        const who = clientIdentity(cert, this.trust);
        if (who.ok) return { admit: (node) => this.admit(who.id, cert.serialNumber, node, peer) };
        problem = who.problem;
      }
    }
    this.count('unauthenticated');
    this.log('warning', `xDS: refused a stream from ${peer}: ${problem!} [${XDS_UNAUTHENTICATED}]`);
    return {
      refused: {
        code: grpc.status.UNAUTHENTICATED,
        details:
          `${XDS_UNAUTHENTICATED}: this port serves xDS only over mTLS with a workload certificate of this mesh: ` +
          `${problem!}`,
      },
    };
  }

  stats(): Record<WorkloadGuardStat, number> {
    return Object.fromEntries(this.counters) as Record<WorkloadGuardStat, number>;
  }

  private admit(id: ParsedSpiffeId, serial: string, node: NodeJson, peer: string): StreamRefusal | undefined {
    const problem = identityProblem(id, node);
    const cert = `${spiffeId(id.trustDomain, id)} (client certificate ${serial})`;
    if (problem === undefined) {
      this.count('admitted');
      this.log('info', `xDS: ${peer} streams as ${cert}, node ${JSON.stringify(node.id ?? '')}`);
      return undefined;
    }
    this.count('permission_denied');
    this.log(
      'warning',
      `xDS: refused node ${JSON.stringify(node.id ?? '')} from ${peer} as ${cert}: ${problem} [${XDS_IDENTITY_MISMATCH}]`,
    );
    return { code: grpc.status.PERMISSION_DENIED, details: `${XDS_IDENTITY_MISMATCH}: ${problem}` };
  }

  private count(stat: WorkloadGuardStat): void {
    this.counters.set(stat, (this.counters.get(stat) ?? 0) + 1);
  }
}

/** Why `node` may not have the configuration of the workload `id` names; undefined when it may. */
export function identityProblem(id: ParsedSpiffeId, node: NodeJson): string | undefined {
  const p = proxyIdentity(node);
  if (!p.ok) return `the node cannot be read: ${formatErrors(p.errors).replace(/\n/g, '; ')}`;
  const who = spiffeId(id.trustDomain, id);
  if (p.value.namespace !== id.namespace)
    return `the node claims namespace ${JSON.stringify(p.value.namespace)}, but its certificate is ${who} (namespace ${JSON.stringify(id.namespace)})`;
  const sa = p.value.serviceAccount;
  if (sa !== undefined && sa !== id.serviceAccount)
    return `the node claims service account ${JSON.stringify(sa)}, but its certificate is ${who} (service account ${JSON.stringify(id.serviceAccount)})`;
  return undefined;
}

const HELP: Readonly<Record<WorkloadGuardStat, string>> = {
  admitted: 'ADS streams on the mTLS port whose node matched its client certificate.',
  unauthenticated: 'ADS streams on the mTLS port refused: no client certificate of this mesh.',
  permission_denied:
    'ADS streams on the mTLS port refused: the node claims another identity than its certificate.',
};

/** The guard's counters in Prometheus text format, as `remora_xds_mtls_<stat>_total`. */
export function renderGuardMetrics(stats: Readonly<Record<WorkloadGuardStat, number>>): string {
  let out = '';
  for (const s of WORKLOAD_GUARD_STATS) {
    const name = `remora_xds_mtls_${s}_total`;
    out += `# HELP ${name} ${HELP[s]}\n# TYPE ${name} counter\n${name} ${stats[s]}\n`;
  }
  return out;
}

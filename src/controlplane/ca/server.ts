// The CA service: Istio's IstioCertificateService/CreateCertificate over gRPC and TLS (Istio's port 15012).

import * as grpc from '@grpc/grpc-js';
import {
  type CertificateRequest,
  type CertificateResponse,
  certificateService,
} from '../../identity/ca_proto.js';
import type { Authenticator } from './authenticate.js';
import type { CertificateAuthority } from './authority.js';
import { checkCsr } from './csr_check.js';
import { CaRefusal, Refusals, refuse } from './errors.js';
import type { CaLog } from './root_store.js';

export const DEFAULT_CA_PORT = 15012;
/** How long close() lets calls in flight finish. */
const SHUTDOWN_GRACE_MS = 2000;

/** The CA's counters, in Envoy's vocabulary (and Istio's meaning of citadel_server_*). */
export const CA_STATS = [
  'csr_total',
  'cert_issued',
  'authn_failure',
  'identity_denied',
  'csr_invalid',
  'unavailable',
  'internal_error',
] as const;
export type CaStat = (typeof CA_STATS)[number];

const CA_STAT_HELP: Readonly<Record<CaStat, string>> = {
  csr_total: 'Certificate signing requests received.',
  cert_issued: 'Certificates issued.',
  authn_failure: 'Requests refused: no valid credential.',
  identity_denied:
    'Requests refused: the CSR asks for an identity the credential does not prove, or for a CA.',
  csr_invalid: 'Requests refused: the CSR is malformed or breaks the signing rules.',
  unavailable: 'Requests refused while the CA could not serve them.',
  internal_error: 'Requests that failed inside the CA.',
};

/** The CA's counters in Prometheus text format, as `remora_ca_<stat>_total` (`remora_ca_csr_total`). */
export function renderCaMetrics(stats: Readonly<Record<CaStat, number>>): string {
  let out = '';
  for (const s of CA_STATS) {
    const name = `remora_ca_${s.replace(/_total$/, '')}_total`;
    out += `# HELP ${name} ${CA_STAT_HELP[s]}\n# TYPE ${name} counter\n${name} ${stats[s]}\n`;
  }
  return out;
}

export interface CaServerOptions {
  readonly authority: CertificateAuthority;
  readonly authenticator: Authenticator;
  /** DNS names and IPs of the service's own certificate (see serverNames()). */
  readonly names: readonly string[];
  /** Default 0.0.0.0. */
  readonly host?: string;
  /** Default 15012; 0 picks a free port. */
  readonly port?: number;
  readonly log?: CaLog;
  /**
   * Adds more services to the CA's gRPC server before it is bound (the control plane's ADS, as istiod serves xDS
   * and the CA on 15012). They share its TLS: the client certificate is asked for, never required, and a handler
   * sees it only when it leads to the mesh's roots.
   */
  readonly alsoServe?: (server: grpc.Server) => void;
}

/**
 * Serves CreateCertificate: authenticate the caller, check its CSR against the identity it proved, spend its
 * credential (a join token's use), sign. Every refusal is answered with a gRPC status and `<code>: <reason>`, and
 * logged with the caller's address and credential; every issuance is logged with its serial.
 */
export class CaServer {
  private readonly counters = new Map<CaStat, number>(CA_STATS.map((s) => [s, 0]));
  private boundPort = 0;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: grpc.Server,
    private readonly opts: CaServerOptions,
  ) {
    server.addService(certificateService(), {
      CreateCertificate: (
        call: grpc.ServerUnaryCall<CertificateRequest, CertificateResponse>,
        callback: grpc.sendUnaryData<CertificateResponse>,
      ) => {
        void this.createCertificate(call).then(
          (response) => callback(null, response),
          (err: grpc.ServiceError) => callback(err),
        );
      },
    });
  }

  static async listen(opts: CaServerOptions): Promise<CaServer> {
    const server = new grpc.Server(
      opts.alsoServe === undefined
        ? { 'grpc.max_receive_message_length': 64 * 1024 }
        : {
            // ADS requests name every cluster and route a proxy needs, and its streams live for hours.
            'grpc.max_receive_message_length': 4 * 1024 * 1024,
            'grpc.keepalive_time_ms': 30_000,
            'grpc.keepalive_permit_without_calls': 1,
            'grpc.http2.min_ping_interval_without_data_ms': 10_000,
          },
    );
    const ca = new CaServer(server, opts);
    opts.alsoServe?.(server);
    const { certChainPem, keyPem } = await opts.authority.serverCertificate(opts.names);
    // The client certificate of a renewal is requested, not required, and verified against the bundle and chain.
    const clientCas = [...opts.authority.issuerChain(), ...opts.authority.roots];
    const creds = new OptionalClientCertificate(
      clientCas.map((c) => c.toString()).join(''),
      certChainPem,
      keyPem,
    );
    const host = opts.host ?? '0.0.0.0';
    const port = opts.port ?? DEFAULT_CA_PORT;
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    try {
      ca.boundPort = await new Promise<number>((resolve, reject) =>
        server.bindAsync(address, creds, (err, p) => (err ? reject(err) : resolve(p))),
      );
    } catch (err) {
      await ca.close();
      throw new Error(`CA port ${address}: ${(err as Error).message}`);
    }
    return ca;
  }

  get port(): number {
    return this.boundPort;
  }

  stats(): Record<CaStat, number> {
    return Object.fromEntries(this.counters) as Record<CaStat, number>;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.server.forceShutdown(), SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return this.closing;
  }

  private count(stat: CaStat): void {
    this.counters.set(stat, (this.counters.get(stat) ?? 0) + 1);
  }

  private log(level: 'info' | 'warning' | 'error', message: string): void {
    this.opts.log?.(level, message);
  }

  private async createCertificate(
    call: grpc.ServerUnaryCall<CertificateRequest, CertificateResponse>,
  ): Promise<CertificateResponse> {
    this.count('csr_total');
    const peer = call.getPeer();
    const peerCert = call.getAuthContext()?.sslPeerCertificate;
    let via = this.opts.authenticator.describe(call.metadata, peerCert);
    try {
      const caller = await this.opts.authenticator.authenticate(call.metadata, peerCert);
      via = caller.via;
      const req = call.request;
      if (req.metadata?.fields?.ImpersonatedIdentity !== undefined)
        refuse(Refusals.identityMismatch, 'impersonation (ImpersonatedIdentity) is not supported');
      const publicKey = await checkCsr(typeof req.csr === 'string' ? req.csr : '', caller.spiffeId);
      await caller.commit();
      const issued = await this.opts.authority.issueWorkload(
        publicKey,
        caller.spiffeId,
        Number(req.validity_duration),
      );
      this.count('cert_issued');
      this.log(
        'info',
        `CA: issued ${caller.spiffeId} serial ${issued.leaf.serialNumber} until ${new Date(issued.leaf.validTo).toISOString()} to ${peer} (${via})`,
      );
      return { cert_chain: issued.certChain };
    } catch (err) {
      if (err instanceof CaRefusal) {
        this.count(statOf(err));
        this.log('warning', `CA: refused a certificate to ${peer} (${via}): ${err.message} [${err.code}]`);
        throw serviceError(err.kind.grpc, `${err.code}: ${err.message}`);
      }
      this.count('internal_error');
      this.log('error', `CA: failed a request from ${peer} (${via}): ${(err as Error).stack ?? String(err)}`);
      throw serviceError(grpc.status.INTERNAL, 'REMORA_ERR_CA_INTERNAL: the CA failed to sign; see its log');
    }
  }
}

/**
 * TLS that asks for a client certificate without requiring one: a first request comes with a token and no
 * certificate, a renewal with the certificate. (`ServerCredentials.createSsl` either never asks or requires one.)
 * Node verifies a certificate that is sent against `ca`; grpc-js shows a handler only a verified one.
 */
class OptionalClientCertificate extends grpc.ServerCredentials {
  constructor(ca: string, certChain: string, key: string) {
    super(
      { requestCert: true, rejectUnauthorized: false },
      { ca, cert: certChain, key, minVersion: 'TLSv1.2' },
    );
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function statOf(err: CaRefusal): CaStat {
  switch (err.kind) {
    case Refusals.identityMismatch:
    case Refusals.caRequested:
      return 'identity_denied';
    case Refusals.badCsr:
      return 'csr_invalid';
    case Refusals.unavailable:
      return 'unavailable';
    default:
      return 'authn_failure';
  }
}

function serviceError(code: grpc.status, details: string): Partial<grpc.ServiceError> {
  return { code, details, message: details, metadata: new grpc.Metadata() };
}

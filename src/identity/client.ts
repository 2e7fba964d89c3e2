// Getting a workload certificate from the control plane's CA: the key is made here, a CSR for the workload's
// SPIFFE ID is sent over TLS with a credential, and the answer is checked before it is returned.

import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import {
  type CertificateRequest,
  type CertificateResponse,
  CREATE_CERTIFICATE_PATH,
  certificateService,
} from './ca_proto.js';
import { verifyChain } from './chain.js';
import { makeKeyAndCsr } from './csr.js';
import { looksLikeJoinToken, parseJoinToken } from './join_token.js';
import { isSelfSigned, normalizePin, parseCertificates, spkiPin } from './pem.js';
import { DEFAULT_TRUST_DOMAIN, parseSpiffeId, spiffeId, type WorkloadIdentity } from './spiffe.js';

export interface CertificateRequestOptions {
  /** The CA service: `host:port`, `[v6]:port`. */
  readonly address: string;
  /**
   * The credential, sent as `authorization: Bearer <token>`: a join token (`remora token create`) or a Kubernetes
   * service-account token (audience `istio-ca`).
   */
  readonly token?: string;
  /**
   * Renewal: the certificate the workload holds, presented as a TLS client certificate instead of a token. The CA
   * signs the identity it names.
   */
  readonly currentCertificate?: { readonly certChainPem: string; readonly keyPem: string };
  /** Default: the join token's, the Kubernetes token's (`sub`), or the current certificate's. */
  readonly identity?: WorkloadIdentity;
  /** Default: the join token's or the current certificate's, else `cluster.local`. */
  readonly trustDomain?: string;
  /** Trust the CA whose certificate leads to one of these roots (PEM bundle)... */
  readonly rootsPem?: string;
  /** ...or to the certificate with this SubjectPublicKeyInfo pin (`sha256:<hex>`); default: the join token's. */
  readonly caPin?: string;
  /** The name to verify in the CA's certificate when `address` is not one it carries. */
  readonly serverName?: string;
  /** Requested lifetime in seconds; the CA caps it at its own maximum. Default: the CA's maximum. */
  readonly validitySeconds?: number;
  /** For the whole exchange; default 15 s. */
  readonly timeoutMs?: number;
}

/** What a sidecar needs for its SDS secrets `default` (chain + key) and `ROOTCA` (roots). */
export interface WorkloadCertificate {
  readonly spiffeId: string;
  /** PEM: the leaf first, then any intermediates; no root. */
  readonly certChainPem: string;
  /** PKCS#8 PEM, made in this process. */
  readonly keyPem: string;
  /** PEM: every root the mesh trusts now (two during a root rotation). */
  readonly rootsPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Upper-case hex, as Node's X509Certificate shows it. */
  readonly serialNumber: string;
}

export type IdentityErrorCode =
  | 'REMORA_ERR_IDENTITY_OPTIONS'
  | 'REMORA_ERR_IDENTITY_CA_UNREACHABLE'
  | 'REMORA_ERR_IDENTITY_PIN_MISMATCH'
  | 'REMORA_ERR_IDENTITY_REFUSED'
  | 'REMORA_ERR_IDENTITY_BAD_RESPONSE';

export class IdentityError extends Error {
  constructor(
    readonly code: IdentityErrorCode,
    message: string,
    /** The gRPC status of a refusal (16 UNAUTHENTICATED, 7 PERMISSION_DENIED, 3 INVALID_ARGUMENT ...). */
    readonly grpcCode?: number,
  ) {
    super(`${code}: ${message}`);
    this.name = 'IdentityError';
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;

/**
 * Asks the CA at `address` for a certificate. Trust in the CA comes first: with a pin (a join token's), a TLS
 * handshake that sends nothing fetches the CA's chain, and nothing more happens unless a certificate in it has the
 * pinned key; that certificate then verifies the real connection like any root. The credential goes only over a
 * connection so verified. The answer must be for this key and this SPIFFE ID and lead to the roots it carries.
 */
export async function requestCertificate(opts: CertificateRequestOptions): Promise<WorkloadCertificate> {
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const id = whoAmI(opts);
  const target = parseAddress(opts.address);
  const trustRoots = opts.rootsPem ?? (await pinnedRoot(opts, target, deadline));
  const keyAndCsr = await makeKeyAndCsr(id);
  const response = await call(opts, trustRoots, deadline, {
    csr: keyAndCsr.csrPem,
    validity_duration: Math.max(0, Math.floor(opts.validitySeconds ?? 0)),
  });
  return checkResponse(response, id, keyAndCsr.publicKeySpki, keyAndCsr.keyPem);
}

/** The SPIFFE ID to ask for, from the options or the credential. */
function whoAmI(opts: CertificateRequestOptions): string {
  if (opts.token === undefined && opts.currentCertificate === undefined)
    throw new IdentityError('REMORA_ERR_IDENTITY_OPTIONS', 'give a token or the current certificate');
  const join =
    opts.token !== undefined && looksLikeJoinToken(opts.token) ? parseJoinToken(opts.token) : undefined;
  if (opts.token !== undefined && looksLikeJoinToken(opts.token) && join === undefined)
    throw new IdentityError('REMORA_ERR_IDENTITY_OPTIONS', 'the join token is malformed');
  const fromCert =
    opts.currentCertificate === undefined ? undefined : identityOfChain(opts.currentCertificate.certChainPem);
  const fromKube =
    opts.token !== undefined && join === undefined ? identityFromKubernetesToken(opts.token) : undefined;
  const identity = opts.identity ?? join?.identity ?? fromKube ?? fromCert;
  if (identity === undefined)
    throw new IdentityError(
      'REMORA_ERR_IDENTITY_OPTIONS',
      'no identity: give `identity` (the token names no service account)',
    );
  const trustDomain =
    opts.trustDomain ?? join?.identity.trustDomain ?? fromCert?.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  return spiffeId(trustDomain, identity);
}

function identityOfChain(chainPem: string) {
  const leaf = parseCertificates(chainPem)[0];
  const uri = leaf === undefined ? undefined : uriSans(leaf)[0];
  const id = uri === undefined ? undefined : parseSpiffeId(uri);
  if (id === undefined)
    throw new IdentityError('REMORA_ERR_IDENTITY_OPTIONS', 'the current certificate carries no SPIFFE ID');
  return id;
}

/**
 * The service account a Kubernetes token was issued to, from its (unverified: it is the caller's own) JWT claims;
 * undefined when it is not a service-account token.
 */
export function identityFromKubernetesToken(token: string): WorkloadIdentity | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    const m =
      typeof claims.sub === 'string' ? /^system:serviceaccount:([^:]+):([^:]+)$/.exec(claims.sub) : null;
    return m === null ? undefined : { namespace: m[1]!, serviceAccount: m[2]! };
  } catch {
    return undefined;
  }
}

interface Target {
  readonly host: string;
  readonly port: number;
}

function parseAddress(address: string): Target {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new IdentityError(
      'REMORA_ERR_IDENTITY_OPTIONS',
      `address ${JSON.stringify(address)} is not host:port`,
    );
  return { host: m[1]!, port };
}

/** The CA's chain as its TLS handshake shows it, read without trusting it; nothing is sent. */
function peerChain(
  target: Target,
  serverName: string | undefined,
  deadline: number,
): Promise<X509Certificate[]> {
  return new Promise((resolve, reject) => {
    const servername = serverName ?? (isIP(target.host) === 0 ? target.host : undefined);
    const socket = tls.connect({
      host: target.host,
      port: target.port,
      ...(servername === undefined ? {} : { servername }),
      rejectUnauthorized: false,
      ALPNProtocols: ['h2'],
    });
    const fail = (message: string) => {
      socket.destroy();
      reject(
        new IdentityError('REMORA_ERR_IDENTITY_CA_UNREACHABLE', `${target.host}:${target.port}: ${message}`),
      );
    };
    socket.setTimeout(Math.max(1, deadline - Date.now()), () => fail('TLS handshake timed out'));
    socket.once('error', (err) => fail(err.message));
    socket.once('secureConnect', () => {
      const chain: X509Certificate[] = [];
      const seen = new Set<string>();
      let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
      while (c?.raw !== undefined && !seen.has(c.fingerprint256)) {
        seen.add(c.fingerprint256);
        chain.push(new X509Certificate(c.raw));
        c = c.issuerCertificate;
      }
      socket.destroy();
      resolve(chain);
    });
  });
}

async function pinnedRoot(
  opts: CertificateRequestOptions,
  target: Target,
  deadline: number,
): Promise<string> {
  const given = opts.caPin ?? (opts.token !== undefined ? parseJoinToken(opts.token)?.caPin : undefined);
  if (given === undefined)
    throw new IdentityError(
      'REMORA_ERR_IDENTITY_OPTIONS',
      'no way to trust the CA: give rootsPem, caPin, or a join token (which carries the pin)',
    );
  const pin = normalizePin(given);
  if (pin === undefined)
    throw new IdentityError(
      'REMORA_ERR_IDENTITY_OPTIONS',
      `caPin ${JSON.stringify(given)} is not sha256:<64 hex digits>`,
    );
  const chain = await peerChain(target, opts.serverName, deadline);
  const anchor = chain.find((c) => spkiPin(c) === pin);
  if (anchor === undefined)
    throw new IdentityError(
      'REMORA_ERR_IDENTITY_PIN_MISMATCH',
      `the CA at ${opts.address} shows no certificate with the pinned key ${pin} (it shows ${chain.map(spkiPin).join(', ') || 'none'}): not talking to it`,
    );
  return anchor.toString();
}

function call(
  opts: CertificateRequestOptions,
  rootsPem: string,
  deadline: number,
  request: CertificateRequest,
): Promise<CertificateResponse> {
  const creds = grpc.credentials.createSsl(
    Buffer.from(rootsPem),
    opts.currentCertificate === undefined ? null : Buffer.from(opts.currentCertificate.keyPem),
    opts.currentCertificate === undefined ? null : Buffer.from(opts.currentCertificate.certChainPem),
  );
  const options: grpc.ChannelOptions =
    opts.serverName === undefined
      ? {}
      : { 'grpc.ssl_target_name_override': opts.serverName, 'grpc.default_authority': opts.serverName };
  const client = new grpc.Client(opts.address, creds, options);
  const metadata = new grpc.Metadata();
  if (opts.token !== undefined) metadata.set('authorization', `Bearer ${opts.token}`);
  const method = certificateService().CreateCertificate!;
  return new Promise<CertificateResponse>((resolve, reject) => {
    client.makeUnaryRequest(
      CREATE_CERTIFICATE_PATH,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline },
      (err, value) => {
        client.close();
        if (err === null && value !== undefined) return resolve(value as CertificateResponse);
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED)
          return reject(
            new IdentityError('REMORA_ERR_IDENTITY_CA_UNREACHABLE', `${opts.address}: ${e.details}`, e.code),
          );
        reject(
          new IdentityError('REMORA_ERR_IDENTITY_REFUSED', `${grpc.status[e.code]}: ${e.details}`, e.code),
        );
      },
    );
  });
}

function uriSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '')
    .split(', ')
    .filter((n) => n.startsWith('URI:'))
    .map((n) => n.slice(4));
}

function badResponse(message: string): IdentityError {
  return new IdentityError('REMORA_ERR_IDENTITY_BAD_RESPONSE', message);
}

/**
 * Istio's answer: `cert_chain` is the leaf, intermediates, then the roots (istiod appends them); a newer server may
 * put the roots in `root_cert` instead. Without `root_cert`, the roots are the self-signed certificates at the end.
 */
function checkResponse(
  response: CertificateResponse,
  id: string,
  publicKeySpki: Buffer,
  keyPem: string,
): WorkloadCertificate {
  let certs: X509Certificate[];
  let roots: X509Certificate[];
  try {
    certs = response.cert_chain.flatMap((pem) => parseCertificates(pem));
    roots = (response.root_cert?.ca_cert ?? []).flatMap((pem) => parseCertificates(pem));
  } catch (err) {
    throw badResponse(`unreadable certificate: ${(err as Error).message}`);
  }
  if (roots.length === 0) {
    let end = certs.length;
    while (end > 1 && isSelfSigned(certs[end - 1]!)) end--;
    roots = certs.slice(end);
    certs = certs.slice(0, end);
  }
  const [leaf, ...intermediates] = certs;
  if (leaf === undefined || roots.length === 0)
    throw badResponse('no leaf certificate and roots in the answer');
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(publicKeySpki))
    throw badResponse('the certificate is not for the key this request made');
  const uris = uriSans(leaf);
  if (uris.length !== 1 || uris[0] !== id)
    throw badResponse(`the certificate names ${uris.join(', ') || 'no URI'}, not ${id}`);
  const path = verifyChain(leaf, intermediates, roots);
  if (!path.ok)
    throw badResponse(`the certificate does not lead to the roots given with it: ${path.problem}`);
  return {
    spiffeId: id,
    certChainPem: certs.map((c) => c.toString()).join(''),
    keyPem,
    rootsPem: roots.map((c) => c.toString()).join(''),
    notBefore: new Date(leaf.validFrom),
    notAfter: new Date(leaf.validTo),
    serialNumber: leaf.serialNumber,
  };
}

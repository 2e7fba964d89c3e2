// Who is calling: a CA request's credential (join token, Kubernetes token, or the client certificate of a
// renewal) turned into the one SPIFFE ID the caller may have a certificate for.

import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Metadata } from '@grpc/grpc-js';
import { looksLikeJoinToken, parseJoinToken } from '../../identity/join_token.js';
import { spiffeId } from '../../identity/spiffe.js';
import { clientIdentity } from './client_certificate.js';
import { Refusals, refuse } from './errors.js';
import type { KubeTokenReviewer } from './kube_review.js';
import type { JoinTokenStore } from './tokens.js';

export interface Caller {
  /** The SPIFFE ID the credential proves. */
  readonly spiffeId: string;
  /** The credential, for logs: `join token 1f2e...`, `a Kubernetes token`, `client certificate <serial>`. */
  readonly via: string;
  /** Spends what the credential allows (a join token's use) once the request is known good; may refuse. */
  commit(): Promise<void>;
}

export interface AuthenticatorOptions {
  readonly trustDomain: string;
  /** Without it, join tokens are refused (no data directory). */
  readonly tokens?: JoinTokenStore;
  /** Without it, Kubernetes tokens are refused (no `--kubeconfig`). */
  readonly kube?: KubeTokenReviewer;
  /** What a renewal's client certificate must lead to: the issuer's chain and the trust bundle. */
  readonly intermediates: readonly X509Certificate[];
  readonly roots: readonly X509Certificate[];
}

const nothing = async () => undefined;

export class Authenticator {
  constructor(private readonly opts: AuthenticatorOptions) {}

  /**
   * A bearer token wins over a client certificate. `peer` is the client certificate only when the TLS handshake
   * verified it against the bundle (grpc-js shows no other).
   */
  async authenticate(metadata: Metadata, peer: PeerCertificate | undefined): Promise<Caller> {
    const auth = metadata.get('authorization');
    if (auth.length > 1) refuse(Refusals.badCredential, 'more than one authorization header');
    if (auth.length === 1) return this.bearer(String(auth[0]));
    if (peer?.raw !== undefined) return this.certificate(new X509Certificate(peer.raw));
    refuse(
      Refusals.noCredential,
      'no credential: send `authorization: Bearer <join token or Kubernetes service-account token>`, or renew ' +
        'with a client certificate this CA issued',
    );
  }

  /** The credential a request carries, named for logs before (or without) checking it; never the secret. */
  describe(metadata: Metadata, peer: PeerCertificate | undefined): string {
    const auth = metadata.get('authorization');
    if (auth.length > 0) {
      const token = /^Bearer +(\S+)$/i.exec(String(auth[0]).trim())?.[1];
      if (token === undefined) return 'a malformed authorization header';
      if (!looksLikeJoinToken(token)) return 'a Kubernetes token';
      const id = parseJoinToken(token)?.id;
      return id === undefined ? 'a malformed join token' : `join token ${id}`;
    }
    if (peer?.raw !== undefined) return `client certificate ${peer.serialNumber}`;
    return 'no credential';
  }

  private async bearer(header: string): Promise<Caller> {
    const m = /^Bearer +(\S+)$/i.exec(header.trim());
    if (m === null) refuse(Refusals.badCredential, 'the authorization header is not `Bearer <token>`');
    const token = m[1]!;
    if (looksLikeJoinToken(token)) {
      const store = this.opts.tokens;
      if (store === undefined)
        refuse(
          Refusals.badCredential,
          'join tokens are not accepted: the control plane has no --data-dir to keep them',
        );
      const record = await store.check(token);
      return {
        spiffeId: record.spiffeId,
        via: `join token ${record.id}`,
        commit: async () => {
          await store.use(record);
        },
      };
    }
    if (this.opts.kube === undefined)
      refuse(
        Refusals.badCredential,
        'not a join token, and Kubernetes tokens are not accepted: the control plane has no --kubeconfig',
      );
    const id = await this.opts.kube.review(token);
    return { spiffeId: spiffeId(this.opts.trustDomain, id), via: 'a Kubernetes token', commit: nothing };
  }

  /** A renewal: the certificate must be one of this bundle's, in date, for exactly one SPIFFE ID of this domain. */
  private certificate(cert: X509Certificate): Caller {
    const who = clientIdentity(cert, this.opts);
    if (!who.ok) refuse(Refusals.badCredential, who.problem);
    return {
      spiffeId: spiffeId(who.id.trustDomain, who.id),
      via: `client certificate ${cert.serialNumber}`,
      commit: nothing,
    };
  }
}

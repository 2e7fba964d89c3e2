// The certificate authority: who signs (a root or an intermediate), what it distributes (the trust bundle), and
// the certificates it issues from checked requests.

import { KeyObject, type X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { spkiPin } from '../../identity/pem.js';
import type * as x509 from '../../identity/x509.js';
import { type Issuer, issueLeaf } from './issue.js';
import { ROOT_KEY_ALGORITHM } from './keys.js';

export const DEFAULT_CERT_TTL_MS = 24 * 3600 * 1000;
/** The shortest `--cert-ttl`: rotation at half-life must stay far above the time a handshake takes. */
export const MIN_CERT_TTL_MS = 60 * 1000;
/** The CA's own TLS certificate: made at each start, with a key that never leaves memory. */
const SERVER_CERT_LIFETIME_MS = 365 * 24 * 3600 * 1000;
/** Leaves start a little in the past, for peers whose clocks are behind: a tenth of the lifetime, at most 1 min. */
const MAX_BACKDATE_MS = 60 * 1000;

export interface AuthorityOptions {
  readonly trustDomain: string;
  /** The longest lifetime of a workload certificate; longer requests are cut to it. */
  readonly maxTtlMs: number;
  readonly now?: () => Date;
}

export interface IssuedCertificate {
  readonly leaf: X509Certificate;
  /** Istio's `cert_chain`: the leaf, the intermediates up to the root, then every root of the bundle; PEM each. */
  readonly certChain: readonly string[];
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly maxTtlMs: number;
  private readonly now: () => Date;

  /**
   * @param issuer signs every certificate: a root, or an intermediate under an external root.
   * @param intermediates the certificates above the issuer, up to but not including its root.
   * @param roots the trust bundle: the issuer's root first, then any other trusted root (during a rotation).
   */
  constructor(
    readonly issuer: Issuer,
    readonly intermediates: readonly X509Certificate[],
    readonly roots: readonly X509Certificate[],
    opts: AuthorityOptions,
  ) {
    if (roots.length === 0) throw new Error('a trust bundle needs at least one root');
    this.trustDomain = opts.trustDomain;
    this.maxTtlMs = opts.maxTtlMs;
    this.now = opts.now ?? (() => new Date());
  }

  /** The pin of the issuer's root (`sha256:<hex>` of its SubjectPublicKeyInfo), what join tokens carry. */
  get rootPin(): string {
    return spkiPin(this.roots[0]!);
  }

  get rootsPem(): string {
    return this.roots.map((c) => c.toString()).join('');
  }

  /** The lifetime a request gets: what it asks for (seconds, 0 for the default) up to the maximum. */
  lifetimeMs(requestedSeconds: number): number {
    const asked =
      Number.isFinite(requestedSeconds) && requestedSeconds > 0 ? requestedSeconds * 1000 : this.maxTtlMs;
    return Math.min(asked, this.maxTtlMs);
  }

  /**
   * Signs a workload certificate for `spiffeId` over `publicKey` (a CSR's, already checked against the caller's
   * credential). It never outlives its issuer's chain.
   */
  async issueWorkload(
    publicKey: x509.PublicKey,
    spiffeId: string,
    requestedSeconds: number,
  ): Promise<IssuedCertificate> {
    const lifetime = this.lifetimeMs(requestedSeconds);
    const now = this.now().getTime();
    const backdate = Math.min(MAX_BACKDATE_MS, Math.floor(lifetime / 10));
    const leaf = await issueLeaf(this.issuer, {
      names: [{ type: 'url', value: spiffeId }],
      publicKey,
      notBefore: new Date(now - backdate),
      notAfter: new Date(Math.min(now + lifetime, this.chainNotAfter())),
    });
    return { leaf, certChain: [leaf, ...this.issuerChain(), ...this.roots].map((c) => c.toString()) };
  }

  /**
   * A TLS certificate for the CA service itself, for `names` (DNS names and IPs), with a fresh P-256 key. Its
   * chain runs up to and including the root, so that a client holding only a join token's pin finds the pinned key
   * in the handshake.
   */
  async serverCertificate(names: readonly string[]): Promise<{ certChainPem: string; keyPem: string }> {
    const pair = (await globalThis.crypto.subtle.generateKey(ROOT_KEY_ALGORITHM, true, [
      'sign',
      'verify',
    ])) as CryptoKeyPair;
    const now = this.now().getTime();
    const leaf = await issueLeaf(this.issuer, {
      names: [...new Set(names)].map((n) => ({ type: isIP(n) === 0 ? 'dns' : 'ip', value: n }) as const),
      publicKey: pair.publicKey,
      notBefore: new Date(now - MAX_BACKDATE_MS),
      notAfter: new Date(Math.min(now + SERVER_CERT_LIFETIME_MS, this.chainNotAfter())),
      subject: 'CN=Remora CA service',
    });
    return {
      certChainPem: [leaf, ...this.issuerChain(), this.roots[0]!].map((c) => c.toString()).join(''),
      keyPem: KeyObject.from(pair.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    };
  }

  /** The certificates from the issuer up to its root, root excluded (empty when the issuer is the root). */
  issuerChain(): X509Certificate[] {
    const root = this.roots[0]!;
    return this.issuer.cert.fingerprint256 === root.fingerprint256
      ? []
      : [this.issuer.cert, ...this.intermediates];
  }

  private chainNotAfter(): number {
    return Math.min(
      ...[this.issuer.cert, ...this.intermediates, this.roots[0]!].map((c) => Date.parse(c.validTo)),
    );
  }
}

/** The CA service certificate's names: loopback, this host, and what the operator adds (`--ca-san`). */
export function serverNames(extra: readonly string[]): string[] {
  return ['localhost', hostname(), '127.0.0.1', '::1', ...extra];
}

// Certificates as Remora's CA makes them: its self-signed root, workload leaves and its own server certificate.

import { randomBytes, X509Certificate } from 'node:crypto';
import * as x509 from '../../identity/x509.js';
import { cryptoProvider, type SigningKey } from './keys.js';

/** Who signs: the CA certificate and its key. */
export interface Issuer {
  readonly cert: X509Certificate;
  readonly key: SigningKey;
}

/** Ten years: a root outlives many rotations of what it signs; replacing it is the documented rotation plan. */
export const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600 * 1000;

/**
 * A fresh positive serial of 127 random bits (RFC 5280 allows 20 octets; CA/Browser rules want 64 random bits),
 * its first bit cleared so it stays positive, and its second set so its DER encoding is always 16 octets.
 */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40;
  return b.toString('hex');
}

function toNode(cert: x509.X509Certificate): X509Certificate {
  return new X509Certificate(Buffer.from(cert.rawData));
}

export async function createRootCertificate(
  key: SigningKey,
  publicKey: CryptoKey,
  trustDomain: string,
  now: Date,
): Promise<X509Certificate> {
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `O=${trustDomain}, CN=Remora root CA`,
      issuer: `O=${trustDomain}, CN=Remora root CA`,
      notBefore: now,
      notAfter: new Date(now.getTime() + ROOT_LIFETIME_MS),
      publicKey,
      signingKey: key.privateKey,
      signingAlgorithm: key.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, cryptoProvider),
        // The trust domain's own SPIFFE ID, as SPIFFE signing certificates carry it.
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      ],
    },
    cryptoProvider,
  );
  return toNode(cert);
}

export interface LeafOptions {
  /** What the certificate is for: SANs, in @peculiar/x509's JSON form. */
  readonly names: x509.JsonGeneralNames;
  /** The CSR's (or a freshly made) public key. */
  readonly publicKey: x509.PublicKey | CryptoKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Optional subject; a leaf with none carries its names in a critical SAN (RFC 5280 4.2.1.6). */
  readonly subject?: string;
}

/**
 * An end-entity certificate: not a CA, digitalSignature and keyEncipherment (the latter for RSA keys' TLS 1.2 key
 * exchange), serverAuth and clientAuth (a sidecar is both), a fresh random serial, the issuer's key identifier.
 */
export async function issueLeaf(issuer: Issuer, opts: LeafOptions): Promise<X509Certificate> {
  const issuerCert = new x509.X509Certificate(issuer.cert.raw);
  const ski = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki =
    ski !== null
      ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
      : await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, cryptoProvider);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: opts.subject ?? '',
      issuer: issuerCert.subjectName,
      notBefore: opts.notBefore,
      notAfter: opts.notAfter,
      publicKey: opts.publicKey,
      signingKey: issuer.key.privateKey,
      signingAlgorithm: issuer.key.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([
          x509.ExtendedKeyUsage.serverAuth,
          x509.ExtendedKeyUsage.clientAuth,
        ]),
        aki,
        new x509.SubjectAlternativeNameExtension(opts.names, opts.subject === undefined),
      ],
    },
    cryptoProvider,
  );
  return toNode(cert);
}

// PEM bundles: split into one certificate each, and the SHA-256 pin of a certificate's public key.

import { createHash, X509Certificate } from 'node:crypto';

const BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Each CERTIFICATE block of `text`, normalised to end in one newline; other blocks and text are skipped. */
export function splitCertificates(text: string): string[] {
  return [...text.matchAll(BLOCK)].map((m) => `${m[0]}\n`);
}

/** Parses every certificate of a PEM bundle; throws naming the first that is not one. */
export function parseCertificates(text: string): X509Certificate[] {
  return splitCertificates(text).map((pem, i) => {
    try {
      return new X509Certificate(pem);
    } catch (err) {
      throw new Error(`certificate ${i + 1}: ${(err as Error).message}`);
    }
  });
}

/**
 * `sha256:<hex>` of the certificate's DER SubjectPublicKeyInfo, as kubeadm's discovery-token-ca-cert-hash: it
 * names a key, so a root re-issued with the same key keeps its pin.
 */
export function spkiPin(cert: X509Certificate): string {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/** `sha256:<hex>` or bare hex, of the right length, to the `sha256:<hex>` form; undefined otherwise. */
export function normalizePin(text: string): string | undefined {
  const hex = text
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, '');
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

/** A certificate that signed itself: a root. */
export function isSelfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

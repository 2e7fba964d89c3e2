// The signing rules: a CSR is signed only for exactly the identity its credential proves, and only as a leaf.

import * as x509 from '../../identity/x509.js';
import { Refusals, refuse } from './errors.js';
import { cryptoProvider } from './keys.js';

/** The most a CSR may weigh: a P-256 CSR is ~400 bytes, an RSA-4096 one ~2 KiB. */
const MAX_CSR_BYTES = 16 * 1024;

/**
 * Checks `csrPem` against the SPIFFE ID the caller proved, and returns its public key. Refused (CaRefusal):
 * - unreadable, not one PEM CERTIFICATE REQUEST, a wrong signature, a key other than ECDSA P-256/P-384 or RSA of
 *   2048 bits or more (badCsr);
 * - a basicConstraints extension with CA true (caRequested);
 * - SANs other than exactly one URI equal to `expected`: none, another URI, an extra DNS, IP or e-mail name
 *   (identityMismatch).
 * The subject and any other requested extension are ignored: the certificate is built from the rules, never copied
 * from the request.
 */
export async function checkCsr(csrPem: string, expected: string): Promise<x509.PublicKey> {
  if (csrPem.length > MAX_CSR_BYTES) refuse(Refusals.badCsr, `the CSR is larger than ${MAX_CSR_BYTES} bytes`);
  const blocks = csrPem.match(/-----BEGIN CERTIFICATE REQUEST-----/g)?.length ?? 0;
  if (blocks !== 1) refuse(Refusals.badCsr, `expected one PEM CERTIFICATE REQUEST, found ${blocks}`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    refuse(Refusals.badCsr, `unreadable CSR: ${(err as Error).message}`);
  }
  keyProblem(csr.publicKey);
  let signed = false;
  try {
    signed = await csr.verify(cryptoProvider);
  } catch {
    signed = false;
  }
  if (!signed) refuse(Refusals.badCsr, 'the CSR signature does not verify with its own key');
  for (const ext of csr.extensions) {
    if (ext.type === x509.BasicConstraintsExtension.NAME || ext instanceof x509.BasicConstraintsExtension) {
      if (new x509.BasicConstraintsExtension(ext.rawData).ca)
        refuse(Refusals.caRequested, 'the CSR asks for a CA certificate (basicConstraints CA:TRUE)');
    }
  }
  const sanExts = csr.extensions.filter((e) => e.type === '2.5.29.17');
  if (sanExts.length !== 1)
    refuse(Refusals.identityMismatch, `the CSR must carry exactly one SAN: the URI ${expected}`);
  const names = new x509.SubjectAlternativeNameExtension(sanExts[0]!.rawData).names.toJSON();
  const shown = names.map((n) => `${n.type.toUpperCase()}:${n.value}`).join(', ');
  if (names.length !== 1 || names[0]!.type !== 'url' || names[0]!.value !== expected)
    refuse(
      Refusals.identityMismatch,
      `the CSR asks for ${shown || 'no name'}; the credential proves ${expected}, and only that may be asked for`,
    );
  return csr.publicKey;
}

function keyProblem(key: x509.PublicKey): void {
  const alg = key.algorithm as { name?: string; namedCurve?: string; modulusLength?: number };
  if (alg.name === 'ECDSA' && (alg.namedCurve === 'P-256' || alg.namedCurve === 'P-384')) return;
  if (alg.name === 'RSASSA-PKCS1-v1_5' || alg.name === 'RSA-PSS' || alg.name === 'RSA-OAEP') {
    if ((alg.modulusLength ?? 0) >= 2048) return;
    refuse(Refusals.badCsr, `the CSR's RSA key has ${alg.modulusLength} bits; 2048 or more are required`);
  }
  refuse(
    Refusals.badCsr,
    `the CSR's key (${alg.name ?? 'unknown'} ${alg.namedCurve ?? ''}) is not ECDSA P-256/P-384 or RSA`.replace(
      ' )',
      ')',
    ),
  );
}

// A workload's key pair and its certificate request, made in this process: the private key never leaves it
// except as the PEM handed to the caller.

import { KeyObject } from 'node:crypto';
import * as x509 from './x509.js';

/** ECDSA P-256: what the CA's own root uses, fast to make and to handshake with, accepted by every TLS peer. */
const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface KeyAndCsr {
  /** PKCS#8 PEM. */
  readonly keyPem: string;
  /** DER SubjectPublicKeyInfo, to recognise the certificate issued for this key. */
  readonly publicKeySpki: Buffer;
  /** PKCS#10 PEM with exactly one SAN: the URI `spiffeId`, and an empty subject. */
  readonly csrPem: string;
}

export async function makeKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  const keys = (await globalThis.crypto.subtle.generateKey(KEY_ALGORITHM, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], true)],
    },
    globalThis.crypto as unknown as Crypto,
  );
  return {
    keyPem: KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeySpki: KeyObject.from(keys.publicKey).export({ type: 'spki', format: 'der' }),
    csrPem: csr.toString('pem'),
  };
}

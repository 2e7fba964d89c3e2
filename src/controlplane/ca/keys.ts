// CA signing keys: made (ECDSA P-256) or read from PEM, as WebCrypto keys with the signature algorithm they use.

import { createPrivateKey, KeyObject } from 'node:crypto';

/** A private key that signs certificates, and how: ECDSA with the curve's hash, or RSA PKCS#1 v1.5 SHA-256. */
export interface SigningKey {
  readonly privateKey: CryptoKey;
  readonly algorithm: EcdsaParams | RsaHashedImportParams;
  /** The same key as a Node KeyObject, to compare with a certificate's public key. */
  readonly keyObject: KeyObject;
}

/**
 * ECDSA P-256 for the generated root: 128-bit security, small certificates and fast handshakes, supported by every
 * TLS stack a sidecar meets (Envoy, Go, Java, OpenSSL, BoringSSL), and what SPIRE makes by default.
 */
export const ROOT_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

const CURVES: Readonly<Record<string, { curve: string; hash: string }>> = {
  prime256v1: { curve: 'P-256', hash: 'SHA-256' },
  secp384r1: { curve: 'P-384', hash: 'SHA-384' },
  secp521r1: { curve: 'P-521', hash: 'SHA-512' },
};

export const subtle = globalThis.crypto.subtle;

/** The crypto object @peculiar/x509 is given: Node's WebCrypto. */
export const cryptoProvider = globalThis.crypto as unknown as Crypto;

export async function generateRootKey(): Promise<{ key: SigningKey; publicKey: CryptoKey }> {
  const pair = (await subtle.generateKey(ROOT_KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
  return {
    key: {
      privateKey: pair.privateKey,
      algorithm: { name: 'ECDSA', hash: 'SHA-256' },
      keyObject: KeyObject.from(pair.privateKey),
    },
    publicKey: pair.publicKey,
  };
}

/** Reads a PEM private key (PKCS#8, SEC1 "EC PRIVATE KEY" or PKCS#1 "RSA PRIVATE KEY"); throws saying why not. */
export async function importSigningKey(pem: string): Promise<SigningKey> {
  const keyObject = createPrivateKey(pem);
  const der = keyObject.export({ type: 'pkcs8', format: 'der' });
  if (keyObject.asymmetricKeyType === 'ec') {
    const named = CURVES[keyObject.asymmetricKeyDetails?.namedCurve ?? ''];
    if (named === undefined)
      throw new Error(
        `EC curve ${keyObject.asymmetricKeyDetails?.namedCurve} is not supported (P-256, P-384, P-521)`,
      );
    const privateKey = await subtle.importKey(
      'pkcs8',
      der,
      { name: 'ECDSA', namedCurve: named.curve },
      false,
      ['sign'],
    );
    return { privateKey, algorithm: { name: 'ECDSA', hash: named.hash }, keyObject };
  }
  if (keyObject.asymmetricKeyType === 'rsa') {
    if ((keyObject.asymmetricKeyDetails?.modulusLength ?? 0) < 2048)
      throw new Error('an RSA key must have 2048 bits or more');
    const algorithm = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
    const privateKey = await subtle.importKey('pkcs8', der, algorithm, false, ['sign']);
    return { privateKey, algorithm, keyObject };
  }
  throw new Error(`${keyObject.asymmetricKeyType} keys are not supported (ECDSA or RSA)`);
}

export function privateKeyPem(key: SigningKey): string {
  return key.keyObject.export({ type: 'pkcs8', format: 'pem' }) as string;
}

// Workload certificates for the mesh scenario, made at start by Remora's own CA code: an ECDSA P-256 root and
// one leaf per sidecar carrying its SPIFFE ID, written as PEM files the sidecars' static secrets point at.

import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCertificate, issueLeaf } from '../src/controlplane/ca/issue.js';
import { generateRootKey, privateKeyPem } from '../src/controlplane/ca/keys.js';

export const TRUST_DOMAIN = 'cluster.local';
export const CLIENT_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/client`;
export const SERVER_ID = `spiffe://${TRUST_DOMAIN}/ns/bench/sa/server`;

/** PEM files of one workload identity. */
export interface IdentityFiles {
  readonly cert: string;
  readonly key: string;
}

export interface MeshCerts {
  /** The trust bundle (the root alone). */
  readonly root: string;
  readonly client: IdentityFiles;
  readonly server: IdentityFiles;
}

/** Makes the root and both leaves (valid for a day, as the mesh CA's default) and writes them under `dir`. */
export async function writeMeshCerts(dir: string): Promise<MeshCerts> {
  const now = new Date();
  // An hour of slack before now: the sidecars check validity against their own clock.
  const notBefore = new Date(now.getTime() - 3600_000);
  const ca = await generateRootKey();
  const rootCert = await createRootCertificate(ca.key, ca.publicKey, TRUST_DOMAIN, notBefore);
  const issuer = { cert: rootCert, key: ca.key };
  const root = join(dir, 'root-cert.pem');
  writeFileSync(root, rootCert.toString());
  const leaf = async (name: string, id: string): Promise<IdentityFiles> => {
    const pair = await generateRootKey();
    const cert = await issueLeaf(issuer, {
      names: [{ type: 'url', value: id }],
      publicKey: pair.publicKey,
      notBefore,
      notAfter: new Date(now.getTime() + 24 * 3600_000),
    });
    const files = { cert: join(dir, `${name}-cert.pem`), key: join(dir, `${name}-key.pem`) };
    writeFileSync(files.cert, cert.toString());
    writeFileSync(files.key, privateKeyPem(pair.key), { mode: 0o600 });
    return files;
  };
  return { root, client: await leaf('client', CLIENT_ID), server: await leaf('server', SERVER_ID) };
}

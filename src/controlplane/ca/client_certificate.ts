// Whose workload certificate a TLS client presented: one of this mesh's, in date, for exactly one SPIFFE ID of its
// trust domain. The CA's renewals and the authenticated xDS port both ask it.

import type { X509Certificate } from 'node:crypto';
import { verifyChain } from '../../identity/chain.js';
import { type ParsedSpiffeId, parseSpiffeId } from '../../identity/spiffe.js';

export interface MeshTrust {
  readonly trustDomain: string;
  /** The issuer's chain up to its root (root excluded), and every root of the bundle. */
  readonly intermediates: readonly X509Certificate[];
  readonly roots: readonly X509Certificate[];
}

export type ClientIdentity =
  | { readonly ok: true; readonly id: ParsedSpiffeId }
  | { readonly ok: false; readonly problem: string };

/** The workload `cert` proves, or why it proves none (the problem names the certificate by its serial). */
export function clientIdentity(
  cert: X509Certificate,
  trust: MeshTrust,
  now: Date = new Date(),
): ClientIdentity {
  const via = `client certificate ${cert.serialNumber}`;
  if (cert.ca) return { ok: false, problem: `${via} is a CA certificate` };
  const path = verifyChain(cert, trust.intermediates, trust.roots, now);
  if (!path.ok) return { ok: false, problem: `${via}: ${path.problem}` };
  const uris = (cert.subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  const id = uris.length === 1 ? parseSpiffeId(uris[0]!.slice(4)) : undefined;
  if (id === undefined || id.trustDomain !== trust.trustDomain)
    return {
      ok: false,
      problem: `${via} does not carry exactly one SPIFFE ID of trust domain ${trust.trustDomain}`,
    };
  return { ok: true, id };
}

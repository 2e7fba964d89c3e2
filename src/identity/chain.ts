// Certificate path checks shared by the CA and its clients: does a certificate lead, through the given
// intermediates, to one of the given roots, every link signed and in date?

import type { X509Certificate } from 'node:crypto';

const MAX_DEPTH = 8;

/** Whether `issuer` issued `cert`: names match and the signature verifies with the issuer's key. */
export function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
}

function dateProblem(cert: X509Certificate, now: Date): string | undefined {
  if (now.getTime() < Date.parse(cert.validFrom))
    return `${cert.subject || 'a certificate'} is not valid before ${cert.validFrom}`;
  if (now.getTime() > Date.parse(cert.validTo))
    return `${cert.subject || 'a certificate'} expired at ${cert.validTo}`;
  return undefined;
}

/**
 * Builds the path from `leaf` to one of `roots` through `intermediates` (in any order). Returns the path (leaf
 * first, the root last), or why there is none.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  now: Date = new Date(),
): { ok: true; path: X509Certificate[] } | { ok: false; problem: string } {
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const dated = dateProblem(current, now);
    if (dated !== undefined) return { ok: false, problem: dated };
    const root = roots.find((r) => issuedBy(current, r));
    if (root !== undefined) {
      const rootDated = dateProblem(root, now);
      if (rootDated !== undefined) return { ok: false, problem: rootDated };
      if (root !== current) path.push(root);
      return { ok: true, path };
    }
    const next = intermediates.find((c) => !path.includes(c) && c.ca && issuedBy(current, c));
    if (next === undefined)
      return {
        ok: false,
        problem: `no trusted root or intermediate issued ${current.subject || 'the certificate'} (issuer ${current.issuer || 'empty'})`,
      };
    path.push(next);
    current = next;
  }
  return { ok: false, problem: `no root within ${MAX_DEPTH} certificates` };
}

// Envoy's /certs document: for each live TLS context, its CA certificates and its certificate chain, each with its
// file (or "<inline>"), serial number, SANs and validity — plus the secret it came from.

import type { X509Certificate } from 'node:crypto';
import type { ContextCertificates } from '../tls/reloading_context.js';
import { parseSubjectAltNames } from '../tls/san_match.js';
import { parseCertificates } from '../tls/secret.js';

type Json = Record<string, unknown>;

const DAY_MS = 86_400_000;

/**
 * envoy.admin.v3.Certificates. Where Envoy shows only the first CA of a bundle, every CA is listed: during a root
 * rotation the bundle holds the old and the new root, and both are worth seeing. Remora adds `secret_name` to the
 * details of a certificate that came from a secret (static or SDS).
 */
export function certsDocument(contexts: readonly ContextCertificates[], now = Date.now()): Json {
  return {
    certificates: contexts.map((c) => ({
      ca_cert: c.trustedCa ? details(c.trustedCa, parseCertificates(c.trustedCa.pem), now) : [],
      // Envoy lists the leaf of the chain, not its intermediates.
      cert_chain: c.certificateChain
        ? details(c.certificateChain, parseCertificates(c.certificateChain.pem).slice(0, 1), now)
        : [],
    })),
  };
}

function details(
  source: { readonly path: string; readonly secretName: string | undefined },
  certs: readonly X509Certificate[],
  now: number,
): Json[] {
  return certs.map((x) => {
    const expires = Date.parse(x.validTo);
    return {
      path: source.path,
      // Envoy: lower-case hex without separators.
      serial_number: x.serialNumber.toLowerCase(),
      subject_alt_names: parseSubjectAltNames(x.subjectAltName).flatMap((san): Json[] => {
        if (san.type === 'DNS') return [{ dns: san.value }];
        if (san.type === 'URI') return [{ uri: san.value }];
        if (san.type === 'IP_ADDRESS') return [{ ip_address: san.value }];
        return [];
      }),
      // A uint64 in proto3 JSON is a string.
      days_until_expiration: String(Math.max(0, Math.floor((expires - now) / DAY_MS))),
      valid_from: timestamp(Date.parse(x.validFrom)),
      expiration_time: timestamp(expires),
      ...(source.secretName !== undefined && { secret_name: source.secretName }),
    };
  });
}

/** A google.protobuf.Timestamp in proto3 JSON (RFC 3339, no fraction when whole seconds). */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}

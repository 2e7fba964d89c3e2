// Join tokens: the one string a workload outside Kubernetes is given to get its first certificate.

import { type ParsedSpiffeId, parseSpiffeId, spiffeId } from './spiffe.js';

/** The format's version tag, and what tells a join token from a Kubernetes token (a JWT) at a glance. */
export const JOIN_TOKEN_PREFIX = 'rjt1';

/**
 * `rjt1.<id>.<secret>.<ca-pin>.<identity>`, only characters that are safe in a bearer token:
 * - `id` (16 hex digits) names the token's record in the CA's store; `secret` (32 random bytes, base64url) proves
 *   the holder has the token: the store keeps only its SHA-256;
 * - `ca-pin` is the SHA-256 (hex) of the CA root's SubjectPublicKeyInfo, as kubeadm's discovery-token-ca-cert-hash:
 *   the workload trusts the CA on first contact only if it shows that key, and sends the token to nothing else;
 * - `identity` is the SPIFFE ID the token is for (base64url, since trust domains and service accounts may both
 *   contain dots), so that the workload knows what to ask for without being told.
 */
export interface JoinToken {
  readonly id: string;
  readonly secret: string;
  /** `sha256:<hex>`. */
  readonly caPin: string;
  readonly identity: ParsedSpiffeId;
}

const ID = /^[0-9a-f]{16}$/;
const SECRET = /^[A-Za-z0-9_-]{43}$/;
const PIN_HEX = /^[0-9a-f]{64}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;

export function formatJoinToken(t: JoinToken): string {
  const pin = t.caPin.replace(/^sha256:/, '');
  const identity = Buffer.from(spiffeId(t.identity.trustDomain, t.identity)).toString('base64url');
  return [JOIN_TOKEN_PREFIX, t.id, t.secret, pin, identity].join('.');
}

/** Whether `text` claims to be a join token (it may still be malformed). */
export function looksLikeJoinToken(text: string): boolean {
  return text.startsWith(`${JOIN_TOKEN_PREFIX}.`);
}

/** Reads a join token; undefined when `text` is not one of the right shape. */
export function parseJoinToken(text: string): JoinToken | undefined {
  const parts = text.trim().split('.');
  if (parts.length !== 5 || parts[0] !== JOIN_TOKEN_PREFIX) return undefined;
  const [, id, secret, pin, encoded] = parts as [string, string, string, string, string];
  if (!ID.test(id) || !SECRET.test(secret) || !PIN_HEX.test(pin) || !B64URL.test(encoded)) return undefined;
  const identity = parseSpiffeId(Buffer.from(encoded, 'base64url').toString('utf8'));
  if (identity === undefined) return undefined;
  return { id, secret, caPin: `sha256:${pin}`, identity };
}

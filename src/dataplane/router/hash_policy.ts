// Computes a request's 64-bit hash from the route's hash_policy list (Envoy's rules for combining and terminal).

import type { HashPolicyConfig } from '../../config/model.js';
import { randomFill } from '../../random_bytes.js';
import { xxhash64 } from '../upstream/lb/hash.js';
import type { HeaderLookup } from './matchers.js';

export interface HashInput {
  readonly header: HeaderLookup;
  readonly sourceIp: string;
  readonly path: string;
  /** Cookies the proxy generated (a cookie policy with a ttl and no cookie yet): sent back with Set-Cookie. */
  readonly setCookies: string[];
}

const MASK64 = (1n << 64n) - 1n;

export function computeHash(policies: readonly HashPolicyConfig[], input: HashInput): bigint | undefined {
  let hash: bigint | undefined;
  for (const p of policies) {
    const h = hashOne(p, input);
    if (h === undefined) continue;
    // Envoy folds several policies together: rotate left by one, then xor.
    hash = hash === undefined ? h : (((hash << 1n) | (hash >> 63n)) & MASK64) ^ h;
    if (p.terminal) break;
  }
  return hash;
}

function hashOne(p: HashPolicyConfig, input: HashInput): bigint | undefined {
  switch (p.kind) {
    case 'header': {
      const v = input.header(p.headerName);
      return v === undefined ? undefined : xxhash64(v);
    }
    case 'cookie': {
      let v = readCookie(input.header('cookie'), p.name);
      if (v === undefined && p.ttlMs !== undefined) {
        // Envoy generates the cookie so the client sticks to the host on its next requests.
        v = randomFill(Buffer.allocUnsafe(8)).toString('hex');
        const maxAge = p.ttlMs > 0 ? `; Max-Age=${Math.round(p.ttlMs / 1000)}` : '';
        input.setCookies.push(`${p.name}=${v}${maxAge}${p.path ? `; Path=${p.path}` : ''}; HttpOnly`);
      }
      return v === undefined ? undefined : xxhash64(v);
    }
    case 'source_ip':
      return input.sourceIp ? xxhash64(input.sourceIp) : undefined;
    case 'query_parameter': {
      const q = input.path.indexOf('?');
      if (q < 0) return undefined;
      const v = new URLSearchParams(input.path.slice(q + 1)).get(p.name);
      return v === null ? undefined : xxhash64(v);
    }
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(/[;,]/)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

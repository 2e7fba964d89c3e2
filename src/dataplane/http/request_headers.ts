// Builds the upstream request's headers from the downstream ones: hop-by-hop removed, x-forwarded-* and x-request-id set.

import type { HcmConfig } from '../../config/model.js';
import { XFCC } from './client_cert_header.js';
import { type HeaderList, headerGet, headerRemove, headerSet } from './header_list.js';
import { connectionListed, isHopByHop } from './hop_by_hop.js';
import { requestId as newRequestId } from './request_id.js';

/**
 * Copies parsed headers (lower-cased names) without connection-specific headers or `expect` (`te: trailers`
 * stays), and without x-forwarded-client-cert when `sanitizeXfcc` (forward_client_cert_details SANITIZE, the
 * default: a client must not speak for a certificate it never showed).
 */
export function upstreamHeaderList(parsed: readonly string[], sanitizeXfcc = false): HeaderList {
  const out: HeaderList = [];
  let connection: string | undefined;
  for (let i = 0; i < parsed.length; i += 2) {
    const name = parsed[i]!;
    if (isHopByHop(name) || name === 'expect') {
      if (name === 'connection')
        connection = connection === undefined ? parsed[i + 1] : `${connection},${parsed[i + 1]}`;
      // As Envoy: TE is dropped unless it asks for trailers, which gRPC over HTTP/2 needs end to end.
      else if (name === 'te' && /(^|,)\s*trailers\s*(;|,|$)/i.test(parsed[i + 1]!))
        out.push('te', 'trailers');
      continue;
    }
    if (sanitizeXfcc && name === XFCC) continue;
    out.push(name, parsed[i + 1]!);
  }
  const listed = connectionListed(connection);
  if (listed) for (const name of listed) headerRemove(out, name);
  return out;
}

/** Envoy's x-forwarded-for / x-forwarded-proto / x-request-id rules for one HCM. */
export function applyForwardingHeaders(
  h: HeaderList,
  config: HcmConfig,
  remoteIp: string,
  scheme: string,
): string | undefined {
  if (config.useRemoteAddress) {
    if (!config.skipXffAppend) {
      const xff = headerGet(h, 'x-forwarded-for');
      headerSet(h, 'x-forwarded-for', xff ? `${xff},${remoteIp}` : remoteIp);
    }
    headerSet(h, 'x-forwarded-proto', scheme);
  } else if (headerGet(h, 'x-forwarded-proto') === undefined) {
    h.push('x-forwarded-proto', scheme);
  }
  let requestId = headerGet(h, 'x-request-id');
  const external = config.useRemoteAddress && !config.preserveExternalRequestId;
  if (config.generateRequestId && (requestId === undefined || external)) {
    requestId = newRequestId();
    headerSet(h, 'x-request-id', requestId);
  }
  return requestId;
}

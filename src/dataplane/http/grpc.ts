// gRPC over HTTP: recognising a call, its grpc-timeout, and the status a response carries.

import type { ForwardActionConfig } from '../../config/model.js';
import { type HeaderList, headerFirst } from './header_list.js';

/** A gRPC call by content-type (application/grpc, application/grpc+proto, application/grpc-web ...). */
export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType?.startsWith('application/grpc') === true;
}

const UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

/**
 * The grpc-timeout header in milliseconds ("100m", "5S": at most 8 digits and one unit, per the gRPC HTTP/2
 * protocol), rounded up so a short deadline does not become none; undefined when absent or malformed.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^([0-9]{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return undefined;
  return Math.ceil(Number(m[1]) * UNIT_MS[m[2]!]!);
}

/** A call's grpc-timeout as the route bounds it (cap, offset); undefined when the header is absent or bad. */
export function effectiveGrpcTimeout(
  header: string | undefined,
  fwd: Pick<ForwardActionConfig, 'grpcTimeoutMaxMs' | 'grpcTimeoutOffsetMs'>,
): number | undefined {
  const asked = parseGrpcTimeout(header);
  if (asked === undefined) return undefined;
  let ms = fwd.grpcTimeoutMaxMs > 0 ? Math.min(asked, fwd.grpcTimeoutMaxMs) : asked;
  if (fwd.grpcTimeoutOffsetMs > 0 && ms > fwd.grpcTimeoutOffsetMs) ms -= fwd.grpcTimeoutOffsetMs;
  return ms;
}

/** grpc-status from a header list (trailers, or the headers of a trailers-only response). */
export function grpcStatusOf(headers: HeaderList | undefined): number | undefined {
  if (headers === undefined) return undefined;
  const v = headerFirst(headers, 'grpc-status');
  if (v === undefined) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** The status a gRPC client infers from an HTTP status without grpc-status (gRPC's http-grpc-status-mapping). */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}

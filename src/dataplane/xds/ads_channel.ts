// How the ADS client reaches one control plane: plaintext, or TLS with the ADS cluster's UpstreamTlsContext (the
// workload certificate `default` and trust bundle `ROOTCA` when the sidecar has a workload identity).

import { isIP } from 'node:net';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { UpstreamTls } from '../tls/upstream.js';

export interface AdsChannel {
  readonly credentials: grpc.ChannelCredentials;
  readonly options: grpc.ChannelOptions;
  /** For logs. */
  readonly transport: 'plaintext' | 'tls';
}

/**
 * The channel to `target` under the context in force now (so a rotated certificate is presented from the next
 * connection on). Verification is Envoy's where the context says something: the chain must lead to its trusted
 * CA and, with SAN matchers, one must match. Where it names no SAN matcher, the control plane's certificate must
 * be valid for the name dialled (the `sni`, else the target's host), as gRPC checks it: every workload certificate
 * leads to the same roots, so a chain check alone would let any workload pose as the control plane. A context
 * without a trusted CA verifies nothing (Envoy's rule).
 */
export function adsChannel(target: string, tls: UpstreamTls | undefined): AdsChannel {
  if (tls === undefined)
    return { credentials: grpc.credentials.createInsecure(), options: {}, transport: 'plaintext' };
  const o = tls.connectionOptions(['h2']);
  const verify = o.rejectUnauthorized !== false;
  const sanCheck = o.checkServerIdentity;
  const hasMatchers =
    (tls.config.commonTlsContext.validationContext?.matchTypedSubjectAltNames.length ?? 0) > 0;
  const name = o.servername || hostOf(target);
  const credentials = grpc.credentials.createFromSecureContext(o.secureContext!, {
    rejectUnauthorized: verify,
    checkServerIdentity: (_host: string, cert: PeerCertificate) => {
      if (!verify) return undefined;
      const mismatch = sanCheck?.(name, cert);
      if (mismatch !== undefined || hasMatchers) return mismatch;
      return checkServerIdentity(name, cert);
    },
  });
  const options: grpc.ChannelOptions = {
    // A channel of its own: a subchannel made with an earlier certificate is never reused.
    'grpc.use_local_subchannel_pool': 1,
    // The context's `sni` is sent (and verified, without SAN matchers); without one, gRPC sends the target's host.
    ...(o.servername
      ? { 'grpc.ssl_target_name_override': o.servername, 'grpc.default_authority': o.servername }
      : {}),
  };
  return { credentials, options, transport: 'tls' };
}

/** The host of a gRPC target: `10.0.0.1:15012`, `[::1]:15012`, `dns:///cp.example:15012`. */
export function hostOf(target: string): string {
  const authority = target.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*\//i, '').replace(/^[a-z]+:(?!\d)/i, '');
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(authority);
  if (v6 !== null) return v6[1]!;
  // A bare IPv6 address has colons of its own and no port.
  if (isIP(authority) === 6) return authority;
  return /^([^:]+)(?::\d+)?$/.exec(authority)?.[1] ?? authority;
}

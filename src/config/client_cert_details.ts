// forward_client_cert_details and set_current_client_cert_details of an HTTP connection manager: what becomes of
// the x-forwarded-client-cert header (XFCC).

import type { Fields } from './reader.js';

/** Envoy's ForwardClientCertDetails. SANITIZE, the default, removes any XFCC a client sends. */
export type ForwardClientCertMode =
  | 'SANITIZE'
  | 'FORWARD_ONLY'
  | 'APPEND_FORWARD'
  | 'SANITIZE_SET'
  | 'ALWAYS_FORWARD_ONLY';

/** Which facts of the client certificate the proxy's own XFCC element carries (By and Hash always). */
export interface ClientCertDetails {
  readonly subject: boolean;
  readonly cert: boolean;
  readonly chain: boolean;
  readonly dns: boolean;
  readonly uri: boolean;
}

export interface ForwardClientCertConfig {
  readonly mode: ForwardClientCertMode;
  readonly details: ClientCertDetails;
}

export const SANITIZE_CLIENT_CERT: ForwardClientCertConfig = Object.freeze({
  mode: 'SANITIZE',
  details: Object.freeze({ subject: false, cert: false, chain: false, dns: false, uri: false }),
});

const MODES = ['SANITIZE', 'FORWARD_ONLY', 'APPEND_FORWARD', 'SANITIZE_SET', 'ALWAYS_FORWARD_ONLY'] as const;

/** Reads both fields of an HCM. `set_current_client_cert_details` only matters to APPEND_FORWARD and SANITIZE_SET. */
export function forwardClientCertConfig(f: Fields): ForwardClientCertConfig {
  const mode = f.enumOf<ForwardClientCertMode>('forward_client_cert_details', MODES) ?? 'SANITIZE';
  const d = f.object('set_current_client_cert_details');
  if (d === undefined)
    return mode === 'SANITIZE' ? SANITIZE_CLIENT_CERT : { mode, details: SANITIZE_CLIENT_CERT.details };
  const details = {
    subject: d.bool('subject') ?? false,
    cert: d.bool('cert') ?? false,
    chain: d.bool('chain') ?? false,
    dns: d.bool('dns') ?? false,
    uri: d.bool('uri') ?? false,
  };
  d.finish();
  return { mode, details };
}

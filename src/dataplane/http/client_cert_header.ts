// x-forwarded-client-cert (XFCC): Envoy's forward_client_cert_details applied to a request's upstream headers, the
// proxy's own element built once per connection from its certificate and the client's.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { ClientCertDetails, ForwardClientCertConfig } from '../../config/client_cert_details.js';
import { isTlsSocket } from '../../lazy_builtins.js';
import { peerCertificate } from '../rbac/connection_facts.js';
import { parseSubjectAltNames } from '../tls/san_match.js';
import { type HeaderList, headerGet, headerRemove, headerSet } from './header_list.js';

export const XFCC = 'x-forwarded-client-cert';

/** Elements built, by connection and by the details asked for (listeners on one socket share a config object). */
const elements = new WeakMap<Socket, { details: ClientCertDetails; element: string }>();

/**
 * Envoy's order: ALWAYS_FORWARD_ONLY keeps the header whatever the connection; without a verified client
 * certificate it is removed; FORWARD_ONLY keeps it, SANITIZE removes it; APPEND_FORWARD appends the proxy's element,
 * SANITIZE_SET replaces the header with it.
 */
export function applyClientCertHeader(
  h: HeaderList,
  config: ForwardClientCertConfig,
  socket: Socket | undefined,
): void {
  const mode = config.mode;
  if (mode === 'ALWAYS_FORWARD_ONLY') return;
  const element =
    mode === 'FORWARD_ONLY' || mode === 'SANITIZE' ? undefined : elementOf(socket, config.details);
  const verified = element !== undefined || (mode === 'FORWARD_ONLY' && hasVerifiedPeer(socket));
  if (!verified || mode === 'SANITIZE') return headerRemove(h, XFCC);
  if (element === undefined) return;
  const existing = mode === 'APPEND_FORWARD' ? headerGet(h, XFCC) : undefined;
  headerSet(h, XFCC, existing === undefined || existing === '' ? element : `${existing},${element}`);
}

function hasVerifiedPeer(socket: Socket | undefined): boolean {
  return isTlsSocket(socket) && socket.authorized && socket.getPeerX509Certificate() !== undefined;
}

/** The proxy's element for a connection with a verified client certificate; undefined without one. */
function elementOf(socket: Socket | undefined, details: ClientCertDetails): string | undefined {
  if (!isTlsSocket(socket)) return undefined;
  const known = elements.get(socket);
  if (known !== undefined && known.details === details) return known.element;
  const peer = peerCertificate(socket);
  const cert = peer === undefined ? undefined : socket.getPeerX509Certificate();
  if (peer === undefined || cert === undefined) return undefined;
  const parts: string[] = [];
  const own = socket.getX509Certificate();
  for (const san of parseSubjectAltNames(own?.subjectAltName))
    if (san.type === 'URI') parts.push(`By=${san.value}`);
  parts.push(`Hash=${cert.fingerprint256.replaceAll(':', '').toLowerCase()}`);
  if (details.cert) parts.push(`Cert="${urlEncode(cert.toString())}"`);
  if (details.chain) parts.push(`Chain="${urlEncode(peerChainPem(socket))}"`);
  if (details.subject) parts.push(`Subject="${escapeQuoted(peer.subject)}"`);
  if (details.uri) for (const uri of peer.uriSans) parts.push(`URI=${uri}`);
  if (details.dns) for (const dns of peer.dnsSans) parts.push(`DNS=${dns}`);
  const element = parts.join(';');
  elements.set(socket, { details, element });
  return element;
}

/** The client's certificate and the issuers it sent, leaf first, as PEM. */
function peerChainPem(socket: TLSSocket): string {
  let pem = '';
  const seen = new Set<string>();
  let c = socket.getPeerCertificate(true);
  while (c?.raw !== undefined && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    const b64 = c.raw.toString('base64').replace(/.{64}/g, '$&\n');
    pem += `-----BEGIN CERTIFICATE-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`;
    c = c.issuerCertificate;
  }
  return pem;
}

/** As Envoy URL-encodes PEM in XFCC: everything but unreserved characters percent-encoded. */
function urlEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** A quoted XFCC value: quotes and backslashes escaped. */
function escapeQuoted(s: string): string {
  return s.replace(/["\\]/g, '\\$&');
}

// What RBAC rules and access logs know of a downstream connection — addresses, SNI, the verified client
// certificate — read once per connection, when first asked for.

import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { type IpBytes, parseIp, unmapIpv4 } from '../../config/cidr.js';
import { isTlsSocket } from '../../lazy_builtins.js';
import { requestedServerName } from '../listener/requested_server_name.js';
import { destinationOf } from '../listener/restored_destination.js';
import type { PeerCertificate } from '../observe/stream_info.js';
import { parseSubjectAltNames } from '../tls/san_match.js';
import type { RbacConnection } from './engine.js';

const cache = new WeakMap<Socket, RbacConnection>();

/** The facts of the connection `socket` carries (a TLS socket: the terminated one). */
export function connectionFacts(socket: Socket): RbacConnection {
  let facts = cache.get(socket);
  if (facts === undefined) {
    const destination = destinationOf(socket);
    const secure = isTlsSocket(socket);
    facts = {
      directRemoteIp: ipOf(socket.remoteAddress),
      localIp: ipOf(destination.address),
      localPort: destination.port,
      requestedServerName: requestedServerName(socket),
      secure,
      peer: secure ? peerCertificate(socket as TLSSocket) : undefined,
    };
    cache.set(socket, facts);
  }
  return facts;
}

/** A connection nothing is known of (a codec driven without a socket, in tests). */
export const UNKNOWN_CONNECTION: RbacConnection = {
  directRemoteIp: undefined,
  localIp: undefined,
  localPort: 0,
  requestedServerName: '',
  secure: false,
  peer: undefined,
};

/** An IPv4 peer of a dual-stack socket (::ffff:a.b.c.d) is IPv4, as Envoy sees it. */
export function ipOf(text: string | undefined): IpBytes | undefined {
  if (text === undefined || text === '') return undefined;
  const ip = parseIp(text);
  return ip && unmapIpv4(ip);
}

/** The client certificate of a TLS socket, when one was sent and verified. */
export function peerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  // A certificate that failed verification never reaches a filter (the handshake drops it); checked all the same.
  if (!socket.authorized) return undefined;
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  const uriSans: string[] = [];
  const dnsSans: string[] = [];
  for (const san of parseSubjectAltNames(cert.subjectAltName)) {
    if (san.type === 'URI') uriSans.push(san.value);
    else if (san.type === 'DNS') dnsSans.push(san.value);
  }
  return { uriSans, dnsSans, subject: rfc2253(cert.subject ?? '') };
}

/**
 * Node prints a subject one RDN a line, in certificate order, values escaped as RFC 2253 asks. Envoy prints
 * RFC 2253: last RDN first, comma-separated, multi-valued RDNs joined by "+", and bytes past ASCII as \XX.
 */
export function rfc2253(multiline: string): string {
  if (multiline === '') return '';
  return multiline
    .split('\n')
    .reverse()
    .map((rdn) => escapeNonAscii(rdn.replaceAll(' + ', '+')))
    .join(',');
}

function escapeNonAscii(s: string): string {
  if (!/[^\x00-\x7f]/.test(s)) return s;
  let out = '';
  for (const ch of s) {
    if (ch.charCodeAt(0) < 0x80) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `\\${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

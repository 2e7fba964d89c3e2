// Header translation between HTTP/2's header blocks (pseudo-headers, node's objects) and the proxy's flat lists.

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2';
import type { HeaderList } from '../header_list.js';
import { droppedOnHttp2 } from '../hop_by_hop.js';

/** The request pseudo-headers and the regular headers of an HTTP/2 HEADERS block. */
export interface H2RequestHead {
  method: string;
  path: string;
  authority: string;
  scheme: string;
  /** Regular headers, flat, lower-cased; cookie crumbs joined back into one header. */
  headers: string[];
}

/** Splits node's raw header list ([name, value, ...], names lower-cased) into pseudo and regular headers. */
export function requestHead(raw: readonly string[]): H2RequestHead {
  const head: H2RequestHead = { method: '', path: '', authority: '', scheme: 'http', headers: [] };
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':method') head.method = value;
      else if (name === ':path') head.path = value;
      else if (name === ':authority') head.authority = value;
      else if (name === ':scheme') head.scheme = value;
      continue;
    }
    // HTTP/2 lets a client split Cookie into crumbs; HTTP/1.1 upstreams expect one header (RFC 9113 §8.2.3).
    if (name === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    else head.headers.push(name, value);
  }
  if (cookie !== undefined) head.headers.push('cookie', cookie);
  if (head.authority === '') {
    for (let i = 0; i < head.headers.length; i += 2) {
      if (head.headers[i] === 'host') {
        head.authority = head.headers[i + 1]!;
        break;
      }
    }
  }
  return head;
}

/** Headers as node's http2 wants them to send: an object, repeated names as arrays, no connection headers. */
export function outgoingHeaders(list: HeaderList, into: OutgoingHttpHeaders = {}): OutgoingHttpHeaders {
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (droppedOnHttp2(name) || name.charCodeAt(0) === 58) continue;
    if (name === 'te' && list[i + 1]!.toLowerCase() !== 'trailers') continue;
    const value = list[i + 1]!;
    const seen = into[name];
    if (seen === undefined) into[name] = value;
    else if (Array.isArray(seen)) seen.push(value);
    else into[name] = [String(seen), value];
  }
  return into;
}

/** A received header object as a flat list, pseudo-headers left out. */
export function flatHeaders(h: IncomingHttpHeaders): HeaderList {
  const out: HeaderList = [];
  for (const name in h) {
    if (name.charCodeAt(0) === 58) continue;
    const v = h[name];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push(name, x);
    else out.push(name, v);
  }
  return out;
}

// A decoded HTTP/2 request header list checked against RFC 9113 §8.3 and split into pseudo and regular headers.

import type { H2RequestHead } from '../headers.js';

/** A malformed request (RFC 9113 §8.1.1): a stream error PROTOCOL_ERROR. */
export class MalformedRequest extends Error {}

/** What the request head tells beyond H2RequestHead: the content-length to check DATA against (-1: none). */
export interface NativeRequestHead extends H2RequestHead {
  contentLength: number;
}

/** Header names HTTP/2 forbids (connection-specific, RFC 9113 §8.2.2); `te` is allowed only as "trailers". */
function connectionSpecific(name: string): boolean {
  switch (name) {
    case 'connection':
    case 'keep-alive':
    case 'proxy-connection':
    case 'transfer-encoding':
    case 'upgrade':
      return true;
    default:
      return false;
  }
}

/** No space and no control character (bytes above 0x7f pass, as on HTTP/1.1). */
function visible(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return false;
  }
  return true;
}

function hasUpperCase(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 65 && c <= 90) return true;
  }
  return false;
}

/** Validates a request's decoded header list ([name, value, ...]); throws MalformedRequest. */
export function requestHeadFrom(list: readonly string[]): NativeRequestHead {
  const head: NativeRequestHead = {
    method: '',
    path: '',
    authority: '',
    scheme: '',
    headers: [],
    contentLength: -1,
  };
  let seen = 0;
  let regular = false;
  let cookie: string | undefined;
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    const value = list[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular) throw new MalformedRequest(`pseudo-header ${name} after a regular header`);
      let bit: number;
      if (name === ':method') bit = 1;
      else if (name === ':path') bit = 2;
      else if (name === ':scheme') bit = 4;
      else if (name === ':authority') bit = 8;
      else throw new MalformedRequest(`unknown pseudo-header ${name}`);
      if (seen & bit) throw new MalformedRequest(`duplicate ${name}`);
      seen |= bit;
      if (bit === 1) head.method = value;
      else if (bit === 2) head.path = value;
      else if (bit === 4) head.scheme = value;
      else head.authority = value;
      continue;
    }
    regular = true;
    if (name.length === 0 || hasUpperCase(name))
      throw new MalformedRequest(`header name "${name}" is not lower-case`);
    if (connectionSpecific(name)) throw new MalformedRequest(`connection-specific header ${name}`);
    if (name === 'te' && value.toLowerCase() !== 'trailers')
      throw new MalformedRequest('te other than "trailers"');
    if (name === 'content-length') {
      if (!/^\d{1,15}$/.test(value)) throw new MalformedRequest('invalid content-length');
      const n = Number(value);
      if (head.contentLength !== -1 && head.contentLength !== n)
        throw new MalformedRequest('conflicting content-length');
      head.contentLength = n;
    }
    // HTTP/2 lets a client split Cookie into crumbs; HTTP/1.1 upstreams expect one header (RFC 9113 §8.2.3).
    if (name === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
    else head.headers.push(name, value);
  }
  if (cookie !== undefined) head.headers.push('cookie', cookie);
  if (head.method === 'CONNECT') {
    if (seen !== (1 | 8)) throw new MalformedRequest('CONNECT takes :method and :authority only');
  } else {
    if ((seen & 7) !== 7) throw new MalformedRequest('missing :method, :scheme or :path');
    if (head.path === '') throw new MalformedRequest('empty :path');
    // They become the request line of an HTTP/1.1 upstream request: no spaces or controls.
    if (!visible(head.path) || !visible(head.method))
      throw new MalformedRequest('space or control in :path or :method');
  }
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

/** Validates request trailers: no pseudo-headers, lower-case names. */
export function trailersFrom(list: readonly string[]): string[] {
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (name.charCodeAt(0) === 58) throw new MalformedRequest(`pseudo-header ${name} in trailers`);
    if (hasUpperCase(name)) throw new MalformedRequest(`header name "${name}" is not lower-case`);
  }
  return list as string[];
}

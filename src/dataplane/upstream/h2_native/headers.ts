// Header lists of the native HTTP/2 client: the request's block to encode, the response's blocks checked.

import type { HeaderList } from '../../http/header_list.js';
import { droppedOnHttp2 } from '../../http/hop_by_hop.js';
import type { UpstreamRequest } from '../upstream_request.js';

/** The request's header list with pseudo-headers first; :authority from `host`, which is not sent itself. */
export function requestHeaderList(req: UpstreamRequest): string[] {
  const h = req.headers;
  const out: string[] = [':method', req.method, ':scheme', req.scheme];
  for (let i = 0; i < h.length; i += 2) {
    if (h[i] === 'host') {
      out.push(':authority', h[i + 1]!);
      break;
    }
  }
  out.push(':path', req.path);
  return appendRegular(h, out);
}

/** Regular headers HTTP/2 may carry (trailers too): no connection-specific ones, `te` only as "trailers". */
export function appendRegular(list: HeaderList, out: string[] = []): string[] {
  for (let i = 0; i < list.length; i += 2) {
    const name = list[i]!;
    if (name.charCodeAt(0) === 58 || droppedOnHttp2(name)) continue;
    const value = list[i + 1]!;
    if (name === 'te' && value.toLowerCase() !== 'trailers') continue;
    out.push(name, value);
  }
  return out;
}

/** A response block RFC 9113 §8.1.1 calls malformed. */
export class MalformedResponse extends Error {}

function checkName(name: string): void {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if ((c >= 65 && c <= 90) || c <= 32 || c === 127 || c === 58) {
      throw new MalformedResponse(`invalid header name ${JSON.stringify(name)}`);
    }
  }
  if (name.length === 0) throw new MalformedResponse('empty header name');
  if (droppedOnHttp2(name) && name !== 'host') {
    throw new MalformedResponse(`connection-specific header ${name}`);
  }
}

function checkValue(value: string): void {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 10 || c === 13) throw new MalformedResponse('CR, LF or NUL in a header value');
  }
}

/** A response head: its status and regular headers, or MalformedResponse. */
export function responseHead(raw: readonly string[]): { status: number; headers: HeaderList } {
  let status = -1;
  let i = 0;
  for (; i < raw.length && raw[i]!.charCodeAt(0) === 58; i += 2) {
    if (raw[i] !== ':status' || status !== -1)
      throw new MalformedResponse(`unexpected ${raw[i]} in a response`);
    const v = raw[i + 1]!;
    if (!/^[1-9][0-9][0-9]$/.test(v)) throw new MalformedResponse(`invalid :status ${JSON.stringify(v)}`);
    status = Number(v);
  }
  if (status === -1) throw new MalformedResponse('response without :status');
  const headers: string[] = [];
  for (; i < raw.length; i += 2) {
    const name = raw[i]!;
    checkName(name);
    checkValue(raw[i + 1]!);
    headers.push(name, raw[i + 1]!);
  }
  return { status, headers };
}

/** A trailer block: regular headers only. */
export function responseTrailers(raw: readonly string[]): HeaderList {
  for (let i = 0; i < raw.length; i += 2) {
    checkName(raw[i]!);
    checkValue(raw[i + 1]!);
  }
  return raw as HeaderList;
}

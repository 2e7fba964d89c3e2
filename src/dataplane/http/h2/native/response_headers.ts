// What of a response head or trailers the native HTTP/2 codec may send: fields HTTP/2 cannot carry are dropped.

import type { HeaderList } from '../../header_list.js';
import { droppedOnHttp2 } from '../../hop_by_hop.js';

/** Names HTTP/2 must not carry (RFC 9113 §8.2.2), dropped from response heads and trailers. */
function forbidden(name: string, value: string): boolean {
  if (droppedOnHttp2(name)) return true;
  if (name === 'te') return value.toLowerCase() !== 'trailers';
  return name.charCodeAt(0) === 58;
}

/** `headers` without what HTTP/2 cannot carry; the same list when nothing needs dropping (the usual case). */
export function sendable(headers: HeaderList): HeaderList {
  for (let i = 0; i < headers.length; i += 2) {
    if (forbidden(headers[i]!, headers[i + 1]!)) {
      const out: HeaderList = [];
      for (let j = 0; j < headers.length; j += 2) {
        if (!forbidden(headers[j]!, headers[j + 1]!)) out.push(headers[j]!, headers[j + 1]!);
      }
      return out;
    }
  }
  return headers;
}

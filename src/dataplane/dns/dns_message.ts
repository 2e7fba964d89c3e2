// The few facts of a DNS message the proxy needs: its id, whether it is a query, and a SERVFAIL answer to it.

/** A DNS header is 12 bytes: id, flags, and four section counts. */
export const DNS_HEADER_BYTES = 12;
const QR = 0x80;

/** A message that can be a query: long enough for a header, with the QR bit clear. */
export function isQuery(msg: Buffer): boolean {
  return msg.length >= DNS_HEADER_BYTES && (msg[2]! & QR) === 0;
}

export function messageId(msg: Buffer): number {
  return msg.readUInt16BE(0);
}

/** The end of the question section (one question), or undefined when the message is cut short. */
function questionEnd(msg: Buffer): number | undefined {
  if (msg.readUInt16BE(4) !== 1) return DNS_HEADER_BYTES;
  let i = DNS_HEADER_BYTES;
  while (i < msg.length) {
    const len = msg[i]!;
    if (len === 0) return i + 5 <= msg.length ? i + 5 : undefined;
    // A compression pointer cannot appear in a query's first name.
    if (len & 0xc0) return undefined;
    i += len + 1;
  }
  return undefined;
}

/**
 * The SERVFAIL answer to `query` (its id and question echoed, recursion available), which a stub resolver reports
 * at once instead of waiting out its own timeout.
 */
export function servfail(query: Buffer): Buffer {
  const end = questionEnd(query) ?? DNS_HEADER_BYTES;
  const out = Buffer.from(query.subarray(0, end));
  const rd = query[2]! & 0x01;
  out[2] = QR | (query[2]! & 0x78) | rd; // response, same opcode, RD copied
  out[3] = 0x80 | 2; // RA, RCODE 2 (SERVFAIL)
  out.writeUInt16BE(end > DNS_HEADER_BYTES ? 1 : 0, 4);
  out.writeUInt16BE(0, 6);
  out.writeUInt16BE(0, 8);
  out.writeUInt16BE(0, 10);
  return out;
}

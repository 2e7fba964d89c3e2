// Test support: a tiny authoritative DNS server on loopback (UDP and TCP) that answers A queries with fixed
// addresses, so DNS clients and the sidecar's DNS port can be tested against real packets.

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';

export interface DnsServer {
  readonly port: number;
  /** Queries received (names, lower-cased), in order. */
  readonly queries: string[];
  close(): Promise<void>;
}

/** Reads the first question's name and type. */
function question(msg: Buffer): { name: string; type: number; end: number } | undefined {
  let i = 12;
  const labels: string[] = [];
  while (i < msg.length && msg[i] !== 0) {
    const len = msg[i]!;
    labels.push(msg.subarray(i + 1, i + 1 + len).toString());
    i += len + 1;
  }
  if (i + 5 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(i + 1), end: i + 5 };
}

/** The answer to a query: the A record from `records` (TTL 30), NXDOMAIN for a name it does not know. */
export function answer(query: Buffer, records: Readonly<Record<string, string>>): Buffer | undefined {
  const q = question(query);
  if (q === undefined) return undefined;
  const address = records[q.name];
  const head = Buffer.from(query.subarray(0, q.end));
  head[2] = 0x84 | (query[2]! & 0x01); // response, authoritative, RD copied
  head[3] = address === undefined ? 3 : 0;
  const a = address !== undefined && q.type === 1;
  head.writeUInt16BE(a ? 1 : 0, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  if (!a) return head;
  const rr = Buffer.alloc(16);
  rr.writeUInt16BE(0xc00c, 0); // the question's name
  rr.writeUInt16BE(1, 2); // A
  rr.writeUInt16BE(1, 4); // IN
  rr.writeUInt32BE(30, 6);
  rr.writeUInt16BE(4, 10);
  address.split('.').forEach((o, i) => {
    rr[12 + i] = Number(o);
  });
  return Buffer.concat([head, rr]);
}

/** Starts the server on `host` (default 127.0.0.1), UDP and TCP on the same port. */
export async function startDnsServer(
  records: Readonly<Record<string, string>>,
  host = '127.0.0.1',
  fixedPort = 0,
): Promise<DnsServer> {
  const queries: string[] = [];
  const udp: UdpSocket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  udp.on('message', (msg, from) => {
    queries.push(question(msg)?.name ?? '?');
    const a = answer(msg, records);
    if (a) udp.send(a, from.port, from.address);
  });
  await new Promise<void>((r) => udp.bind(fixedPort, host, r));
  const port = udp.address().port;
  const sockets = new Set<Socket>();
  const tcp: Server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    let buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        queries.push(question(msg)?.name ?? '?');
        const a = answer(msg, records);
        if (!a) continue;
        const len = Buffer.alloc(2);
        len.writeUInt16BE(a.length);
        s.write(Buffer.concat([len, a]));
      }
    });
  });
  await new Promise<void>((r) => tcp.listen(port, host, r));
  return {
    port,
    queries,
    close: async () => {
      for (const s of sockets) s.destroy();
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

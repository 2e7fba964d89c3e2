// The sidecar's DNS port (15053): queries captured by `remora iptables --capture-dns` are forwarded to the
// resolvers the application would have asked, over UDP and TCP, from the proxy's own user (not captured again).

import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIP, type Server, type Socket } from 'node:net';
import { declareStats, type StatsOf, type StatsStore } from '../observe/stats.js';
import { isQuery, messageId, servfail } from './dns_message.js';
import type { Resolver } from './upstream_resolvers.js';

export const DNS_PROXY_STATS = declareStats({
  counters: [
    'dns_proxy.downstream_rx_queries',
    'dns_proxy.downstream_rx_invalid',
    'dns_proxy.downstream_tx_responses',
    'dns_proxy.upstream_timeouts',
    'dns_proxy.upstream_errors',
    'dns_proxy.servfail_sent',
  ] as const,
  gauges: ['dns_proxy.queries_active'] as const,
  histograms: [] as const,
});

export interface DnsProxyOptions {
  readonly port: number;
  /** Default 127.0.0.1 and ::1 (where REDIRECT delivers captured queries); ::1 is skipped without IPv6. */
  readonly addresses?: readonly string[];
  readonly resolvers: readonly Resolver[];
  /** Per resolver; the next one is tried after it. Default 2500 ms. */
  readonly timeoutMs?: number;
}

/** The largest DNS message over TCP (2-byte length prefix). */
const MAX_TCP_MESSAGE = 65535;

export class DnsProxy {
  private readonly stats: StatsOf<typeof DNS_PROXY_STATS>;
  private readonly pending = new Set<{ cancel(): void }>();
  private readonly tcpClients = new Set<Socket>();
  private readonly udps: UdpSocket[] = [];
  private readonly tcps: Server[] = [];
  private closed = false;

  private constructor(
    private readonly opts: DnsProxyOptions,
    store: StatsStore,
  ) {
    this.stats = store.scope(undefined, DNS_PROXY_STATS);
  }

  static async start(opts: DnsProxyOptions, store: StatsStore): Promise<DnsProxy> {
    if (opts.resolvers.length === 0)
      throw new Error('the DNS proxy has no resolver to forward to (no nameserver in /etc/resolv.conf)');
    const p = new DnsProxy(opts, store);
    try {
      await p.listen();
    } catch (err) {
      await p.close();
      throw err;
    }
    return p;
  }

  get udpPort(): number {
    return this.udps[0]?.address().port ?? 0;
  }

  get tcpPort(): number {
    const a = this.tcps[0]?.address();
    return a && typeof a === 'object' ? a.port : 0;
  }

  /**
   * Binds UDP and TCP on each address. REDIRECT sends a captured query to 127.0.0.1 (::1 for IPv6): the answer must
   * come from exactly that address for conntrack to turn it back into the resolver's, which a wildcard socket does
   * not guarantee (Node has no IP_PKTINFO), hence loopback sockets, as Istio's DNS proxy binds.
   */
  private async listen(): Promise<void> {
    const addresses = this.opts.addresses ?? ['127.0.0.1', '::1'];
    let port = this.opts.port;
    for (const [i, address] of addresses.entries()) {
      try {
        port = await this.bindUdp(address, port);
        await this.bindTcp(address, port);
      } catch (err) {
        // A namespace without IPv6 has no ::1: IPv4 alone still serves.
        const code = (err as NodeJS.ErrnoException).code;
        if (i > 0 && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
        throw err;
      }
    }
  }

  private async bindUdp(address: string, port: number): Promise<number> {
    const udp = createSocket(isIP(address) === 6 ? 'udp6' : 'udp4');
    this.udps.push(udp);
    udp.on('message', (msg, from) => this.onUdpQuery(udp, msg, from.address, from.port));
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, address, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', () => undefined);
    return udp.address().port;
  }

  private async bindTcp(address: string, port: number): Promise<void> {
    const tcp = createServer((s) => this.onTcpClient(s));
    this.tcps.push(tcp);
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host: address, port }, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
    tcp.on('error', () => undefined);
  }

  private onUdpQuery(udp: UdpSocket, msg: Buffer, address: string, port: number): void {
    if (!isQuery(msg)) {
      this.stats['dns_proxy.downstream_rx_invalid'].inc();
      return;
    }
    this.stats['dns_proxy.downstream_rx_queries'].inc();
    this.forward(msg, 'udp', (answer) => {
      if (this.closed) return;
      udp.send(answer, port, address);
      this.stats['dns_proxy.downstream_tx_responses'].inc();
    });
  }

  private onTcpClient(s: Socket): void {
    this.tcpClients.add(s);
    s.once('close', () => this.tcpClients.delete(s));
    s.on('error', () => undefined);
    s.setTimeout(30_000, () => s.destroy());
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        if (!isQuery(msg)) {
          this.stats['dns_proxy.downstream_rx_invalid'].inc();
          s.destroy();
          return;
        }
        this.stats['dns_proxy.downstream_rx_queries'].inc();
        this.forward(Buffer.from(msg), 'tcp', (answer) => {
          if (s.destroyed) return;
          const head = Buffer.alloc(2);
          head.writeUInt16BE(answer.length);
          s.write(Buffer.concat([head, answer]));
          this.stats['dns_proxy.downstream_tx_responses'].inc();
        });
      }
    });
  }

  /** Asks each resolver in turn until one answers; SERVFAIL when none does. */
  private forward(query: Buffer, transport: 'udp' | 'tcp', reply: (answer: Buffer) => void): void {
    const s = this.stats;
    s['dns_proxy.queries_active'].inc();
    const tryResolver = (i: number): void => {
      const resolver = this.opts.resolvers[i];
      if (resolver === undefined || this.closed) {
        s['dns_proxy.queries_active'].dec();
        if (this.closed) return;
        s['dns_proxy.servfail_sent'].inc();
        reply(servfail(query));
        return;
      }
      const ask = transport === 'udp' ? askUdp : askTcp;
      const attempt = ask(resolver, query, this.opts.timeoutMs ?? 2500, (answer, why) => {
        this.pending.delete(attempt);
        if (answer !== undefined) {
          s['dns_proxy.queries_active'].dec();
          reply(answer);
          return;
        }
        if (why === 'timeout') s['dns_proxy.upstream_timeouts'].inc();
        else s['dns_proxy.upstream_errors'].inc();
        tryResolver(i + 1);
      });
      this.pending.add(attempt);
    };
    tryResolver(0);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pending) p.cancel();
    this.pending.clear();
    for (const s of this.tcpClients) s.destroy();
    for (const u of this.udps) u.close();
    await Promise.all(this.tcps.map((t) => new Promise<void>((r) => t.close(() => r()))));
  }
}

type Done = (answer: Buffer | undefined, why?: 'timeout' | 'error') => void;

/** One query to one resolver over UDP, from a socket of its own (the answer must carry the query's id). */
function askUdp(r: Resolver, query: Buffer, timeoutMs: number, done: Done): { cancel(): void } {
  const sock = createSocket(isIP(r.address) === 6 ? 'udp6' : 'udp4');
  let finished = false;
  const finish = (answer: Buffer | undefined, why?: 'timeout' | 'error') => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    sock.close();
    done(answer, why);
  };
  const timer = setTimeout(() => finish(undefined, 'timeout'), timeoutMs);
  sock.on('error', () => finish(undefined, 'error'));
  sock.on('message', (msg, from) => {
    if (from.port === r.port && msg.length >= 2 && messageId(msg) === messageId(query)) finish(msg);
  });
  sock.send(query, r.port, r.address);
  return { cancel: () => finish(undefined, 'error') };
}

/** One query to one resolver over TCP. */
function askTcp(r: Resolver, query: Buffer, timeoutMs: number, done: Done): { cancel(): void } {
  const sock = connect({ host: r.address, port: r.port });
  let finished = false;
  let buf = Buffer.alloc(0);
  const finish = (answer: Buffer | undefined, why?: 'timeout' | 'error') => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    sock.destroy();
    done(answer, why);
  };
  const timer = setTimeout(() => finish(undefined, 'timeout'), timeoutMs);
  sock.on('error', () => finish(undefined, 'error'));
  sock.on('close', () => finish(undefined, 'error'));
  sock.on('connect', () => {
    const head = Buffer.alloc(2);
    head.writeUInt16BE(query.length);
    sock.write(Buffer.concat([head, query]));
  });
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    if (buf.length > MAX_TCP_MESSAGE + 2) return finish(undefined, 'error');
    if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
      finish(buf.subarray(2, 2 + buf.readUInt16BE(0)));
  });
  return { cancel: () => finish(undefined, 'error') };
}

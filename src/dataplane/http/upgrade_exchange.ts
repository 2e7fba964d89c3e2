// One upgrade request sent upstream on a connection of its own: a 101 answer hands both connections over to a
// tunnel; any other answer is relayed as a normal response; failures become local replies.

import type { Socket } from 'node:net';
import { monotonicMs } from '../clock.js';
import { type FailureKind, Failures } from '../errors.js';
import { formatAddress, type ResponseFlag } from '../observe/stream_info.js';
import { chooseUpstream, dropOverload, isRefusal, requestSelection } from '../router/admission.js';
import type { ForwardContext } from '../router/router.js';
import { countStatus } from '../router/router.js';
import { countConnectionClosed, countConnectionOpened, countRequestStarted } from '../upstream/accounting.js';
import { connectToHost } from '../upstream/connect.js';
import type { Host } from '../upstream/host.js';
import { H1ParseError, parseHead, parseStatusLine, responseFraming } from './h1/parse.js';
import { H1Stream } from './h1/stream.js';
import { type HeaderList, headerSet } from './header_list.js';
import { Tunnel, type TunnelEnd } from './tunnel.js';
import type { UpgradeOptions } from './upgrade.js';
import { RefusalBody, upstreamResponseHeaders } from './upgrade_response.js';

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** The upstream's response head must fit in this (the keep-alive pool's limit too). */
const MAX_RESPONSE_HEAD = 96 * 1024;

enum State {
  Connecting = 0,
  AwaitingHead = 1,
  /** Relaying a response other than 101. */
  Responding = 2,
  Tunnel = 3,
  Done = 4,
}

/**
 * Created per upgrade request by startUpgrade(); lives until the tunnel or the relayed response ends. Counts the
 * upstream request and connection in the cluster's stats and circuit breakers as the keep-alive pool would.
 */
export class UpgradeExchange {
  private state = State.Connecting;
  private socket: Socket | undefined;
  private host: Host | undefined;
  private requestStart = 0;
  private pending = false;
  private requestOpen = false;
  private head: Buffer | undefined;
  private body: RefusalBody | undefined;

  constructor(
    private readonly ctx: ForwardContext,
    private readonly opts: UpgradeOptions,
  ) {}

  start(): void {
    const { cluster, stream, info } = this.ctx;
    stream.onDone(() => {
      if (this.state !== State.Done) this.abandon();
    });
    if (!(stream instanceof H1Stream) || cluster.config.upstreamProtocol === 'HTTP2') {
      // Only an HTTP/1.1 connection can be handed over, and only an HTTP/1.1 upstream can be asked to switch.
      return this.fail(
        Failures.upgradeRefused,
        `upgrade to "${this.opts.upgrade}" refused: cluster "${cluster.config.name}" is not reached over HTTP/1.1`,
      );
    }
    const dropped = dropOverload(cluster);
    if (dropped !== undefined) return this.fail(dropped.kind, dropped.message);
    const c = this.ctx;
    const host = chooseUpstream(cluster, requestSelection(cluster, c.hashKey, c.stream, c.headers), true);
    if (isRefusal(host)) return this.fail(host.kind, host.message);
    this.host = host;
    info.attemptCount = 1;
    info.upstreamHost = host.key;
    this.requestOpen = true;
    this.pending = true;
    this.requestStart = monotonicMs();
    countRequestStarted(cluster.stats, cluster.breaker, host);
    this.connect(host);
  }

  private connect(host: Host): void {
    const { cluster } = this.ctx;
    const stats = cluster.stats;
    countConnectionOpened(stats, cluster.breaker, host, 'http1');
    const opened = monotonicMs();
    // A host with an UpstreamTlsContext gets its upgrades over TLS too (WebSocket over wss to the host).
    const tls = host.tls;
    const alpn = tls === undefined ? undefined : this.ctx.alpn?.upgrade?.protocols;
    const socket: Socket = connectToHost({ config: cluster.config, tls }, host, {
      allowHalfOpen: true,
      alpn,
    });
    this.socket = socket;
    const timeoutMs = cluster.config.connectTimeoutMs;
    const timer = setTimeout(() => {
      stats.upstream_cx_connect_timeout.inc();
      this.connectFailed(`connect timeout after ${timeoutMs} ms`);
      socket.destroy();
    }, timeoutMs);
    socket.on('error', (err) => {
      if (this.state === State.Connecting) this.connectFailed(err.message);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      countConnectionClosed(stats, cluster.breaker, host, socket);
      this.upstreamClosed();
    });
    socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      stats.upstream_cx_connect_ms.record(monotonicMs() - opened);
      if (this.state !== State.Connecting) {
        socket.destroy();
        return;
      }
      this.ctx.info.upstreamLocalAddress = formatAddress(socket.localAddress, socket.localPort);
      this.sendHead(socket);
    });
  }

  private connectFailed(reason: string): void {
    if (this.state !== State.Connecting) return;
    this.ctx.cluster.stats.upstream_cx_connect_fail.inc();
    if (this.host) this.host.counters.cxConnectFail++;
    this.ctx.info.upstreamTransportFailureReason = reason;
    this.endRequest(false);
    this.fail(
      Failures.connectFailure,
      `upstream connect error or disconnect/reset before headers. reset reason: connection failure (${this.where()}: ${reason})`,
    );
  }

  private sendHead(socket: Socket): void {
    this.leavePending();
    this.state = State.AwaitingHead;
    const { stream, path, headers } = this.ctx;
    let head = `${stream.method} ${path} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    // Connection and Upgrade are hop-by-hop, but they are this hop's request: they go upstream as asked.
    head += `connection: upgrade\r\nupgrade: ${this.opts.upgrade}\r\n\r\n`;
    socket.write(head, 'latin1');
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
  }

  private readonly onData = (d: Buffer): void => {
    try {
      if (this.state === State.AwaitingHead) this.onHeadBytes(d);
      else if (this.state === State.Responding) this.body?.feed(d);
    } catch (err) {
      this.protocolError((err as Error).message);
    }
  };

  private onHeadBytes(d: Buffer): void {
    let buf = this.head ? Buffer.concat([this.head, d]) : d;
    for (;;) {
      const end = buf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD) throw new H1ParseError('upstream response head too large');
        this.head = buf;
        return;
      }
      this.head = undefined;
      const parsed = parseHead(buf, 0, end, 1000);
      const line = parseStatusLine(parsed.startLine);
      const rest = buf.length > end + 4 ? buf.subarray(end + 4) : undefined;
      if (line.status === 101) return this.switchProtocols(line.reason, parsed.headers, rest);
      if (line.status >= 200) return this.respond(line.status, line.reason, parsed.headers, rest);
      // Another 1xx (100 Continue ...): interim, the real answer follows.
      if (!rest) return;
      buf = rest;
    }
  }

  /** The response head as the client gets it: this hop's headers gone, mutations and the proxy's own added. */
  private responseHeaders(parsed: readonly string[]): { headers: HeaderList; upgrade: string | undefined } {
    const out = upstreamResponseHeaders(parsed);
    const { info, subst } = this.ctx;
    for (const m of this.ctx.mutators) m.applyResponse(out.headers, subst);
    const now = monotonicMs();
    info.responseStartMs = now - info.startMonotonic;
    headerSet(out.headers, 'x-envoy-upstream-service-time', String(Math.round(now - this.requestStart)));
    this.ctx.decorateResponse(out.headers);
    return out;
  }

  /** 101: the head goes downstream as is, and from here on bytes flow both ways untouched. */
  private switchProtocols(reason: string, parsed: readonly string[], rest: Buffer | undefined): void {
    const { stream, info, cluster } = this.ctx;
    const socket = this.socket!;
    const h1 = stream as H1Stream;
    const handover = h1.connection.detach(h1);
    if (!handover) {
      // Cannot happen while the request awaits its response (a downstream gone has abandoned the exchange).
      this.abandon();
      return stream.destroy();
    }
    this.state = State.Tunnel;
    countStatus(cluster.stats, 101);
    const { headers, upgrade } = this.responseHeaders(parsed);
    headers.push('connection', 'upgrade', 'upgrade', upgrade ?? this.opts.upgrade);
    info.responseCode = 101;
    info.responseCodeDetails = 'via_upstream';
    info.responseHeaders = headers;
    this.opts.stats.downstream_cx_upgrades_total.inc();
    this.opts.stats.downstream_cx_upgrades_active.inc();
    let head = `HTTP/1.1 101 ${reason || 'Switching Protocols'}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    const downstream = h1.connection.socket;
    downstream.write(`${head}\r\n`, 'latin1');
    socket.off('data', this.onData);
    socket.off('end', this.onEnd);
    socket.pause();
    const tunnel = new Tunnel(downstream, socket, this.opts.idleTimeoutMs, this.tunnelClosed);
    tunnel.sendEarly(handover.early, rest);
    tunnel.start();
  }

  private readonly tunnelClosed = (end: TunnelEnd): void => {
    const { info, cluster, stream } = this.ctx;
    this.state = State.Done;
    this.opts.stats.downstream_cx_upgrades_active.dec();
    info.bytesReceived = end.downstreamBytes;
    info.bytesSent = end.upstreamBytes;
    if (end.reason === 'idle_timeout') {
      this.opts.stats.downstream_rq_idle_timeout.inc();
      this.flag('SI');
      info.connectionTerminationDetails = 'stream idle timeout';
    } else if (end.reason === 'upstream_reset') {
      cluster.stats.upstream_rq_rx_reset.inc();
      this.flag('UR');
    } else if (end.reason === 'downstream_reset') {
      cluster.stats.upstream_rq_tx_reset.inc();
      this.flag('DC');
    }
    this.endRequest(true);
    // Nothing is written: the codec gave the socket up; this only reports the request done (stats, access log).
    stream.end();
  };

  /** Any answer but 101: relayed as a normal response, then both connections close. */
  private respond(status: number, reason: string, parsed: readonly string[], rest: Buffer | undefined): void {
    const { stream, info, cluster } = this.ctx;
    const framing = responseFraming(parsed, status, stream.method);
    this.state = State.Responding;
    countStatus(cluster.stats, status);
    const { headers } = this.responseHeaders(parsed);
    info.responseCode = status;
    info.responseCodeDetails = 'via_upstream';
    info.responseHeaders = headers;
    stream.keepAlive = false;
    stream.writeHead(status, headers, reason);
    const body = new RefusalBody(framing, stream, info, this.socket!, () => this.responseComplete());
    this.body = body;
    if (body.empty) return this.responseComplete();
    if (rest) body.feed(rest);
    else stream.flushHeaders();
  }

  private responseComplete(): void {
    if (this.state !== State.Responding) return;
    this.state = State.Done;
    this.endRequest(true);
    this.socket?.destroy(); // never reused: it was opened for an upgrade
    this.ctx.stream.end();
  }

  private readonly onEnd = (): void => {
    // Unless it ends a read-until-close body, the upstream stopped short: the close that follows says so.
    if (!(this.state === State.Responding && this.body?.upstreamEnded())) this.socket?.destroy();
  };

  private upstreamClosed(): void {
    const { cluster, info, stream } = this.ctx;
    switch (this.state) {
      case State.Connecting:
        return this.connectFailed('connection closed before it was established');
      case State.AwaitingHead:
        cluster.stats.upstream_rq_rx_reset.inc();
        this.endRequest(false);
        return this.fail(
          Failures.upstreamReset,
          `upstream connect error or disconnect/reset before headers. reset reason: remote reset (${this.where()}: upstream closed the connection before responding)`,
        );
      case State.Responding:
        // The response had begun: all that is left is to reset the downstream too (Envoy's UR after headers).
        this.state = State.Done;
        cluster.stats.upstream_rq_rx_reset.inc();
        this.flag('UR');
        info.connectionTerminationDetails = 'upstream closed the connection mid-response';
        this.endRequest(false);
        stream.destroy();
        return;
      default:
        return; // the tunnel sees its own close; Done has nothing left to do
    }
  }

  private protocolError(message: string): void {
    const { cluster, info, stream } = this.ctx;
    if (this.state === State.AwaitingHead) {
      this.endRequest(false);
      this.fail(
        Failures.upstreamProtocolError,
        `upstream sent a malformed response (${this.where()}): ${message}`,
      );
      this.socket?.destroy();
      return;
    }
    if (this.state !== State.Responding) return;
    this.state = State.Done;
    cluster.stats.upstream_rq_rx_reset.inc();
    this.flag('UPE');
    info.connectionTerminationDetails = message;
    this.endRequest(false);
    this.socket?.destroy();
    stream.destroy();
  }

  /** The downstream is gone (closed, reset, or answered by its codec's timeout) before the exchange ended. */
  private abandon(): void {
    if (this.state === State.Done) return;
    this.state = State.Done;
    if (this.requestOpen) {
      this.ctx.cluster.stats.upstream_rq_tx_reset.inc();
      this.flag('DC');
    }
    this.endRequest(false);
    this.socket?.destroy();
  }

  private fail(kind: FailureKind, message: string): void {
    if (this.state === State.Done) return;
    this.state = State.Done;
    this.ctx.onLocalFailure(kind, message);
  }

  private leavePending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.ctx.cluster.stats.upstream_rq_pending_active.dec();
    this.ctx.cluster.breaker.pendingRequests--;
  }

  /** Ends the upstream request's accounting, once. `answered`: the upstream responded (101 or not). */
  private endRequest(answered: boolean): void {
    if (!this.requestOpen) return;
    this.requestOpen = false;
    this.leavePending();
    const { cluster, info } = this.ctx;
    const host = this.host;
    if (host) {
      host.activeRequests--;
      if (answered && info.responseCode < 500) host.counters.rqSuccess++;
      else host.counters.rqError++;
    }
    cluster.stats.upstream_rq_active.dec();
    cluster.breaker.requests--;
    if (answered) {
      cluster.stats.upstream_rq_completed.inc();
      cluster.stats.upstream_rq_time.record(monotonicMs() - this.requestStart);
    }
  }

  private flag(f: ResponseFlag): void {
    if (!this.ctx.info.responseFlags.includes(f)) this.ctx.info.responseFlags.push(f);
  }

  private where(): string {
    return `cluster "${this.ctx.cluster.config.name}" host ${this.host?.key ?? '-'}`;
  }
}

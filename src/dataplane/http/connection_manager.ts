// Envoy's http_connection_manager for HTTP/1.1: parses requests on accepted sockets and routes each one.

import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { ForwardActionConfig, HcmConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { type FailureKind, Failures } from '../errors.js';
import { AccessLogger } from '../observe/access_log.js';
import { type Counter, type StatsStore, scopes } from '../observe/stats.js';
import { formatAddress, newStreamInfo, type StreamInfo } from '../observe/stream_info.js';
import { ReplayableBody } from '../router/body_buffer.js';
import { computeHash } from '../router/hash_policy.js';
import { CompiledRetryPolicy } from '../router/retry_state.js';
import { type CompiledRoute, RouteTable } from '../router/route_table.js';
import { type ForwardContext, Forwarder } from '../router/router.js';
import type { ClusterManager } from '../upstream/cluster_manager.js';
import { pickWeighted } from '../upstream/weighted.js';
import { detectHttp2Preface } from './codec_detect.js';
import { grpcStatusForHttp, isGrpcContentType, parseGrpcTimeout } from './grpc.js';
import { Http1ServerConnection, type ServerCodecOptions } from './h1/server_connection.js';
import { type H2ServerOptions, Http2ServerConnection } from './h2/server_connection.js';
import { type HeaderList, headerHas, headerSet } from './header_list.js';
import { HeaderMutator, type SubstitutionContext } from './header_mutation.js';
import { sendLocalReply } from './local_reply.js';
import { applyForwardingHeaders, upstreamHeaderList } from './request_headers.js';
import { buildRedirect, rewritePath } from './rewrite.js';
import { HCM_STATS, type HcmStats, HTTP2_CODEC_STATS, type Http2CodecStats } from './stats.js';
import type { DownstreamConnection, DownstreamStream } from './stream.js';
import { requestedUpgrade, startUpgrade, upgradeAllowed } from './upgrade.js';

export interface ConnectionManagerDeps {
  readonly clusters: ClusterManager;
  readonly store: StatsStore;
  /** Bytes of request body kept for retries (the listener's per_connection_buffer_limit_bytes). */
  readonly retryBufferLimit: number;
}

export class ConnectionManager {
  readonly stats: HcmStats;
  private readonly codecOptions: ServerCodecOptions;
  private readonly routes: RouteTable;
  private readonly accessLogs: AccessLogger[];
  private readonly retryPolicies = new Map<object, CompiledRetryPolicy>();
  private readonly weightedMutators = new Map<object, HeaderMutator[]>();
  private readonly connections = new Set<Http1ServerConnection>();
  private readonly h2Connections = new Set<Http2ServerConnection>();
  private readonly h2Options: H2ServerOptions;
  private readonly h2Stats: Http2CodecStats;
  private readonly grpcStatusCounters: Counter[] = [];
  private draining = false;
  private activeRequests = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly config: HcmConfig,
    private readonly deps: ConnectionManagerDeps,
  ) {
    this.stats = deps.store.scope(scopes.http(config.statPrefix), HCM_STATS);
    this.routes = new RouteTable(config.routeConfig);
    this.accessLogs = config.accessLogs.map((c) => new AccessLogger(c));
    this.codecOptions = {
      maxHeaderBytes: config.maxRequestHeadersKb * 1024,
      maxHeaders: config.maxHeadersCount,
      idleTimeoutMs: config.idleTimeoutMs,
      headersTimeoutMs: config.requestHeadersTimeoutMs,
      streamIdleTimeoutMs: config.streamIdleTimeoutMs,
      delayedCloseTimeoutMs: config.delayedCloseTimeoutMs,
    };
    this.h2Options = {
      http2: config.http2,
      maxHeaderBytes: config.maxRequestHeadersKb * 1024,
      maxHeaders: config.maxHeadersCount,
      idleTimeoutMs: config.idleTimeoutMs,
      drainTimeoutMs: config.drainTimeoutMs,
    };
    this.h2Stats = deps.store.scope(undefined, HTTP2_CODEC_STATS);
    this.prebuild();
  }

  /** Compiles per-route objects once per config so requests only look them up. */
  private prebuild(): void {
    for (const vh of this.config.routeConfig.virtualHosts) {
      for (const r of vh.routes) {
        if (r.action.kind !== 'route') continue;
        const policy = r.action.route.retryPolicy;
        if (policy) this.retryPolicies.set(policy, new CompiledRetryPolicy(policy));
        for (const wc of r.action.route.clusters) {
          const m = new HeaderMutator(wc);
          if (!m.empty) this.weightedMutators.set(wc, [m]);
        }
      }
    }
  }

  /** Takes ownership of an accepted connection (plain, or TLS already terminated) and picks its codec. */
  onConnection(socket: Socket): void {
    const secure = socket instanceof TLSSocket;
    const codec = this.config.codecType;
    if (codec === 'HTTP1') return this.startHttp1(socket, secure);
    if (codec === 'HTTP2') return this.startHttp2(socket, secure);
    const alpn = secure ? (socket as TLSSocket).alpnProtocol : false;
    if (alpn === 'h2') return this.startHttp2(socket, true);
    if (alpn === 'http/1.1' || alpn === 'http/1.0') return this.startHttp1(socket, true);
    // No ALPN to go by: the HTTP/2 connection preface tells (Envoy's AUTO codec does the same).
    detectHttp2Preface(socket, this.config.idleTimeoutMs, (h2) =>
      h2 ? this.startHttp2(socket, secure) : this.startHttp1(socket, secure),
    );
  }

  private connectionInfo(socket: Socket, secure: boolean): DownstreamConnection {
    return {
      remoteIp: socket.remoteAddress ?? '',
      remoteAddress: formatAddress(socket.remoteAddress, socket.remotePort),
      localAddress: formatAddress(socket.localAddress, socket.localPort),
      secure,
    };
  }

  /** Counts a new connection; returns what to call when it closes. */
  private opened(socket: Socket, secure: boolean, h2: boolean): void {
    const s = this.stats;
    s.downstream_cx_total.inc();
    s.downstream_cx_active.inc();
    if (h2) {
      s.downstream_cx_http2_total.inc();
      s.downstream_cx_http2_active.inc();
    } else {
      s.downstream_cx_http1_total.inc();
      s.downstream_cx_http1_active.inc();
    }
    if (secure) {
      s.downstream_cx_ssl_total.inc();
      s.downstream_cx_ssl_active.inc();
    }
    const opened = monotonicMs();
    socket.once('close', () => {
      s.downstream_cx_active.dec();
      if (h2) s.downstream_cx_http2_active.dec();
      else s.downstream_cx_http1_active.dec();
      if (secure) s.downstream_cx_ssl_active.dec();
      s.downstream_cx_destroy.inc();
      s.downstream_cx_rx_bytes_total.inc(socket.bytesRead);
      s.downstream_cx_tx_bytes_total.inc(socket.bytesWritten);
      s.downstream_cx_length_ms.record(monotonicMs() - opened);
      if (this.draining) s.downstream_cx_drain_close.inc();
      this.notifyIfIdle();
    });
  }

  private startHttp1(socket: Socket, secure: boolean): void {
    const s = this.stats;
    const conn = new Http1ServerConnection(socket, this.codecOptions, {
      onRequest: this.onRequest,
      onProtocolError: (kind) => {
        switch (kind) {
          case 'parse':
            s.downstream_cx_protocol_error.inc();
            break;
          case 'too_large':
            s.downstream_rq_too_large.inc();
            break;
          case 'header_timeout':
            s.downstream_rq_header_timeout.inc();
            break;
          case 'idle_timeout':
            s.downstream_cx_idle_timeout.inc();
            break;
          case 'stream_idle':
            s.downstream_rq_idle_timeout.inc();
            break;
        }
      },
    });
    const info = this.connectionInfo(socket, secure);
    conn.remoteIp = info.remoteIp;
    conn.remoteAddress = info.remoteAddress;
    conn.localAddress = info.localAddress;
    conn.secure = secure;
    if (this.draining) conn.draining = true;
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
    this.opened(socket, secure, false);
    // Bytes read to choose the codec were put back: reading must start again.
    socket.resume();
  }

  private startHttp2(socket: Socket, secure: boolean): void {
    const s = this.stats;
    const conn = new Http2ServerConnection(
      socket,
      this.connectionInfo(socket, secure),
      this.h2Options,
      this.h2Stats,
      {
        onStream: this.onRequest,
        onIdleTimeout: () => s.downstream_cx_idle_timeout.inc(),
        onPrematureResets: () => s.downstream_rq_too_many_premature_resets.inc(),
        onProtocolError: () => s.downstream_cx_protocol_error.inc(),
      },
    );
    this.h2Connections.add(conn);
    socket.once('close', () => this.h2Connections.delete(conn));
    this.opened(socket, secure, true);
    if (this.draining) conn.drain();
  }

  private readonly onRequest = (stream: DownstreamStream): void => {
    const s = this.stats;
    s.downstream_rq_total.inc();
    if (stream.protocol === 'HTTP/2') s.downstream_rq_http2_total.inc();
    else s.downstream_rq_http1_total.inc();
    s.downstream_rq_active.inc();
    this.activeRequests++;
    const info = newStreamInfo(
      stream.protocol,
      stream.connection.remoteAddress,
      stream.connection.localAddress,
    );
    const url = stream.url;
    let authority = stream.authority;
    const http10 = stream.protocol === 'HTTP/1.0';
    const scheme = stream.connection.secure ? 'https' : 'http';
    if (http10 && authority === '' && this.config.defaultHostForHttp10 !== undefined) {
      authority = this.config.defaultHostForHttp10;
    }
    info.method = stream.method;
    info.path = url;
    info.authority = authority;
    // Only access logs read the request headers as an object: build it only when one is configured.
    const logged = this.accessLogs.length > 0 ? headersRecord(stream.headers) : undefined;
    info.requestHeaders = logged;
    let requestTimer: NodeJS.Timeout | undefined;
    if (this.config.requestTimeoutMs > 0 && !stream.complete) {
      // request_timeout: the whole request must arrive in time (the response may take longer).
      requestTimer = setTimeout(() => {
        if (stream.complete || stream.finished || stream.aborted) return;
        s.downstream_rq_timeout.inc();
        if (stream.headersSent) return stream.destroy();
        stream.timedOut = true;
        stream.keepAlive = false;
        this.localReply(
          stream,
          info,
          Failures.requestTimeout,
          `request timeout: the whole request was not received within request_timeout (${this.config.requestTimeoutMs} ms)`,
        );
      }, this.config.requestTimeoutMs);
    }
    stream.onDone(() => {
      if (requestTimer) clearTimeout(requestTimer);
      this.onStreamDone(stream, info);
    });
    if (this.draining) stream.keepAlive = false;

    if (http10 && !this.config.acceptHttp10) {
      // Envoy's default: HTTP/1.0 is refused unless the listener opts in.
      info.responseCodeDetails = 'low_version';
      stream.keepAlive = false;
      return this.reply(
        stream,
        info,
        426,
        'HTTP/1.0 requests are not accepted here (set http_protocol_options.accept_http_10: true)\n',
      );
    }
    if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
      s.downstream_rq_non_relative_path.inc();
      info.responseCodeDetails = 'absolute_path_rejected';
      return this.reply(
        stream,
        info,
        404,
        `absolute-form request target "${url}" is not routed by this listener\n`,
      );
    }
    const match = this.routes.route({
      method: stream.method,
      path: url,
      authority,
      scheme,
      header: (name) => stream.header(name),
    });
    const upgrade = requestedUpgrade(stream);
    if (upgrade !== undefined) {
      // Any answer but 101 ends the connection: what the client sends next may already be the new protocol.
      stream.keepAlive = false;
      if (!upgradeAllowed(this.config.upgradeConfigs, match?.route, upgrade)) {
        s.downstream_rq_ws_on_non_ws_route.inc();
        return this.localReply(
          stream,
          info,
          Failures.upgradeRefused,
          `upgrade to "${upgrade}" is not enabled by upgrade_configs for this route`,
        );
      }
    }
    if (!match) {
      s.no_route.inc();
      return this.localReply(
        stream,
        info,
        Failures.noRoute,
        `no route matched host "${authority}" path "${url}"`,
      );
    }
    const route = match.route;
    info.routeName = route.name || undefined;
    const action = route.action;
    if (action.kind === 'direct_response') {
      s.rq_direct_response.inc();
      info.responseCodeDetails = 'direct_response';
      return this.reply(stream, info, action.status, action.body ?? '', route);
    }
    if (action.kind === 'redirect') {
      s.rq_redirect.inc();
      info.responseCodeDetails = 'redirect';
      const location = buildRedirect(action.redirect, route, url, authority, scheme);
      return this.reply(stream, info, action.redirect.responseCode, '', route, ['location', location]);
    }
    this.forward(stream, info, route, url, scheme, upgrade);
  };

  private forward(
    stream: DownstreamStream,
    info: StreamInfo,
    route: CompiledRoute,
    url: string,
    scheme: string,
    upgrade: string | undefined,
  ): void {
    if (route.action.kind !== 'route') return;
    const fwd = route.action.route;
    const wc = pickWeighted(fwd.clusters, fwd.totalWeight);
    const cluster = this.deps.clusters.get(wc.name);
    info.upstreamCluster = wc.name;
    if (!cluster) {
      this.stats.no_cluster.inc();
      return this.localReply(
        stream,
        info,
        Failures.noCluster,
        `cluster "${wc.name}" of route "${route.name}" does not exist`,
      );
    }
    const headers = upstreamHeaderList(stream.headers);
    info.requestId = applyForwardingHeaders(headers, this.config, stream.connection.remoteIp, scheme);
    // Access logs show the request as forwarded, with the id the proxy generated.
    if (info.requestId !== undefined && info.requestHeaders) {
      (info.requestHeaders as Record<string, string>)['x-request-id'] = info.requestId;
    }
    const subst: SubstitutionContext = {
      downstreamRemoteAddress: info.downstreamRemoteAddress,
      downstreamLocalAddress: info.downstreamLocalAddress,
      upstreamHost: undefined,
      protocol: info.protocol,
      requestId: info.requestId,
    };
    const weighted = this.weightedMutators.get(wc);
    const mutators = weighted ? [...weighted, ...route.mutators] : route.mutators;
    for (const m of mutators) m.applyRequest(headers, subst);
    if (fwd.hostRewriteLiteral !== undefined) headerSet(headers, 'host', fwd.hostRewriteLiteral);
    // An HTTP/1.0 request may come without Host; the upstream speaks HTTP/1.1, which requires one.
    else if (info.authority === '') headers.push('host', stream.connection.localAddress);
    else if (stream.header('host') === undefined) headers.push('host', info.authority ?? '');
    const path = rewritePath(route, fwd, url);
    if (path !== url) headers.push('x-envoy-original-path', url);
    const hasBody = stream.hasBody;
    const grpc = isGrpc(stream);
    const grpcTimeoutMs = grpc ? effectiveGrpcTimeout(stream.header('grpc-timeout'), fwd) : undefined;
    const setCookies: string[] = [];
    const hashKey =
      fwd.hashPolicy.length > 0
        ? computeHash(fwd.hashPolicy, {
            header: (name) => stream.header(name),
            sourceIp: stream.connection.remoteIp,
            path: url,
            setCookies,
          })
        : undefined;
    const ctx: ForwardContext = {
      stream,
      info,
      route,
      mutators,
      action: fwd,
      cluster,
      grpcTimeoutMs,
      retryPolicy: fwd.retryPolicy ? this.retryPolicies.get(fwd.retryPolicy) : undefined,
      hashKey,
      path,
      headers,
      body: hasBody ? new ReplayableBody(stream, this.deps.retryBufferLimit, info) : undefined,
      subst,
      grpc,
      scheme,
      onLocalFailure: (kind, message) => this.localReply(stream, info, kind, message),
      decorateResponse: (h) => {
        for (const c of setCookies) h.push('set-cookie', c);
        this.decorate(h);
      },
    };
    // An upgrade gets a connection of its own, which becomes a tunnel when the upstream agrees (101).
    if (upgrade !== undefined) {
      const idleTimeoutMs = fwd.idleTimeoutMs || this.config.streamIdleTimeoutMs;
      return startUpgrade(ctx, { upgrade, idleTimeoutMs, stats: this.stats });
    }
    new Forwarder(ctx).start();
  }

  /** Proxy-owned response headers: server (connection: close while draining is the codec's). */
  private decorate(h: HeaderList): void {
    switch (this.config.serverHeaderTransformation) {
      case 'OVERWRITE':
        headerSet(h, 'server', this.config.serverName);
        break;
      case 'APPEND_IF_ABSENT':
        if (!headerHas(h, 'server')) h.push('server', this.config.serverName);
        break;
      case 'PASS_THROUGH':
        break;
    }
  }

  private localReply(stream: DownstreamStream, info: StreamInfo, kind: FailureKind, message: string): void {
    if (kind.flag && !info.responseFlags.includes(kind.flag)) info.responseFlags.push(kind.flag);
    info.responseCodeDetails = kind.details;
    const grpc = isGrpc(stream);
    info.responseCode = grpc ? 200 : kind.status;
    if (grpc) info.grpcStatus = kind.grpcStatus;
    if (stream.headersSent) {
      stream.destroy();
      return;
    }
    const extra: HeaderList = [];
    this.decorate(extra);
    info.bytesSent += sendLocalReply(stream, { kind, message, grpc, extraHeaders: extra });
  }

  private reply(
    stream: DownstreamStream,
    info: StreamInfo,
    status: number,
    body: string,
    route?: CompiledRoute,
    extra?: HeaderList,
  ): void {
    const h: HeaderList = extra ? [...extra] : [];
    if (body.length > 0) {
      h.push('content-type', 'text/plain', 'content-length', String(Buffer.byteLength(body)));
    } else if (status >= 200 && status !== 204 && status !== 304) {
      h.push('content-length', '0');
    }
    if (route) {
      const subst: SubstitutionContext = {
        downstreamRemoteAddress: info.downstreamRemoteAddress,
        downstreamLocalAddress: info.downstreamLocalAddress,
        upstreamHost: undefined,
        protocol: info.protocol,
        requestId: undefined,
      };
      for (const m of route.mutators) m.applyResponse(h, subst);
    }
    this.decorate(h);
    info.responseCode = status;
    info.responseHeaders = h;
    stream.writeHead(status, h);
    stream.end(body);
    if (stream.method !== 'HEAD') info.bytesSent += Buffer.byteLength(body);
  }

  private onStreamDone(stream: DownstreamStream, info: StreamInfo): void {
    const s = this.stats;
    s.downstream_rq_active.dec();
    this.activeRequests--;
    if (!stream.finished) {
      s.downstream_rq_rx_reset.inc();
      if (!info.responseFlags.includes('DC') && !stream.complete) info.responseFlags.push('DC');
    }
    s.downstream_rq_completed.inc();
    const code = info.responseCode || stream.statusCode;
    info.responseCode = code;
    if (code < 200) s.downstream_rq_1xx.inc();
    else if (code < 300) s.downstream_rq_2xx.inc();
    else if (code < 400) s.downstream_rq_3xx.inc();
    else if (code < 500) s.downstream_rq_4xx.inc();
    else s.downstream_rq_5xx.inc();
    if (isGrpc(stream)) {
      // A reset call never got a status; one answered without grpc-status gets the status gRPC maps it to.
      const g = stream.finished ? (info.grpcStatus ?? grpcStatusForHttp(code)) : 1; // 1 CANCELLED
      info.grpcStatus = g;
      this.grpcStatusCounter(g).inc();
    }
    const duration = monotonicMs() - info.startMonotonic;
    info.durationMs = duration;
    s.downstream_rq_time.record(duration);
    for (const log of this.accessLogs) log.log(info);
    this.notifyIfIdle();
  }

  /** http.<prefix>.grpc_response_status.<code>: Prometheus label grpc_response_status. */
  private grpcStatusCounter(code: number): Counter {
    let c = this.grpcStatusCounters[code];
    if (c === undefined) {
      const tag = scopes.http(this.config.statPrefix);
      const stat = `grpc_response_status.${code}`;
      c = this.deps.store.counter(tag.prefix + stat, tag, stat);
      this.grpcStatusCounters[code] = c;
    }
    return c;
  }

  private notifyIfIdle(): void {
    if (
      this.activeRequests === 0 &&
      this.connections.size + this.h2Connections.size === 0 &&
      this.idleWaiters.length > 0
    ) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Stops keep-alive: every connection closes after its next response (connection: close). Idle connections
   * are not closed now: a client may be sending a request on one at this moment, and closing it would lose
   * that request. The drain time bounds the wait for connections that stay quiet.
   */
  drain(): void {
    this.draining = true;
    for (const c of this.connections) c.draining = true;
    for (const c of this.h2Connections) c.drain();
  }

  /** Resolves when no request is in flight and every downstream connection has closed. */
  whenIdle(): Promise<void> {
    if (this.activeRequests === 0 && this.connections.size + this.h2Connections.size === 0)
      return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.socket.destroy();
    for (const c of this.h2Connections) c.destroy();
    await Promise.all(this.accessLogs.map((l) => l.close()));
  }
}

function isGrpc(stream: DownstreamStream): boolean {
  return isGrpcContentType(stream.header('content-type'));
}

/** A call's grpc-timeout as the route bounds it (cap, offset); undefined when the header is absent or bad. */
function effectiveGrpcTimeout(header: string | undefined, fwd: ForwardActionConfig): number | undefined {
  const asked = parseGrpcTimeout(header);
  if (asked === undefined) return undefined;
  let ms = fwd.grpcTimeoutMaxMs > 0 ? Math.min(asked, fwd.grpcTimeoutMaxMs) : asked;
  if (fwd.grpcTimeoutOffsetMs > 0 && ms > fwd.grpcTimeoutOffsetMs) ms -= fwd.grpcTimeoutOffsetMs;
  return ms;
}

function headersRecord(list: readonly string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i < list.length; i += 2) {
    const k = list[i]!;
    o[k] = o[k] === undefined ? list[i + 1]! : `${o[k]},${list[i + 1]}`;
  }
  return o;
}

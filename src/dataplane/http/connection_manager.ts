// Envoy's http_connection_manager for HTTP/1.1: parses requests on accepted sockets and routes each one.

import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { Socket } from 'node:net';
import type { HcmConfig } from '../../config/model.js';
import { type FailureKind, Failures } from '../errors.js';
import { AccessLogger } from '../observe/access_log.js';
import { type StatsStore, scopes } from '../observe/stats.js';
import { formatAddress, newStreamInfo, type StreamInfo } from '../observe/stream_info.js';
import { ReplayableBody } from '../router/body_buffer.js';
import { computeHash } from '../router/hash_policy.js';
import { CompiledRetryPolicy } from '../router/retry_state.js';
import { type CompiledRoute, RouteTable } from '../router/route_table.js';
import { Forwarder } from '../router/router.js';
import type { ClusterManager } from '../upstream/cluster_manager.js';
import { pickWeighted } from '../upstream/weighted.js';
import { type HeaderRecord, headerSet } from './header_list.js';
import { HeaderMutator, type SubstitutionContext } from './header_mutation.js';
import { sendLocalReply } from './local_reply.js';
import { applyForwardingHeaders, upstreamHeaderList } from './request_headers.js';
import { buildRedirect, rewritePath } from './rewrite.js';
import { HCM_STATS, type HcmStats } from './stats.js';

export interface ConnectionManagerDeps {
  readonly clusters: ClusterManager;
  readonly store: StatsStore;
  /** Bytes of request body kept for retries (the listener's per_connection_buffer_limit_bytes). */
  readonly retryBufferLimit: number;
}

export class ConnectionManager {
  readonly stats: HcmStats;
  private readonly server: Server;
  private readonly routes: RouteTable;
  private readonly accessLogs: AccessLogger[];
  private readonly retryPolicies = new Map<object, CompiledRetryPolicy>();
  private readonly weightedMutators = new Map<object, HeaderMutator[]>();
  private readonly sockets = new Set<Socket>();
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
    const headersTimeout = config.requestHeadersTimeoutMs || 60_000;
    this.server = createServer({
      maxHeaderSize: config.maxRequestHeadersKb * 1024,
      requestTimeout: config.requestTimeoutMs,
      headersTimeout:
        config.requestTimeoutMs > 0 ? Math.min(headersTimeout, config.requestTimeoutMs) : headersTimeout,
      keepAliveTimeout: config.idleTimeoutMs || 2 ** 31 - 1,
      connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(headersTimeout / 4))),
      noDelay: true,
      requireHostHeader: true,
    });
    this.server.maxHeadersCount = config.maxHeadersCount + 1;
    this.server.setTimeout(config.streamIdleTimeoutMs, this.onStreamIdle);
    this.server.on('request', this.onRequest);
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      // Envoy answers 100-continue itself rather than relaying the upstream's.
      res.writeContinue();
      this.onRequest(req, res);
    });
    this.server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(417, { 'content-type': 'text/plain' }).end('unsupported Expect header\n');
    });
    this.server.on('clientError', this.onClientError);
    // This server never listens (the listener hands it sockets), and Node starts the checker that enforces
    // headersTimeout/requestTimeout only on 'listening': start it here, server.close() stops it.
    this.server.emit('listening');
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

  /** Takes ownership of an accepted connection. */
  onConnection(socket: Socket): void {
    const s = this.stats;
    s.downstream_cx_total.inc();
    s.downstream_cx_http1_total.inc();
    s.downstream_cx_active.inc();
    s.downstream_cx_http1_active.inc();
    const opened = performance.now();
    this.sockets.add(socket);
    socket.once('close', () => {
      this.sockets.delete(socket);
      s.downstream_cx_active.dec();
      s.downstream_cx_http1_active.dec();
      s.downstream_cx_destroy.inc();
      s.downstream_cx_rx_bytes_total.inc(socket.bytesRead);
      s.downstream_cx_tx_bytes_total.inc(socket.bytesWritten);
      s.downstream_cx_length_ms.record(performance.now() - opened);
      if (this.draining) s.downstream_cx_drain_close.inc();
      this.notifyIfIdle();
    });
    this.server.emit('connection', socket);
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const s = this.stats;
    s.downstream_rq_total.inc();
    s.downstream_rq_http1_total.inc();
    s.downstream_rq_active.inc();
    this.activeRequests++;
    const socket = req.socket;
    const info = newStreamInfo(
      `HTTP/${req.httpVersion}`,
      formatAddress(socket.remoteAddress, socket.remotePort),
      formatAddress(socket.localAddress, socket.localPort),
    );
    info.method = req.method;
    info.path = req.url;
    info.authority = req.headers.host;
    info.requestHeaders = req.headers;
    res.once('close', () => this.onResponseClose(req, res, info));
    if (this.draining) res.shouldKeepAlive = false;

    if (req.rawHeaders.length / 2 > this.config.maxHeadersCount) {
      s.downstream_rq_too_large.inc();
      res.shouldKeepAlive = false;
      return this.localReply(
        req,
        res,
        info,
        Failures.requestHeadersTooLarge,
        `request has more than ${this.config.maxHeadersCount} headers (max_headers_count)`,
      );
    }
    if (req.headers.upgrade !== undefined && req.headers.upgrade.toLowerCase() !== 'h2c') {
      s.downstream_rq_ws_on_non_ws_route.inc();
      info.responseCodeDetails = 'upgrade_failed';
      return this.reply(
        req,
        res,
        info,
        403,
        `upgrade to "${req.headers.upgrade}" is not allowed on this listener\n`,
      );
    }
    const url = req.url ?? '/';
    if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
      s.downstream_rq_non_relative_path.inc();
      info.responseCodeDetails = 'absolute_path_rejected';
      return this.reply(
        req,
        res,
        info,
        404,
        `absolute-form request target "${url}" is not routed by this listener\n`,
      );
    }
    const authority = req.headers.host ?? '';
    const headers = req.headers;
    const match = this.routes.route({
      method: req.method ?? 'GET',
      path: url,
      authority,
      scheme: 'http',
      header: (name) => joinHeader(headers[name]),
    });
    if (!match) {
      s.no_route.inc();
      return this.localReply(
        req,
        res,
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
      return this.reply(req, res, info, action.status, action.body ?? '', route);
    }
    if (action.kind === 'redirect') {
      s.rq_redirect.inc();
      info.responseCodeDetails = 'redirect';
      const location = buildRedirect(action.redirect, route, url, authority, 'http');
      return this.reply(req, res, info, action.redirect.responseCode, '', route, { location });
    }
    this.forward(req, res, info, route, url);
  };

  private forward(
    req: IncomingMessage,
    res: ServerResponse,
    info: StreamInfo,
    route: CompiledRoute,
    url: string,
  ): void {
    if (route.action.kind !== 'route') return;
    const fwd = route.action.route;
    const wc = pickWeighted(fwd.clusters, fwd.totalWeight);
    const cluster = this.deps.clusters.get(wc.name);
    info.upstreamCluster = wc.name;
    if (!cluster) {
      this.stats.no_cluster.inc();
      return this.localReply(
        req,
        res,
        info,
        Failures.noCluster,
        `cluster "${wc.name}" of route "${route.name}" does not exist`,
      );
    }
    const socket = req.socket;
    const headers = upstreamHeaderList(req.rawHeaders);
    info.requestId = applyForwardingHeaders(headers, this.config, socket.remoteAddress ?? '', 'http');
    // Access logs show the request as forwarded, with the id the proxy generated.
    if (info.requestId !== undefined && req.headers['x-request-id'] !== info.requestId) {
      req.headers['x-request-id'] = info.requestId;
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
    const path = rewritePath(route, fwd, url);
    if (path !== url) headers.push('x-envoy-original-path', url);
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    const grpc = (req.headers['content-type'] ?? '').startsWith('application/grpc');
    const setCookies: string[] = [];
    const hashKey =
      fwd.hashPolicy.length > 0
        ? computeHash(fwd.hashPolicy, {
            header: (name) => joinHeader(req.headers[name]),
            sourceIp: socket.remoteAddress ?? '',
            path: url,
            setCookies,
          })
        : undefined;
    new Forwarder({
      req,
      res,
      info,
      route,
      mutators,
      action: fwd,
      cluster,
      retryPolicy: fwd.retryPolicy ? this.retryPolicies.get(fwd.retryPolicy) : undefined,
      hashKey,
      path,
      headers,
      body: hasBody ? new ReplayableBody(req, this.deps.retryBufferLimit, info) : undefined,
      subst,
      grpc,
      onLocalFailure: (kind, message) => this.localReply(req, res, info, kind, message),
      decorateResponse: (h) => {
        if (setCookies.length > 0) h['set-cookie'] = appendValues(h['set-cookie'], setCookies);
        this.decorate(h);
      },
    }).start();
    if (!hasBody) req.resume();
  }

  /** Proxy-owned response headers: server, and connection: close while draining. */
  private decorate(h: HeaderRecord): void {
    switch (this.config.serverHeaderTransformation) {
      case 'OVERWRITE':
        h.server = this.config.serverName;
        break;
      case 'APPEND_IF_ABSENT':
        if (h.server === undefined) h.server = this.config.serverName;
        break;
      case 'PASS_THROUGH':
        break;
    }
    if (this.draining) h.connection = 'close';
  }

  private localReply(
    req: IncomingMessage,
    res: ServerResponse,
    info: StreamInfo,
    kind: FailureKind,
    message: string,
  ): void {
    if (kind.flag && !info.responseFlags.includes(kind.flag)) info.responseFlags.push(kind.flag);
    info.responseCodeDetails = kind.details;
    const grpc = (req.headers['content-type'] ?? '').startsWith('application/grpc');
    info.responseCode = grpc ? 200 : kind.status;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const extra: HeaderRecord = {};
    this.decorate(extra);
    info.bytesSent += sendLocalReply(res, {
      kind,
      message,
      grpc,
      headOnly: req.method === 'HEAD',
      extraHeaders: extra as Record<string, string>,
    });
    req.resume();
  }

  private reply(
    req: IncomingMessage,
    res: ServerResponse,
    info: StreamInfo,
    status: number,
    body: string,
    route?: CompiledRoute,
    extra?: HeaderRecord,
  ): void {
    const h: HeaderRecord = { ...extra };
    if (body.length > 0) {
      h['content-type'] = 'text/plain';
      h['content-length'] = String(Buffer.byteLength(body));
    } else if (status >= 200 && status !== 204 && status !== 304) {
      h['content-length'] = '0';
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
    res.writeHead(status, h);
    const head = req.method === 'HEAD';
    res.end(head ? undefined : body);
    if (!head) info.bytesSent += Buffer.byteLength(body);
    req.resume();
  }

  private onResponseClose(req: IncomingMessage, res: ServerResponse, info: StreamInfo): void {
    const s = this.stats;
    s.downstream_rq_active.dec();
    this.activeRequests--;
    if (!res.writableFinished) {
      s.downstream_rq_rx_reset.inc();
      if (!info.responseFlags.includes('DC') && !req.complete) info.responseFlags.push('DC');
    }
    s.downstream_rq_completed.inc();
    const code = info.responseCode || res.statusCode;
    info.responseCode = code;
    if (code < 200) s.downstream_rq_1xx.inc();
    else if (code < 300) s.downstream_rq_2xx.inc();
    else if (code < 400) s.downstream_rq_3xx.inc();
    else if (code < 500) s.downstream_rq_4xx.inc();
    else s.downstream_rq_5xx.inc();
    const duration = performance.now() - info.startMonotonic;
    info.durationMs = duration;
    s.downstream_rq_time.record(duration);
    for (const log of this.accessLogs) log.log(info);
    this.notifyIfIdle();
  }

  private notifyIfIdle(): void {
    if (this.activeRequests === 0 && this.sockets.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private readonly onStreamIdle = (socket: Socket): void => {
    const res = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (res && !res.headersSent) {
      this.stats.downstream_rq_idle_timeout.inc();
      res.shouldKeepAlive = false;
      res.writeHead(408, { 'content-type': 'text/plain', connection: 'close' });
      res.end('stream timeout: no activity within stream_idle_timeout\n');
      return;
    }
    if (!res) this.stats.downstream_cx_idle_timeout.inc();
    socket.destroy();
  };

  private readonly onClientError = (err: Error & { code?: string }, socket: Socket): void => {
    const s = this.stats;
    const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    let status = 400;
    let why = 'malformed HTTP request';
    switch (err.code) {
      case 'HPE_HEADER_OVERFLOW':
        status = 431;
        why = `request headers exceed max_request_headers_kb (${this.config.maxRequestHeadersKb} KiB)`;
        s.downstream_rq_too_large.inc();
        break;
      case 'ERR_HTTP_REQUEST_TIMEOUT':
        status = 408;
        why = 'request headers were not received in time (request_headers_timeout)';
        s.downstream_rq_header_timeout.inc();
        break;
      case 'ECONNRESET':
        socket.destroy();
        return;
      default:
        s.downstream_cx_protocol_error.inc();
        why = `malformed HTTP request: ${err.message.replace(/[\r\n]+/g, ' ')}${err.code ? ` (${err.code})` : ''}`;
    }
    // Some errors come after the request was dispatched (bad chunk size, invalid Transfer-Encoding): while no
    // response has started the client still gets the error reply; the close then resets the upstream attempt.
    if (socket.writable && (!pending || !pending.headersSent)) {
      if (pending) pending.statusCode = status;
      const body = `${why}\n`;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      socket.destroySoon();
    } else {
      socket.destroy();
    }
  };

  /**
   * Stops keep-alive: every connection closes after its next response (connection: close). Idle connections
   * are not closed now: a client may be sending a request on one at this moment, and closing it would lose
   * that request. The drain time bounds the wait for connections that stay quiet.
   */
  drain(): void {
    this.draining = true;
  }

  /** Resolves when no request is in flight and every downstream connection has closed. */
  whenIdle(): Promise<void> {
    if (this.activeRequests === 0 && this.sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  get inFlight(): number {
    return this.activeRequests;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await Promise.all(this.accessLogs.map((l) => l.close()));
  }
}

function appendValues(cur: string | string[] | undefined, add: string[]): string[] {
  return cur === undefined ? add : [...(Array.isArray(cur) ? cur : [cur]), ...add];
}

function joinHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}

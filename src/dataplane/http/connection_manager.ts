// Envoy's http_connection_manager: takes each request of its downstream connections (HTTP/1.1 or HTTP/2) and routes it.

import type { Socket } from 'node:net';
import type { HcmConfig, RouteConfig } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { type FailureKind, Failures } from '../errors.js';
import { IstioHttpStats } from '../istio_stats/http_filter.js';
import type { IstioStatsEnv } from '../istio_stats/workload.js';
import { AccessLogger } from '../observe/access_log.js';
import { Logger } from '../observe/log.js';
import { type Counter, type StatsStore, scopes } from '../observe/stats.js';
import { newStreamInfo, type StreamInfo } from '../observe/stream_info.js';
import { connectionFacts } from '../rbac/connection_facts.js';
import { HttpRbacFilter, RBAC_DENIED_BODY, type RbacRequest, rbacRequestInput } from '../rbac/http_filter.js';
import { ReplayableBody } from '../router/body_buffer.js';
import { computeHash } from '../router/hash_policy.js';
import { CompiledRetryPolicy } from '../router/retry_state.js';
import { emptyRouteConfig, type RouteConfigs } from '../router/route_configs.js';
import { type CompiledRoute, RouteTable } from '../router/route_table.js';
import { type ForwardContext, Forwarder } from '../router/router.js';
import type { ClusterManager } from '../upstream/cluster_manager.js';
import { pickWeighted } from '../upstream/weighted.js';
import { IstioAlpnFilter } from './alpn_filter.js';
import { applyClientCertHeader } from './client_cert_header.js';
import { DownstreamConnections } from './downstream_connections.js';
import { effectiveGrpcTimeout, grpcStatusForHttp, isGrpcContentType } from './grpc.js';
import { type HeaderList, headerHas, headerSet, headersRecord } from './header_list.js';
import { HeaderMutator, type SubstitutionContext } from './header_mutation.js';
import { sendLocalReply } from './local_reply.js';
import { applyForwardingHeaders, upstreamHeaderList } from './request_headers.js';
import { buildRedirect, rewritePath } from './rewrite.js';
import { HCM_STATS, type HcmStats, HTTP2_CODEC_STATS } from './stats.js';
import type { DownstreamStream } from './stream.js';
import { requestedUpgrade, startUpgrade, upgradeAllowed } from './upgrade.js';

export interface ConnectionManagerDeps {
  readonly clusters: ClusterManager;
  /** RDS route tables, for an HCM with `rds` (required then). */
  readonly routeConfigs?: RouteConfigs;
  readonly store: StatsStore;
  /** Bytes of request body kept for retries (the listener's per_connection_buffer_limit_bytes). */
  readonly retryBufferLimit: number;
  /** For the HTTP filters' log lines (RBAC decisions at debug); none: nothing is logged. */
  readonly logger?: Logger;
  /** For an istio.stats HTTP filter: the node and listener it reports for (required then). */
  readonly istio?: IstioStatsEnv;
}

/**
 * One route table and the per-route objects its requests look up, built once per route configuration. A request
 * keeps the one it started with when RDS swaps in another.
 */
class CompiledRoutes {
  readonly table: RouteTable;
  readonly retryPolicies = new Map<object, CompiledRetryPolicy>();
  readonly weightedMutators = new Map<object, HeaderMutator[]>();

  constructor(config: RouteConfig) {
    this.table = new RouteTable(config);
    for (const vh of config.virtualHosts) {
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
}

export class ConnectionManager {
  readonly stats: HcmStats;
  private routes: CompiledRoutes;
  private readonly cancelRouteWatch: (() => void) | undefined;
  private readonly accessLogs: AccessLogger[];
  /** The RBAC filters of http_filters, in order; most HCMs have none, and then a request costs one length check. */
  private readonly rbac: readonly HttpRbacFilter[];
  /** istio.alpn, when the chain has it: the ALPN of the upstream TLS connections of its requests. */
  private readonly alpn: IstioAlpnFilter | undefined;
  /** istio.stats: Istio's request metrics; undefined (most HCMs) costs a request one check. */
  private readonly istioStats: IstioHttpStats | undefined;
  /** Something reads the client certificate of each request (access logs, istio.stats). */
  private readonly readsPeer: boolean;
  private readonly downstream: DownstreamConnections;
  private readonly grpcStatusCounters: Counter[] = [];
  private draining = false;
  private activeRequests = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly config: HcmConfig,
    private readonly deps: ConnectionManagerDeps,
  ) {
    this.stats = deps.store.scope(scopes.http(config.statPrefix), HCM_STATS);
    if (config.rds !== undefined) {
      const name = config.rds.routeConfigName;
      const rds = deps.routeConfigs;
      if (rds === undefined) throw new Error(`HCM ${config.statPrefix}: rds needs the RDS route tables`);
      this.routes = new CompiledRoutes(rds.get(name) ?? emptyRouteConfig(name));
      this.cancelRouteWatch = rds.watch(name, (rc) => {
        this.routes = new CompiledRoutes(rc);
      });
    } else {
      this.routes = new CompiledRoutes(config.routeConfig ?? emptyRouteConfig(''));
    }
    this.accessLogs = config.accessLogs.map((c) => new AccessLogger(c));
    this.rbac = HttpRbacFilter.fromChain(
      config.httpFilters,
      config.statPrefix,
      deps.store,
      deps.logger ?? new Logger('off'),
    );
    const istio = deps.istio;
    this.istioStats = istio && IstioHttpStats.fromChain(config.httpFilters, istio);
    if (this.istioStats === undefined && config.httpFilters.some((f) => f.istioStats !== undefined))
      throw new Error(`HCM ${config.statPrefix}: istio.stats needs the listener's node and direction`);
    this.readsPeer = this.accessLogs.length > 0 || this.istioStats !== undefined;
    this.alpn = IstioAlpnFilter.fromChain(config.httpFilters);
    this.downstream = new DownstreamConnections(
      config,
      this.stats,
      deps.store.scope(undefined, HTTP2_CODEC_STATS),
      {
        onRequest: this.onRequest,
        onClosed: () => this.notifyIfIdle(),
      },
    );
  }

  /** The name of the RDS route table this manager serves; undefined for an inline one. */
  get rdsName(): string | undefined {
    return this.config.rds?.routeConfigName;
  }

  /** Takes ownership of an accepted connection (plain, or TLS already terminated). */
  onConnection(socket: Socket): void {
    this.downstream.accept(socket);
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
    if (this.readsPeer && stream.connection.secure && stream.connection.socket !== undefined) {
      info.downstreamPeer = connectionFacts(stream.connection.socket).peer;
    }
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
    const routes = this.routes;
    const match = routes.table.route({
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
    // As in Envoy, HTTP filters run before the router: an RBAC denial wins over no route or a direct response.
    if (this.rbac.length > 0 && this.deniedByRbac({ stream, authority, scheme }, info)) return;
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
    this.forward(routes, stream, info, route, url, scheme, upgrade);
  };

  private forward(
    routes: CompiledRoutes,
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
    const xfcc = this.config.forwardClientCert;
    const headers = upstreamHeaderList(stream.headers, xfcc.mode === 'SANITIZE');
    if (xfcc.mode !== 'SANITIZE') applyClientCertHeader(headers, xfcc, stream.connection.socket);
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
    const weighted = routes.weightedMutators.get(wc);
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
      retryPolicy: fwd.retryPolicy ? routes.retryPolicies.get(fwd.retryPolicy) : undefined,
      hashKey,
      path,
      headers,
      body: hasBody ? new ReplayableBody(stream, this.deps.retryBufferLimit, info) : undefined,
      subst,
      grpc,
      scheme,
      alpn: this.alpn,
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

  /** Runs the RBAC filters in order; true when one denied the request, which then got its 403. */
  private deniedByRbac(req: RbacRequest, info: StreamInfo): boolean {
    const input = rbacRequestInput(req, this.config.useRemoteAddress);
    for (const filter of this.rbac) {
      const details = filter.check(input, req);
      if (details === undefined) continue;
      // Nothing of the request reaches an upstream: the reply is local and the body is not read.
      this.localReply(req.stream, info, Failures.rbacDenied, RBAC_DENIED_BODY, details, true);
      return true;
    }
    return false;
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

  private localReply(
    stream: DownstreamStream,
    info: StreamInfo,
    kind: FailureKind,
    message: string,
    details = kind.details,
    verbatim = false,
  ): void {
    if (kind.flag && !info.responseFlags.includes(kind.flag)) info.responseFlags.push(kind.flag);
    info.responseCodeDetails = details;
    const grpc = isGrpc(stream);
    info.responseCode = grpc ? 200 : kind.status;
    if (grpc) info.grpcStatus = kind.grpcStatus;
    if (stream.headersSent) {
      stream.destroy();
      return;
    }
    const extra: HeaderList = [];
    this.decorate(extra);
    info.bytesSent += sendLocalReply(stream, { kind, message, grpc, extraHeaders: extra, verbatim });
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
    if (this.istioStats !== undefined) this.istioStats.record(stream, info);
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
    if (this.activeRequests === 0 && this.downstream.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Stops keep-alive and new HTTP/2 streams; the drain time bounds the wait for connections that stay quiet. */
  drain(): void {
    this.draining = true;
    this.downstream.drain();
  }

  /** Resolves when no request is in flight and every downstream connection has closed. */
  whenIdle(): Promise<void> {
    if (this.activeRequests === 0 && this.downstream.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  async close(): Promise<void> {
    this.cancelRouteWatch?.();
    this.downstream.close();
    await Promise.all(this.accessLogs.map((l) => l.close()));
  }
}

function isGrpc(stream: DownstreamStream): boolean {
  return isGrpcContentType(stream.header('content-type'));
}

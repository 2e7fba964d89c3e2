// istio.stats as an HTTP filter: each finished request of the connection manager counted in Istio's request
// metrics (istio_requests_total, istio_request_duration_milliseconds, istio_request_bytes, istio_response_bytes).

import type { HttpFilterConfig, IstioStatsConfig } from '../../config/model.js';
import { isGrpcContentType } from '../http/grpc.js';
import type { DownstreamStream } from '../http/stream.js';
import type { StreamInfo } from '../observe/stream_info.js';
import {
  type ConnectionIdentity,
  downstreamIdentity,
  labelKey,
  labelValues,
  NO_IDENTITY,
  responseFlagsLabel,
  type TrafficFacts,
} from './labels.js';
import { HostNames, IstioSeries, recordBuild } from './series.js';
import {
  destinationService,
  type IstioStatsEnv,
  type LocalWorkload,
  localWorkload,
  type Reporter,
  reporterOf,
} from './workload.js';

/** Distinct Host header values one filter takes as destination_service before it stops taking new ones. */
export const MAX_HOST_HEADER_SERVICES = 1000;

/** One istio.stats of an HCM; built once per HCM config, shared by all its requests. */
export class IstioHttpStats {
  private readonly reporter: Reporter;
  private readonly local: LocalWorkload;
  private readonly series: IstioSeries;
  private readonly hosts: HostNames;

  constructor(
    private readonly config: IstioStatsConfig,
    env: IstioStatsEnv,
  ) {
    this.reporter = reporterOf(config, env.trafficDirection);
    this.local = localWorkload(env.node);
    this.series = new IstioSeries(env.store, config);
    this.hosts = new HostNames(
      MAX_HOST_HEADER_SERVICES,
      env.store.counter('istio_stats.host_header_fallback_overflow'),
    );
    recordBuild(env.store, this.local.istioVersion);
  }

  /** The HCM's istio.stats filter (the config allows one); undefined when it has none. */
  static fromChain(filters: readonly HttpFilterConfig[], env: IstioStatsEnv): IstioHttpStats | undefined {
    for (const f of filters) if (f.istioStats !== undefined) return new IstioHttpStats(f.istioStats, env);
    return undefined;
  }

  /**
   * Counts a finished request. `info` holds its outcome (response code and flags, duration, bytes, cluster) and,
   * on a TLS connection, the client certificate (downstreamPeer).
   */
  record(stream: DownstreamStream, info: StreamInfo): void {
    const grpc = isGrpcContentType(stream.header('content-type'));
    const facts: TrafficFacts = {
      service: destinationService(
        () => (this.config.disableHostHeaderFallback ? '' : this.hosts.admit(info.authority ?? '')),
        info.upstreamCluster,
        info.routeName,
      ),
      protocol: grpc ? 'grpc' : 'http',
      responseCode: String(info.responseCode),
      grpcStatus: grpc && info.grpcStatus !== undefined ? String(info.grpcStatus) : '',
      responseFlags: responseFlagsLabel(info.responseFlags),
    };
    // The client's certificate is the server side's to report; an outbound request's peer is its upstream.
    const id: ConnectionIdentity =
      this.reporter === 'source'
        ? NO_IDENTITY
        : downstreamIdentity(stream.connection.socket, info.downstreamPeer?.uriSans);
    const s = this.series.request(labelKey(id, facts), () =>
      labelValues(this.reporter, this.local, id, facts),
    );
    s.requests?.inc();
    if (info.durationMs !== undefined) s.duration?.record(info.durationMs);
    s.requestBytes?.record(requestSize(stream, info));
    s.responseBytes?.record(responseSize(info));
  }
}

/**
 * Envoy's request.total_size, which Istio's request_bytes was defined as: the body, and the head as the
 * uncompressed size of its names and values (method, path and authority included).
 */
function requestSize(stream: DownstreamStream, info: StreamInfo): number {
  // HTTP/1.x carries the authority as the Host header, among the headers; HTTP/2 as a pseudo-header.
  const authority = stream.protocol === 'HTTP/2' ? stream.authority.length : 0;
  let n = stream.method.length + stream.url.length + authority + info.bytesReceived;
  const h = stream.headers;
  for (let i = 0; i < h.length; i++) n += h[i]!.length;
  return n;
}

/** response.total_size: the body, and the response headers' names and values where the head is known. */
function responseSize(info: StreamInfo): number {
  let n = info.bytesSent;
  const h = info.responseHeaders;
  if (h !== undefined) for (let i = 0; i < h.length; i++) n += h[i]!.length;
  return n;
}

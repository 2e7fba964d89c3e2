// istio.alpn: the ALPN a request's upstream TLS connection offers, chosen by the protocol the request goes upstream with.

import type { AlpnFilterConfig, HttpFilterConfig } from '../../config/model.js';
import type { Cluster } from '../upstream/cluster.js';
import { type AlpnOverride, alpnOverride } from '../upstream/host_pools.js';
import type { DownstreamProtocol } from './stream.js';

/**
 * One HCM's istio.alpn filter, built once per HCM config. As Istio's filter does, it takes the route's cluster and
 * the protocol that cluster speaks for this request (HTTP/2, HTTP/1.1, or HTTP/1.0 when the cluster follows the
 * downstream protocol), and names the ALPN the connection to a TLS host offers instead of its context's
 * alpn_protocols. Hosts over plaintext are not affected.
 */
export class IstioAlpnFilter {
  private readonly http10: AlpnOverride | undefined;
  private readonly http11: AlpnOverride | undefined;
  private readonly http2: AlpnOverride | undefined;

  constructor(config: AlpnFilterConfig) {
    this.http10 = config.http10 && alpnOverride(config.http10);
    this.http11 = config.http11 && alpnOverride(config.http11);
    this.http2 = config.http2 && alpnOverride(config.http2);
  }

  /** The chain's istio.alpn filter (config validation allows one); undefined when it has none. */
  static fromChain(filters: readonly HttpFilterConfig[]): IstioAlpnFilter | undefined {
    const f = filters.find((x) => x.alpn !== undefined);
    return f?.alpn && new IstioAlpnFilter(f.alpn);
  }

  /** The override for a request that arrived over `downstream` and goes to `cluster`; allocates nothing. */
  choose(cluster: Cluster, downstream: DownstreamProtocol): AlpnOverride | undefined {
    if (cluster.speaksHttp2(downstream)) return this.http2;
    return cluster.config.upstreamProtocol === 'DOWNSTREAM' && downstream === 'HTTP/1.0'
      ? this.http10
      : this.http11;
  }

  /** The override for an upgrade (WebSocket ...), which Remora always sends upstream over HTTP/1.1. */
  get upgrade(): AlpnOverride | undefined {
    return this.http11;
  }
}

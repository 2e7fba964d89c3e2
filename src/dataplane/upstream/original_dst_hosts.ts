// The hosts of an ORIGINAL_DST cluster: made on demand from each connection's original destination, swept when unused.

import { parseIpPort } from '../../config/address.js';
import type { OriginalDstClusterConfig, SocketAddress } from '../../config/model.js';
import { Host, hostKey } from './host.js';

/** What an ORIGINAL_DST cluster looks at to find a request's host. */
export interface OriginalDstSelection {
  /** The downstream connection's restored destination; undefined when it was not redirected. */
  readonly originalDestination?: SocketAddress | undefined;
  /** A request header (HTTP only), for use_http_header. */
  readonly header?: (name: string) => string | undefined;
}

export class OriginalDstHosts {
  private readonly hosts = new Map<string, Host>();
  /** Hosts chosen since the last sweep: they stay for another interval. */
  private readonly used = new Set<Host>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly config: OriginalDstClusterConfig,
    private readonly onChange: (removed: readonly Host[]) => void,
    /** Prepares a host before its first use (its cluster sets its transport socket). */
    private readonly init: (host: Host) => void = () => undefined,
  ) {
    this.timer = setInterval(() => this.sweep(), config.cleanupIntervalMs);
    this.timer.unref();
  }

  /**
   * The host for a request or connection: the use_http_header header when set and valid, else the connection's
   * restored destination. A connection that was not redirected has none, so the proxy never connects to itself.
   */
  choose(sel: OriginalDstSelection): Host | undefined {
    let dst: SocketAddress | undefined;
    if (this.config.useHttpHeader) {
      const value = sel.header?.(this.config.httpHeaderName);
      if (value !== undefined) dst = parseIpPort(value.split(',')[0]!.trim());
    }
    dst ??= sel.originalDestination;
    if (dst === undefined) return undefined;
    const port = this.config.upstreamPortOverride ?? dst.port;
    const key = hostKey(dst.address, port);
    let host = this.hosts.get(key);
    if (host === undefined) {
      host = new Host(dst.address, port, 1, 0, undefined);
      this.init(host);
      this.hosts.set(key, host);
      this.onChange([]);
    }
    this.used.add(host);
    return host;
  }

  all(): readonly Host[] {
    return [...this.hosts.values()];
  }

  /** Drops the hosts nothing chose in the last interval and that have nothing in flight. */
  sweep(): void {
    const removed: Host[] = [];
    for (const [key, host] of this.hosts) {
      if (this.used.has(host) || host.activeRequests > 0 || host.counters.cxActive > 0) continue;
      this.hosts.delete(key);
      removed.push(host);
    }
    this.used.clear();
    if (removed.length > 0) this.onChange(removed);
  }

  close(): void {
    clearInterval(this.timer);
  }
}

// envoy.filters.network.rbac: decides each connection before the filter after it (tcp_proxy, the HCM, or another
// RBAC filter) sees it; a denied connection is closed before anything is read from it or sent upstream.

import type { Socket } from 'node:net';
import type { NetworkRbacConfig } from '../../config/model.js';
import type { NetworkFilter } from '../listener/listener.js';
import type { Logger } from '../observe/log.js';
import type { StatsStore } from '../observe/stats.js';
import { formatAddress } from '../observe/stream_info.js';
import { connectionFacts } from './connection_facts.js';
import { RbacDecider } from './decision.js';
import type { RbacInput } from './engine.js';
import { RbacStats } from './stats.js';

/** No request on a connection: header rules see every header missing, and path rules never match. */
const NO_HEADER = (): undefined => undefined;
const NO_PATH = (): undefined => undefined;

/**
 * Wraps the next filter of the chain. Envoy decides on the connection's first bytes (ONE_TIME_ON_FIRST_BYTE) or
 * on each read (CONTINUOUS); every input a rule reads here is known once the connection is handed to the chain
 * (after the TLS handshake) and never changes, so both decide then, once. That is also what keeps a denied
 * client from reaching the upstream at all: tcp_proxy connects only to an allowed connection.
 */
export class NetworkRbacFilter implements NetworkFilter {
  private readonly decider: RbacDecider;

  constructor(
    readonly config: NetworkRbacConfig,
    private readonly next: NetworkFilter,
    store: StatsStore,
    logger: Logger,
  ) {
    // Envoy joins stat_prefix and "rbac." as written: "tcp." gives tcp.rbac.allowed.
    const stats = new RbacStats(store, undefined, config.statPrefix, '', config.shadowRulesStatPrefix, false);
    const what = `rbac ${JSON.stringify(config.name)} (${config.statPrefix}rbac.)`;
    this.decider = new RbacDecider(what, config.rules, config.shadowRules, stats, logger);
  }

  onConnection(socket: Socket): void {
    const connection = connectionFacts(socket);
    const input: RbacInput = {
      connection,
      header: NO_HEADER,
      urlPath: NO_PATH,
      remoteIp: () => connection.directRemoteIp,
    };
    const details = this.decider.decide(input, () => ({
      remote: formatAddress(socket.remoteAddress, socket.remotePort),
      local: formatAddress(socket.localAddress, socket.localPort),
      sni: connection.requestedServerName || undefined,
      peer_uri_san: connection.peer?.uriSans.join(',') || undefined,
      peer_subject: connection.peer?.subject || undefined,
    }));
    if (details === undefined) return this.next.onConnection(socket);
    this.next.onRejected?.(socket, details);
    socket.destroy();
  }

  onRejected(socket: Socket, details: string): void {
    this.next.onRejected?.(socket, details);
  }

  drain(): void {
    this.next.drain?.();
  }

  whenIdle(): Promise<void> {
    return this.next.whenIdle?.() ?? Promise.resolve();
  }

  whenDrained(): Promise<void> {
    return this.next.whenDrained?.() ?? this.next.whenIdle?.() ?? Promise.resolve();
  }

  close(): Promise<void> {
    return this.next.close();
  }
}

/** `terminal` behind the chain's RBAC filters, the first of them outermost; `terminal` itself when none. */
export function withNetworkRbac(
  terminal: NetworkFilter,
  rbac: readonly NetworkRbacConfig[] | undefined,
  store: StatsStore,
  logger: Logger,
): NetworkFilter {
  let filter = terminal;
  if (rbac === undefined) return filter;
  for (let i = rbac.length - 1; i >= 0; i--) filter = new NetworkRbacFilter(rbac[i]!, filter, store, logger);
  return filter;
}

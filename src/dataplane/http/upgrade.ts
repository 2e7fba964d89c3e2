// HTTP/1.1 upgrades (WebSocket ...) for the connection manager: which requests are upgrades, whether their route
// allows one, and starting the exchange that turns into a tunnel (upgrade_exchange.ts).

import type { UpgradeConfig } from '../../config/model.js';
import type { CompiledRoute } from '../router/route_table.js';
import type { ForwardContext } from '../router/router.js';
import type { HcmStats } from './stats.js';
import type { DownstreamStream } from './stream.js';
import { UpgradeExchange } from './upgrade_exchange.js';

const CONNECTION_UPGRADE = /(^|,)\s*upgrade\s*(,|$)/i;

/**
 * The protocol an HTTP/1.1 request asks to switch to (the Upgrade value as sent), or undefined when it is not an
 * upgrade: Upgrade without `Connection: upgrade`, `h2c` (an HTTP/2 upgrade, which Envoy ignores), or a request
 * with a body (Envoy does not tunnel those either). A request that is not an upgrade is forwarded as plain
 * HTTP/1.1: its Upgrade header is hop-by-hop and goes no further.
 */
export function requestedUpgrade(stream: DownstreamStream): string | undefined {
  if (stream.protocol !== 'HTTP/1.1') return undefined;
  const upgrade = stream.header('upgrade');
  if (upgrade === undefined || stream.hasBody) return undefined;
  if (!CONNECTION_UPGRADE.test(stream.header('connection') ?? '')) return undefined;
  return upgrade.toLowerCase() === 'h2c' ? undefined : upgrade;
}

/**
 * Envoy's rule: a route-level entry for the type decides; without one the HCM's entry does; a type named
 * nowhere is refused. `route` is undefined when no route matched (or it redirects or answers directly).
 */
export function upgradeAllowed(
  hcm: readonly UpgradeConfig[],
  route: CompiledRoute | undefined,
  upgrade: string,
): boolean {
  const type = upgrade.toLowerCase();
  const own = route?.action.kind === 'route' ? route.action.route.upgradeConfigs : undefined;
  const entry = own?.find((c) => c.upgradeType === type) ?? hcm.find((c) => c.upgradeType === type);
  return entry?.enabled ?? false;
}

export interface UpgradeOptions {
  /** The Upgrade header value the client sent, forwarded as is. */
  readonly upgrade: string;
  /** Of the tunnel: the route's idle_timeout, else the HCM's stream_idle_timeout; 0 = none. */
  readonly idleTimeoutMs: number;
  /** downstream_cx_upgrades_* and downstream_rq_idle_timeout are counted here. */
  readonly stats: HcmStats;
}

/**
 * Sends an upgrade request (already routed, its headers prepared as for any request) to a host of the route's
 * cluster on a new connection: an upgraded connection never goes back to a keep-alive pool. A 101 answer joins
 * the two connections into a tunnel; any other answer is relayed as a normal response, after which both
 * connections close. The request ends (stats, access log with code 101) when the tunnel closes.
 */
export function startUpgrade(ctx: ForwardContext, opts: UpgradeOptions): void {
  new UpgradeExchange(ctx, opts).start();
}

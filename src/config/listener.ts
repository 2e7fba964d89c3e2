// Listener, FilterChain and network filters: where connections are accepted and what handles them.

import { translateAddress } from './address.js';
import {
  checkFilterChains,
  filterChainMatch,
  matchesEverything,
  type PlacedChain,
} from './filter_chain_match.js';
import { httpConnectionManager } from './hcm.js';
import { istioStats as istioStatsConfig } from './istio_stats.js';
import { listenerFilterSettings } from './listener_filters.js';
import type {
  FilterChainConfig,
  IstioStatsConfig,
  ListenerConfig,
  NetworkFilterConfig,
  NetworkIstioStatsConfig,
  NetworkRbacConfig,
} from './model.js';
import { networkRbac } from './rbac.js';
import { Ctx, Fields, indexPath, quote, relativePath } from './reader.js';
import type { ValidationResult } from './result.js';
import { tcpProxy } from './tcp_proxy.js';
import { downstreamTransportSocket } from './tls.js';
import { TYPE_URLS, typedConfig, wrongType } from './typed_config.js';

export const DEFAULT_BUFFER_LIMIT_BYTES = 1024 * 1024;

/** A Listener resource (e.g. from LDS): its name is required. */
export function translateListener(raw: unknown, path: string): ValidationResult<ListenerConfig> {
  const ctx = new Ctx();
  const value = listener(ctx, raw, path, undefined);
  // Route tables of LDS resources may name clusters that arrive later by CDS: no cross-check here.
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

/** A Listener; `defaultName` names it when the input does not (Envoy generates a name for static listeners). */
export function listener(
  ctx: Ctx,
  raw: unknown,
  path: string,
  defaultName: string | undefined,
): ListenerConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  // proto3: "" is unset, so a static listener named "" gets the generated name too.
  const name = f.string('name', { required: defaultName === undefined }) || defaultName;
  const a = f.take('address');
  if (a === undefined) f.error('address', 'missing required field');
  const address =
    a === undefined
      ? undefined
      : translateAddress(ctx, a, f.pathOf('address'), { host: 'ip', requirePort: false });
  const placed: PlacedChain[] = [];
  const items = f.list('filter_chains', { nonEmpty: true });
  for (const [i, item] of items.entries()) {
    const chain = filterChain(ctx, item.value, item.path, `filter_chain_${i}`);
    if (chain !== undefined) placed.push({ chain, path: item.path });
  }
  const filterChains = placed.map((p) => p.chain);
  const perConnectionBufferLimitBytes =
    f.int('per_connection_buffer_limit_bytes') ?? DEFAULT_BUFFER_LIMIT_BYTES;
  const d = f.take('default_filter_chain');
  const defaultFilterChain =
    d === undefined ? undefined : defaultChain(ctx, d, f.pathOf('default_filter_chain'));
  const filters = listenerFilterSettings(f);
  checkFilterChains(ctx, placed, filters.listenerFilters);
  const useOriginalDst = f.bool('use_original_dst') ?? false;
  const bindToPort = f.bool('bind_to_port') ?? true;
  // Istio marks its listeners INBOUND/OUTBOUND; Envoy uses it for stats and tracing only.
  const trafficDirection = f.enumOf('traffic_direction', ['UNSPECIFIED', 'INBOUND', 'OUTBOUND'] as const);
  f.unsupported(LISTENER_NOT_SUPPORTED, {
    transparent: false,
    freebind: false,
    enable_reuse_port: true,
  });
  f.finish();
  if (name === undefined || address === undefined) return undefined;
  return {
    name,
    address,
    filterChains,
    defaultFilterChain,
    perConnectionBufferLimitBytes,
    ...filters,
    // As in Envoy, use_original_dst implies the original_dst listener filter.
    originalDst: filters.originalDst || useOriginalDst,
    useOriginalDst,
    bindToPort,
    trafficDirection: trafficDirection ?? 'UNSPECIFIED',
  };
}

/** default_filter_chain: takes the connections no chain matches, so a filter_chain_match there means nothing. */
function defaultChain(ctx: Ctx, raw: unknown, path: string): FilterChainConfig | undefined {
  const chain = filterChain(ctx, raw, path, 'default_filter_chain');
  if (chain !== undefined && !matchesEverything(chain.match)) {
    ctx.error(
      `${path}.filter_chain_match`,
      'has no effect on the default filter chain (it takes the connections no other chain matches)',
    );
  }
  return chain;
}

const LISTENER_NOT_SUPPORTED = [
  'additional_addresses',
  'stat_prefix',
  'filter_chain_matcher',
  'drain_type',
  'transparent',
  'freebind',
  'socket_options',
  'tcp_fast_open_queue_length',
  'udp_listener_config',
  'api_listener',
  'connection_balance_config',
  'reuse_port',
  'enable_reuse_port',
  'access_log',
  'tcp_backlog_size',
  'max_connections_to_accept_per_socket_event',
  'internal_listener',
  'enable_mptcp',
  'ignore_global_conn_limit',
  'bypass_overload_manager',
  'fcds_config',
];

function filterChain(
  ctx: Ctx,
  raw: unknown,
  path: string,
  defaultName: string,
): FilterChainConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name') || defaultName;
  const match = filterChainMatch(f.object('filter_chain_match'));
  const items = f.list('filters', { nonEmpty: true });
  let filter: NetworkFilterConfig | undefined;
  const rbac: NetworkRbacConfig[] = [];
  let istioStats: NetworkIstioStatsConfig | undefined;
  let failed = false;
  items.forEach((item, i) => {
    const nf = networkFilter(ctx, item.value, item.path);
    if (nf === undefined) {
      failed = true;
      return;
    }
    const last = i === items.length - 1;
    if (nf.kind === 'istio_stats' && !last && istioStats === undefined) {
      istioStats = { ...nf.istioStats, afterRbac: rbac.length };
    } else if (nf.kind === 'istio_stats') {
      ctx.error(
        item.path,
        last
          ? 'a filter chain must end in http_connection_manager or tcp_proxy (istio.stats only counts the connections it hands on)'
          : 'a filter chain takes one istio.stats filter',
      );
      failed = true;
    } else if (nf.kind === 'rbac' && !last) {
      rbac.push(nf.rbac);
    } else if (nf.kind === 'rbac') {
      ctx.error(
        item.path,
        'a filter chain must end in http_connection_manager or tcp_proxy (envoy.filters.network.rbac only decides whether a connection may go on to one)',
      );
      failed = true;
    } else if (!last) {
      ctx.error(
        item.path,
        `${nf.kind} must be the last network filter of its chain (only envoy.filters.network.rbac and istio.stats filters may come before it)`,
      );
      failed = true;
    } else filter = nf;
  });
  const tls = downstreamTransportSocket(f);
  f.unsupported(['use_proxy_proto', 'metadata', 'on_demand_configuration']);
  f.finish();
  if (filter === undefined || failed) return undefined;
  const chain: FilterChainConfig = rbac.length > 0 ? { name, match, filter, rbac } : { name, match, filter };
  const withStats = istioStats === undefined ? chain : { ...chain, istioStats };
  return tls === undefined ? withStats : { ...withStats, tls };
}

/** A network filter: the terminal one (http_connection_manager, tcp_proxy), or an RBAC or istio.stats filter before it. */
type ChainFilter =
  | NetworkFilterConfig
  | { readonly kind: 'rbac'; readonly rbac: NetworkRbacConfig }
  | { readonly kind: 'istio_stats'; readonly istioStats: IstioStatsConfig };

function networkFilter(ctx: Ctx, raw: unknown, path: string): ChainFilter | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const tc = typedConfig(f, 'typed_config', { required: !f.has('config_discovery') });
  f.unsupported(['config_discovery']);
  f.finish();
  if (tc === undefined) return undefined;
  switch (tc.typeUrl) {
    case TYPE_URLS.httpConnectionManager: {
      const hcm = httpConnectionManager(tc.fields);
      return hcm && { kind: 'http_connection_manager', hcm };
    }
    case TYPE_URLS.tcpProxy: {
      const proxy = tcpProxy(tc.fields);
      return proxy && { kind: 'tcp_proxy', tcpProxy: proxy };
    }
    case TYPE_URLS.networkRbac: {
      const rbac = networkRbac(tc.fields, name || 'envoy.filters.network.rbac');
      return rbac && { kind: 'rbac', rbac };
    }
    case TYPE_URLS.istioStats: {
      const istioStats = istioStatsConfig(tc.fields);
      return istioStats && { kind: 'istio_stats', istioStats };
    }
    default:
      wrongType(tc, 'envoy.extensions.filters.network.', 'network filter');
      return undefined;
  }
}

/** Listener names must be unique, and so must the addresses they bind (port 0 excepted). */
export function checkListenerUniqueness(
  ctx: Ctx,
  listeners: readonly ListenerConfig[],
  paths: readonly string[],
): void {
  const names = new Map<string, string>();
  const addresses = new Map<string, string>();
  listeners.forEach((l, i) => {
    const path = paths[i] ?? indexPath('listeners', i);
    const n = names.get(l.name);
    if (n !== undefined)
      ctx.error(`${path}.name`, `duplicate listener name ${quote(l.name)} (also ${relativePath(n, path)})`);
    else names.set(l.name, path);
    if (l.address.port === 0 || !l.bindToPort) return;
    const key = `${l.address.address}:${l.address.port}`;
    const a = addresses.get(key);
    if (a !== undefined)
      ctx.error(`${path}.address`, `duplicate listener address ${key} (also ${relativePath(a, path)})`);
    else addresses.set(key, path);
  });
}

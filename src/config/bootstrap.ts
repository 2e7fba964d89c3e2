// The bootstrap: reads a YAML/JSON file, translates node, admin and static resources, checks cross-references.

import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import { translateAddress } from './address.js';
import { checkClusterNames, cluster } from './cluster.js';
import { dynamicResources } from './config_source.js';
import { checkListenerUniqueness, listener } from './listener.js';
import type {
  AdminConfig,
  Bootstrap,
  ClusterConfig,
  ListenerConfig,
  NodeInfo,
  SecretConfig,
} from './model.js';
import { Ctx, Fields, isPlainObject, jsonObject, quote, typeOf } from './reader.js';
import type { ConfigError, ValidationResult } from './result.js';
import { checkStaticSecretRefs, staticSecrets } from './secrets.js';

export { translateCluster } from './cluster.js';
export { translateClusterLoadAssignment } from './endpoints.js';
export { translateListener } from './listener.js';
export { translateRouteConfiguration } from './route.js';
export { translateSecret } from './secrets.js';

/** Where the admin server listens when the bootstrap has no `admin` block (or no admin address). */
export const DEFAULT_ADMIN_ADDRESS = { address: '127.0.0.1', port: 15000 } as const;

/** A YAML alias may be expanded this many times at most (a guard against "billion laughs" documents). */
const MAX_ALIAS_COUNT = 100;

export interface BootstrapOptions {
  /**
   * Secrets the proxy supplies itself (its workload identity: `default`, `ROOTCA`): a TLS context may name them
   * without an `sds_config` and without a static secret of that name.
   */
  readonly localSecrets?: readonly string[];
}

/** Translates a parsed bootstrap (Envoy v3 field names, snake_case or camelCase) into the model. */
export function translateBootstrap(raw: unknown, opts: BootstrapOptions = {}): ValidationResult<Bootstrap> {
  const ctx = new Ctx();
  const value = bootstrap(ctx, raw, opts.localSecrets ?? []);
  return ctx.failed || value === undefined ? { ok: false, errors: ctx.errors() } : { ok: true, value };
}

function bootstrap(ctx: Ctx, raw: unknown, localSecrets: readonly string[]): Bootstrap | undefined {
  const f = Fields.of(ctx, raw, '');
  if (f === undefined) return undefined;
  const node = nodeInfo(f.object('node'));
  const admin = adminConfig(f.object('admin'));
  layeredRuntime(f.object('layered_runtime'));
  const sr = f.object('static_resources');
  const dr = f.object('dynamic_resources');
  const dynamic = dr === undefined ? undefined : dynamicResources(dr);
  f.unsupported(BOOTSTRAP_NOT_SUPPORTED, { enable_dispatcher_stats: false, use_tcp_for_dns_lookups: false });
  f.finish();
  const statics =
    sr === undefined ? { listeners: [], clusters: [], named: [], secrets: [] } : staticResources(sr);
  checkReferences(ctx, statics, dynamic, dr);
  checkStaticSecretRefs(ctx, statics.secrets, statics.listeners, statics.clusters, localSecrets);
  if (node === undefined || admin === undefined) return undefined;
  const { listeners, clusters, secrets } = statics;
  return {
    node,
    admin,
    listeners,
    clusters,
    ...(dynamic && { dynamicResources: dynamic.value }),
    ...(secrets.length > 0 && { secrets }),
  };
}

/**
 * Cross-references: clusters named by routes and TCP proxies exist (unless clusters also come from CDS, which
 * may bring them later), the ADS clusters are static ones, and ADS is configured when a config source names it.
 */
function checkReferences(
  ctx: Ctx,
  statics: StaticResources,
  dynamic: ReturnType<typeof dynamicResources> | undefined,
  dr: Fields | undefined,
): void {
  const known = new Set(statics.named.map((c) => c.name));
  if (dynamic?.value.cds === undefined) {
    for (const ref of ctx.clusterRefs) {
      if (!known.has(ref.name)) ctx.error(ref.path, `unknown cluster ${quote(ref.name)}`);
    }
  }
  for (const ref of dynamic?.adsClusters ?? []) {
    const c = statics.clusters.find((s) => s.name === ref.name);
    if (!known.has(ref.name)) {
      ctx.error(ref.path, `unknown cluster ${quote(ref.name)}: the ADS server must be a static cluster`);
    } else if (c !== undefined && c.type !== 'STATIC' && c.type !== 'STRICT_DNS') {
      ctx.error(
        ref.path,
        `cluster ${quote(ref.name)} is ${c.type}: the ADS server must be a STATIC or STRICT_DNS cluster`,
      );
    } else if ((c?.transportSocketMatches?.length ?? 0) > 0) {
      // Its own transport_socket (TLS, e.g. mTLS with the workload identity) is taken; per-host matches are not.
      ctx.error(
        ref.path,
        `cluster ${quote(ref.name)} has transport_socket_matches: the ADS server's cluster takes one transport_socket`,
      );
    } else if (c?.localities.every((l) => l.endpoints.length === 0)) {
      ctx.error(
        ref.path,
        `cluster ${quote(ref.name)} has no endpoints: it must hold the ADS server's address`,
      );
    }
  }
  // An ads_config with errors has been reported already.
  if (dr === undefined || !dr.has('ads_config')) {
    for (const path of ctx.adsRefs) {
      ctx.error(`${path}.ads`, 'ADS is named here but the bootstrap has no dynamic_resources.ads_config');
    }
  }
}

const BOOTSTRAP_NOT_SUPPORTED = [
  'node_context_params',
  'cluster_manager',
  'hds_config',
  'flags_path',
  'stats_sinks',
  'deferred_stat_options',
  'stats_config',
  'stats_flush_interval',
  'stats_flush_on_admin',
  'watchdog',
  'watchdogs',
  'tracing',
  'runtime',
  'overload_manager',
  'enable_dispatcher_stats',
  'header_prefix',
  'stats_server_version_override',
  'use_tcp_for_dns_lookups',
  'dns_resolution_config',
  'typed_dns_resolver_config',
  'bootstrap_extensions',
  'fatal_actions',
  'config_sources',
  'default_config_source',
  'default_socket_interface',
  'certificate_provider_instances',
  'inline_headers',
  'perf_tracing_file_path',
  'default_regex_engine',
  'xds_delegate_extension',
  'xds_config_tracker_extension',
  'listener_manager',
  'application_log_config',
  'grpc_async_client_manager_config',
  'memory_allocator_manager',
];

function nodeInfo(f: Fields | undefined): NodeInfo | undefined {
  if (f === undefined) return { id: '', cluster: '', metadata: {} };
  const id = f.string('id') ?? '';
  const clusterName = f.string('cluster') ?? '';
  const m = f.take('metadata');
  let metadata: Record<string, unknown> = {};
  if (isPlainObject(m)) metadata = jsonObject(f.ctx, m, f.pathOf('metadata'));
  else if (m !== undefined) f.error('metadata', `expected an object, got ${typeOf(m)}`);
  f.unsupported([
    'dynamic_parameters',
    'locality',
    'user_agent_name',
    'user_agent_version',
    'user_agent_build_version',
    'extensions',
    'client_features',
    'listening_addresses',
  ]);
  f.finish();
  return { id, cluster: clusterName, metadata };
}

function adminConfig(f: Fields | undefined): AdminConfig | undefined {
  if (f === undefined) return { address: DEFAULT_ADMIN_ADDRESS, accessLogPath: undefined };
  const accessLogPath = f.string('access_log_path') || undefined;
  const a = f.take('address');
  const address =
    a === undefined
      ? DEFAULT_ADMIN_ADDRESS
      : translateAddress(f.ctx, a, f.pathOf('address'), { host: 'ip', requirePort: false });
  f.unsupported(['access_log', 'profile_path', 'socket_options', 'ignore_global_conn_limit'], {
    ignore_global_conn_limit: false,
  });
  f.finish();
  return address === undefined ? undefined : { address, accessLogPath };
}

/**
 * layered_runtime: accepted when it only declares empty static layers and the admin layer (as Envoy's
 * examples do), since then it changes nothing. Runtime values and other layer kinds are not supported.
 */
function layeredRuntime(f: Fields | undefined): void {
  if (f === undefined) return;
  for (const item of f.list('layers')) {
    const layer = Fields.of(f.ctx, item.value, item.path);
    if (layer === undefined) continue;
    layer.string('name', { required: true });
    layer.oneOf(['static_layer', 'disk_layer', 'admin_layer', 'rtds_layer'], { required: true });
    const staticLayer = layer.take('static_layer');
    if (staticLayer !== undefined && (!isPlainObject(staticLayer) || Object.keys(staticLayer).length > 0)) {
      layer.error(
        'static_layer',
        'runtime values are not supported by Remora yet (only an empty static_layer is accepted)',
      );
    }
    layer.object('admin_layer')?.finish();
    layer.unsupported(['disk_layer', 'rtds_layer']);
    layer.finish();
  }
  f.finish();
}

interface StaticResources {
  readonly listeners: ListenerConfig[];
  readonly clusters: ClusterConfig[];
  /** Names as written, even of clusters with errors, so one mistake does not also make every route "unknown". */
  readonly named: { name: string; path: string }[];
  readonly secrets: SecretConfig[];
}

function staticResources(f: Fields): StaticResources {
  const ctx = f.ctx;
  const listeners: ListenerConfig[] = [];
  const listenerPaths: string[] = [];
  f.list('listeners').forEach((item, i) => {
    const l = listener(ctx, item.value, item.path, `listener_${i}`);
    if (l === undefined) return;
    listeners.push(l);
    listenerPaths.push(item.path);
  });
  checkListenerUniqueness(ctx, listeners, listenerPaths);

  const clusters: ClusterConfig[] = [];
  const named: { name: string; path: string }[] = [];
  for (const item of f.list('clusters')) {
    const c = cluster(ctx, item.value, item.path);
    if (c !== undefined) clusters.push(c);
    const name = isPlainObject(item.value) ? item.value.name : undefined;
    if (typeof name === 'string' && name !== '') named.push({ name, path: item.path });
  }
  checkClusterNames(ctx, named);
  const secrets = staticSecrets(f);
  f.finish();
  return { listeners, clusters, named, secrets };
}

/**
 * Reads and translates a bootstrap file (YAML or JSON). An unreadable file or a syntax error becomes an error
 * with path "(file)"; `raw` is the parsed document (undefined when it could not be parsed).
 */
export async function loadBootstrapFile(
  file: string,
  opts: BootstrapOptions = {},
): Promise<{ raw: unknown; result: ValidationResult<Bootstrap> }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fileError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = parseText(text, file);
  if (!parsed.ok) return { raw: undefined, result: parsed };
  return { raw: parsed.value, result: translateBootstrap(parsed.value, opts) };
}

function fileError(message: string): { raw: undefined; result: ValidationResult<Bootstrap> } {
  return { raw: undefined, result: { ok: false, errors: [{ path: '(file)', message }] } };
}

/** Parses YAML (and so JSON); every syntax error with its line and column. */
export function parseText(text: string, file: string): ValidationResult<unknown> {
  const fail = (message: string): ValidationResult<unknown> => ({
    ok: false,
    errors: [{ path: '(file)', message }],
  });
  try {
    const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      const errors: ConfigError[] = doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        const where = pos === undefined ? '' : ` at line ${pos.line}, column ${pos.col}`;
        const what =
          e.code === 'MULTIPLE_DOCS'
            ? 'more than one YAML document'
            : (e.message.split('\n')[0] ?? '')
                .replace(/ at line \d+, column \d+:?$/, '')
                .replace(/^Maximum call stack size exceeded$/, 'nested too deeply');
        return { path: '(file)', message: `YAML syntax error in ${file}${where}: ${what}` };
      });
      return { ok: false, errors };
    }
    if (doc.contents === null) return fail(`${file} is empty`);
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (err) {
    // Resource guards of the parser (alias expansion, nesting depth) end up here.
    return fail(`cannot parse ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** One line: `valid: 2 listeners, 3 clusters, 4 routes (node "sidecar~a")`. */
export function summarize(b: Bootstrap): string {
  let routes = 0;
  for (const l of b.listeners) {
    for (const chain of l.filterChains) {
      if (chain.filter.kind !== 'http_connection_manager') continue;
      for (const vh of chain.filter.hcm.routeConfig?.virtualHosts ?? []) routes += vh.routes.length;
    }
  }
  const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
  const dr = b.dynamicResources;
  const types = [dr?.lds && 'listeners', dr?.cds && 'clusters'].filter(Boolean).join(' and ');
  const dynamic = dr?.ads && types !== '' ? `; ${types} from ADS (${dr.ads.apiType})` : '';
  return `valid: ${count(b.listeners.length, 'listener')}, ${count(b.clusters.length, 'cluster')}, ${count(routes, 'route')}${dynamic} (node ${JSON.stringify(b.node.id)})`;
}

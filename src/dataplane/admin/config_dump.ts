// Builds Envoy's /config_dump document from the raw bootstrap and the dynamic (xDS) resources, with
// `?resource=`, `?mask=` and `?name_regex=`.

import type { DumpedType, DynamicDump } from '../xds/dynamic_config.js';

const ADMIN = 'type.googleapis.com/envoy.admin.v3.';
const CLUSTER_TYPE = 'type.googleapis.com/envoy.config.cluster.v3.Cluster';
const LISTENER_TYPE = 'type.googleapis.com/envoy.config.listener.v3.Listener';
const ROUTE_TYPE = 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration';
const ENDPOINT_TYPE = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';
const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

type Json = Record<string, unknown>;

export interface ConfigDumpOptions {
  /** Dump only the elements of this repeated field (e.g. `static_clusters`), one config per element. */
  readonly resource?: string | undefined;
  /** Comma-separated field paths to keep (protobuf FieldMask semantics, `@type` always kept). */
  readonly mask?: string | undefined;
  /** Keep only resources whose name matches. */
  readonly nameRegex?: RegExp | undefined;
  /** Add an EndpointsConfigDump built from the clusters' load assignments. */
  readonly includeEds?: boolean | undefined;
  /** Shown as every static resource's last_updated. */
  readonly lastUpdated: Date;
  /** The resources from xDS, each with its version and update time. */
  readonly dynamic?: DynamicDump | undefined;
}

export type ConfigDumpResult =
  | { ok: true; body: { configs: Json[] } }
  | { ok: false; status: number; error: string };

/** Repeated resource fields of each dump, the element message type, and how to find an element's name. */
const RESOURCE_FIELDS: Readonly<
  Record<string, { dump: string; element: string; name: (e: Json) => unknown }>
> = {
  static_clusters: {
    dump: 'ClustersConfigDump',
    element: 'StaticCluster',
    name: (e) => pick(e.cluster, 'name'),
  },
  dynamic_active_clusters: {
    dump: 'ClustersConfigDump',
    element: 'DynamicCluster',
    name: (e) => pick(e.cluster, 'name'),
  },
  dynamic_warming_clusters: {
    dump: 'ClustersConfigDump',
    element: 'DynamicCluster',
    name: (e) => pick(e.cluster, 'name'),
  },
  static_endpoint_configs: {
    dump: 'EndpointsConfigDump',
    element: 'StaticEndpointConfig',
    name: (e) => pick(e.endpoint_config, 'cluster_name'),
  },
  dynamic_endpoint_configs: {
    dump: 'EndpointsConfigDump',
    element: 'DynamicEndpointConfig',
    name: (e) => pick(e.endpoint_config, 'cluster_name'),
  },
  static_listeners: {
    dump: 'ListenersConfigDump',
    element: 'StaticListener',
    name: (e) => pick(e.listener, 'name'),
  },
  dynamic_listeners: { dump: 'ListenersConfigDump', element: 'DynamicListener', name: (e) => e.name },
  static_route_configs: {
    dump: 'RoutesConfigDump',
    element: 'StaticRouteConfig',
    name: (e) => pick(e.route_config, 'name'),
  },
  dynamic_route_configs: {
    dump: 'RoutesConfigDump',
    element: 'DynamicRouteConfig',
    name: (e) => pick(e.route_config, 'name'),
  },
  static_secrets: { dump: 'SecretsConfigDump', element: 'StaticSecret', name: (e) => e.name },
  dynamic_active_secrets: { dump: 'SecretsConfigDump', element: 'DynamicSecret', name: (e) => e.name },
  dynamic_warming_secrets: { dump: 'SecretsConfigDump', element: 'DynamicSecret', name: (e) => e.name },
};

/** Field names whose values Envoy never prints (its `sensitive` annotation). */
const SENSITIVE = new Set([
  'private_key',
  'privateKey',
  'password',
  'generic_secret',
  'genericSecret',
  'hmac_secret',
  'hmacSecret',
]);

/** What Envoy prints instead of a sensitive string; a sensitive bytes field gets these bytes, base64 as JSON has it. */
const REDACTED = '[redacted]';
const REDACTED_BYTES = Buffer.from(REDACTED).toString('base64');
/** The bytes fields (base64 in JSON) of the sensitive messages (DataSource). */
const BYTES_FIELDS = new Set(['inline_bytes', 'inlineBytes']);

export function buildConfigDump(rawBootstrap: unknown, opts: ConfigDumpOptions): ConfigDumpResult {
  const raw = redact(isObject(rawBootstrap) ? rawBootstrap : {}) as Json;
  const lastUpdated = opts.lastUpdated.toISOString();
  const statics = (pick(raw, 'static_resources') ?? {}) as Json;
  const listeners = arrayOf(pick(statics, 'listeners'));
  const clusters = arrayOf(pick(statics, 'clusters'));

  const dyn = opts.dynamic;
  const dumps: Json[] = [
    { '@type': `${ADMIN}BootstrapConfigDump`, bootstrap: raw, last_updated: lastUpdated },
    {
      '@type': `${ADMIN}ClustersConfigDump`,
      ...(dyn && { version_info: dyn.CDS.version }),
      static_clusters: clusters.map((c) => ({
        cluster: { '@type': CLUSTER_TYPE, ...c },
        last_updated: lastUpdated,
      })),
      ...(dyn && dynamicClusters(dyn.CDS)),
    },
  ];
  if (
    opts.includeEds ||
    opts.resource === 'static_endpoint_configs' ||
    opts.resource === 'dynamic_endpoint_configs'
  ) {
    dumps.push({
      '@type': `${ADMIN}EndpointsConfigDump`,
      static_endpoint_configs: clusters
        .map((c) => pick(c, 'load_assignment'))
        .filter(isObject)
        .map((la) => ({ endpoint_config: { '@type': ENDPOINT_TYPE, ...la }, last_updated: lastUpdated })),
      ...(dyn && { dynamic_endpoint_configs: dynamicEntries(dyn.EDS, 'endpoint_config', ENDPOINT_TYPE) }),
    });
  }
  dumps.push(
    {
      '@type': `${ADMIN}ListenersConfigDump`,
      ...(dyn && { version_info: dyn.LDS.version }),
      static_listeners: listeners.map((l) => ({
        listener: { '@type': LISTENER_TYPE, ...l },
        last_updated: lastUpdated,
      })),
      ...(dyn && { dynamic_listeners: dynamicListeners(dyn.LDS) }),
    },
    {
      '@type': `${ADMIN}RoutesConfigDump`,
      static_route_configs: listeners.flatMap(inlineRouteConfigs).map((rc) => ({
        route_config: { '@type': ROUTE_TYPE, ...rc },
        last_updated: lastUpdated,
      })),
      ...(dyn && { dynamic_route_configs: dynamicEntries(dyn.RDS, 'route_config', ROUTE_TYPE) }),
    },
    {
      '@type': `${ADMIN}SecretsConfigDump`,
      static_secrets: arrayOf(pick(statics, 'secrets')).map((secret) => ({
        name: pick(secret, 'name'),
        last_updated: lastUpdated,
        secret: { '@type': SECRET_TYPE, ...secret },
      })),
      ...(dyn && dynamicSecrets(dyn.SDS)),
    },
  );

  if (opts.nameRegex) {
    const re = opts.nameRegex;
    for (const dump of dumps) {
      for (const [key, spec] of Object.entries(RESOURCE_FIELDS)) {
        const items = dump[key];
        if (Array.isArray(items)) dump[key] = items.filter((e: Json) => re.test(String(spec.name(e) ?? '')));
      }
    }
  }

  const masks = opts.mask ? parseMask(opts.mask) : undefined;
  if (opts.resource === undefined) {
    return { ok: true, body: { configs: masks ? dumps.map((d) => applyMask(d, masks) as Json) : dumps } };
  }
  const spec = RESOURCE_FIELDS[opts.resource];
  if (!spec) {
    const known = Object.keys(RESOURCE_FIELDS).join(', ');
    const status = opts.resource === 'bootstrap' ? 400 : 404;
    return {
      ok: false,
      status,
      error: `'${opts.resource}' is not a repeated resource field; one of: ${known}`,
    };
  }
  const items: Json[] = [];
  for (const dump of dumps) {
    const list = dump[opts.resource];
    if (!Array.isArray(list)) continue;
    for (const item of list as Json[]) {
      const typed = { '@type': `${ADMIN}${spec.dump}.${spec.element}`, ...item };
      items.push(masks ? (applyMask(typed, masks) as Json) : typed);
    }
  }
  return { ok: true, body: { configs: items } };
}

/** Resources of one xDS type as Envoy dumps them: `{version_info, <field>: {@type, ...}, last_updated}`. */
function dynamicEntries(t: DumpedType, field: string, typeUrl: string): Json[] {
  return t.resources.map((r) => ({
    version_info: r.version,
    [field]: redact({ '@type': typeUrl, ...r.json }),
    last_updated: r.lastUpdated.toISOString(),
  }));
}

/** A refused version of a resource (Envoy's UpdateFailureState). */
function errorState(t: DumpedType, name: string, typeUrl: string): Json | undefined {
  const f = t.failures.get(name);
  if (f === undefined) return undefined;
  return {
    ...(f.json && { failed_configuration: redact({ '@type': typeUrl, ...f.json }) }),
    last_update_attempt: f.at.toISOString(),
    details: f.details,
    version_info: f.version,
  };
}

function dynamicClusters(t: DumpedType): Json {
  const entry = (r: DumpedType['resources'][number]): Json => {
    const error = errorState(t, r.name, CLUSTER_TYPE);
    return {
      version_info: r.version,
      cluster: redact({ '@type': CLUSTER_TYPE, ...r.json }),
      last_updated: r.lastUpdated.toISOString(),
      ...(error && { error_state: error }),
    };
  };
  return {
    dynamic_active_clusters: t.resources.filter((r) => !r.warming).map(entry),
    dynamic_warming_clusters: t.resources.filter((r) => r.warming).map(entry),
  };
}

/** Envoy's DynamicListener: its name and active_state (or warming_state), and error_state after a refusal. */
function dynamicListeners(t: DumpedType): Json[] {
  const out: Json[] = t.resources.map((r) => {
    const state = {
      version_info: r.version,
      listener: redact({ '@type': LISTENER_TYPE, ...r.json }),
      last_updated: r.lastUpdated.toISOString(),
    };
    const error = errorState(t, r.name, LISTENER_TYPE);
    return {
      name: r.name,
      ...(r.warming ? { warming_state: state } : { active_state: state }),
      ...(error && { error_state: error }),
    };
  });
  const held = new Set(t.resources.map((r) => r.name));
  for (const name of t.failures.keys()) {
    if (!held.has(name)) out.push({ name, error_state: errorState(t, name, LISTENER_TYPE) });
  }
  return out;
}

/**
 * Envoy's DynamicSecret entries: the secrets in force with their versions, and those subscribed to that have not
 * arrived (warming). The private key is redacted as Envoy does.
 */
function dynamicSecrets(t: DumpedType): Json {
  return {
    dynamic_active_secrets: t.resources.map((r) => {
      const error = errorState(t, r.name, SECRET_TYPE);
      return {
        name: r.name,
        version_info: r.version,
        last_updated: r.lastUpdated.toISOString(),
        secret: redact({ '@type': SECRET_TYPE, ...r.json }),
        ...(error && { error_state: error }),
      };
    }),
    dynamic_warming_secrets: (t.waiting ?? []).map((name) => {
      const error = errorState(t, name, SECRET_TYPE);
      return { name, ...(error && { error_state: error }) };
    }),
  };
}

/** Route configurations written inline in a listener's HTTP connection managers. */
function inlineRouteConfigs(listener: Json): Json[] {
  const chains = arrayOf(pick(listener, 'filter_chains'));
  const dflt = pick(listener, 'default_filter_chain');
  if (isObject(dflt)) chains.push(dflt);
  const out: Json[] = [];
  for (const chain of chains) {
    for (const filter of arrayOf(pick(chain, 'filters'))) {
      const config = pick(filter, 'typed_config');
      const rc = isObject(config) ? pick(config, 'route_config') : undefined;
      if (isObject(rc)) out.push(rc);
    }
  }
  return out;
}

interface MaskTree {
  [field: string]: MaskTree;
}

function parseMask(mask: string): MaskTree {
  const tree: MaskTree = {};
  for (const path of mask.split(',')) {
    const segments = path
      .trim()
      .split('.')
      .filter((s) => s !== '');
    if (segments.length === 0) continue;
    let node = tree;
    for (const seg of segments) {
      node[seg] ??= {};
      node = node[seg]!;
    }
  }
  return tree;
}

/** Keeps only the masked paths (and `@type`); a path through a list applies to every element. */
function applyMask(value: unknown, tree: MaskTree): unknown {
  if (Array.isArray(value)) return value.map((v) => applyMask(v, tree));
  if (!isObject(value)) return value;
  const out: Json = {};
  if ('@type' in value) out['@type'] = value['@type'];
  for (const [key, sub] of Object.entries(tree)) {
    if (!(key in value)) continue;
    out[key] = Object.keys(sub).length === 0 ? value[key] : applyMask(value[key], sub);
  }
  return out;
}

/**
 * Envoy's redaction (MessageUtil::redact): the value of a sensitive field is replaced — a string by "[redacted]", a
 * message field by field (a DataSource keeps its shape: `inline_bytes` becomes the bytes of "[redacted]").
 */
function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (!isObject(value)) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) out[k] = SENSITIVE.has(k) ? redactAll(v) : redact(v);
  return out;
}

function redactAll(value: unknown, key = ''): unknown {
  if (Array.isArray(value)) return value.map((v) => redactAll(v, key));
  if (isObject(value)) {
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = k === '@type' ? v : redactAll(v, k);
    return out;
  }
  if (typeof value === 'string') return BYTES_FIELDS.has(key) ? REDACTED_BYTES : REDACTED;
  return value;
}

/** Reads a snake_case field, or its lowerCamelCase JSON spelling. */
function pick(obj: unknown, snake: string): unknown {
  if (!isObject(obj)) return undefined;
  if (snake in obj) return obj[snake];
  return obj[snake.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())];
}

function arrayOf(v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Listener filters (tls_inspector, http_inspector), their timeout, and the server-first ports that skip them.

import { durationField } from './durations.js';
import type { ListenerFilterConfig, ListenerFilterPredicate } from './model.js';
import { type Ctx, Fields, fieldPath, type Item, isPlainObject, quote, typeOf } from './reader.js';
import { TYPE_URLS, typedConfig, wrongType } from './typed_config.js';

/**
 * Envoy's defaults (15 s, then close), so that a listener from any control plane behaves as Envoy would run it:
 * over xDS an explicit `false` cannot be told from unset. Remora's control plane writes both fields on every
 * listener that sniffs (100 ms, continue).
 */
export const DEFAULT_LISTENER_FILTERS_TIMEOUT_MS = 15_000;
export const DEFAULT_CONTINUE_ON_LISTENER_FILTERS_TIMEOUT = false;

/** Ports of protocols where the server speaks first: SMTP, MySQL, PostgreSQL, Redis, memcached, MongoDB. */
export const DEFAULT_SERVER_FIRST_PORTS: readonly number[] = [25, 3306, 5432, 6379, 11211, 27017];

/** Envoy: a ClientHello larger than this is refused. */
export const MAX_CLIENT_HELLO_SIZE = 64 * 1024;

const MAX_PREDICATE_DEPTH = 32;

export interface ListenerFilterSettings {
  readonly listenerFilters: readonly ListenerFilterConfig[];
  /** The original_dst listener filter is listed: the connection's destination is restored from SO_ORIGINAL_DST. */
  readonly originalDst: boolean;
  readonly listenerFiltersTimeoutMs: number;
  readonly continueOnListenerFiltersTimeout: boolean;
  readonly serverFirstPorts: readonly number[];
}

/** Reads listener_filters, listener_filters_timeout, continue_on_listener_filters_timeout and metadata of a Listener. */
export function listenerFilterSettings(f: Fields): ListenerFilterSettings {
  const listenerFilters: ListenerFilterConfig[] = [];
  const seen = new Map<string, string>();
  let originalDst = false;
  for (const item of f.list('listener_filters')) {
    const lf = listenerFilter(f.ctx, item);
    if (lf === undefined) continue;
    if (lf === ORIGINAL_DST) {
      if (originalDst) f.ctx.error(item.path, 'envoy.filters.listener.original_dst is already listed');
      originalDst = true;
      continue;
    }
    const other = seen.get(lf.kind);
    if (other !== undefined) {
      f.ctx.error(item.path, `envoy.filters.listener.${lf.kind} is already listed (${other})`);
      continue;
    }
    seen.set(lf.kind, item.path.slice(item.path.lastIndexOf('.') + 1));
    listenerFilters.push(lf);
  }
  const listenerFiltersTimeoutMs =
    durationField(f, 'listener_filters_timeout') ?? DEFAULT_LISTENER_FILTERS_TIMEOUT_MS;
  const continueOnListenerFiltersTimeout =
    f.bool('continue_on_listener_filters_timeout') ?? DEFAULT_CONTINUE_ON_LISTENER_FILTERS_TIMEOUT;
  const serverFirstPorts = listenerMetadata(f) ?? DEFAULT_SERVER_FIRST_PORTS;
  return {
    listenerFilters,
    originalDst,
    listenerFiltersTimeoutMs,
    continueOnListenerFiltersTimeout,
    serverFirstPorts,
  };
}

/** Names under which Envoy finds a listener filter given without typed_config. */
const BY_NAME: Readonly<Record<string, 'tls_inspector' | 'http_inspector'>> = {
  'envoy.filters.listener.tls_inspector': 'tls_inspector',
  'envoy.listener.tls_inspector': 'tls_inspector',
  'envoy.filters.listener.http_inspector': 'http_inspector',
  'envoy.listener.http_inspector': 'http_inspector',
};

/** The original_dst filter reads no bytes: the listener restores the destination when it accepts a connection. */
const ORIGINAL_DST = 'original_dst' as const;
const ORIGINAL_DST_NAMES = ['envoy.filters.listener.original_dst', 'envoy.listener.original_dst'];

function listenerFilter(ctx: Ctx, item: Item): ListenerFilterConfig | typeof ORIGINAL_DST | undefined {
  const f = Fields.of(ctx, item.value, item.path);
  if (f === undefined) return undefined;
  const name = f.string('name', { required: true });
  const hasTyped = f.has('typed_config');
  const tc = typedConfig(f, 'typed_config', { required: false });
  const d = f.object('filter_disabled');
  const filterDisabled = d === undefined ? undefined : predicate(d, 0);
  f.unsupported(['config_discovery']);
  f.finish();
  if (name === undefined) return undefined;
  const isOriginalDst = hasTyped ? tc?.typeUrl === TYPE_URLS.originalDst : ORIGINAL_DST_NAMES.includes(name);
  if (isOriginalDst) {
    if (d !== undefined)
      f.error(
        'filter_disabled',
        'is not supported on original_dst: every accepted connection has its destination restored',
      );
    if (tc !== undefined) {
      tc.fields.unsupported(['traffic_direction'], { traffic_direction: 'UNSPECIFIED' });
      tc.fields.finish();
    }
    return ORIGINAL_DST;
  }
  if (!hasTyped) {
    const kind = BY_NAME[name];
    if (kind !== undefined) return defaults(kind, name, filterDisabled);
    const message = name.startsWith('envoy.filters.listener.')
      ? `listener filter ${quote(name)} is not supported by Remora yet (supported: envoy.filters.listener.tls_inspector, envoy.filters.listener.http_inspector, envoy.filters.listener.original_dst)`
      : `unknown listener filter ${quote(name)}: name a supported filter or give a typed_config`;
    f.error('name', message);
    return undefined;
  }
  if (tc === undefined) return undefined;
  switch (tc.typeUrl) {
    case TYPE_URLS.tlsInspector: {
      const t = tc.fields;
      t.unsupported(['enable_ja3_fingerprinting', 'enable_ja4_fingerprinting', 'initial_read_buffer_size'], {
        enable_ja3_fingerprinting: false,
        enable_ja4_fingerprinting: false,
      });
      const maxClientHelloSize = t.int('max_client_hello_size', { min: 1, max: MAX_CLIENT_HELLO_SIZE });
      const closeOnParsingErrors = t.bool('close_connection_on_client_hello_parsing_errors') ?? false;
      t.finish();
      return {
        kind: 'tls_inspector',
        name,
        filterDisabled,
        maxClientHelloSize: maxClientHelloSize ?? MAX_CLIENT_HELLO_SIZE,
        closeOnParsingErrors,
      };
    }
    case TYPE_URLS.httpInspector:
      tc.fields.finish();
      return defaults('http_inspector', name, filterDisabled);
    default:
      wrongType(tc, 'envoy.extensions.filters.listener.', 'listener filter');
      return undefined;
  }
}

function defaults(
  kind: 'tls_inspector' | 'http_inspector',
  name: string,
  filterDisabled: ListenerFilterPredicate | undefined,
): ListenerFilterConfig {
  return kind === 'tls_inspector'
    ? { kind, name, filterDisabled, maxClientHelloSize: MAX_CLIENT_HELLO_SIZE, closeOnParsingErrors: false }
    : { kind, name, filterDisabled };
}

/** A ListenerFilterChainMatchPredicate. */
function predicate(f: Fields, depth: number): ListenerFilterPredicate | undefined {
  if (depth >= MAX_PREDICATE_DEPTH) {
    f.ctx.error(f.path, `nested deeper than ${MAX_PREDICATE_DEPTH} levels`);
    return undefined;
  }
  const RULES = ['or_match', 'and_match', 'not_match', 'any_match', 'destination_port_range'];
  const which = f.oneOf(RULES, { required: true });
  let out: ListenerFilterPredicate | undefined;
  for (const kind of ['or_match', 'and_match'] as const) {
    const set = f.object(kind);
    if (set === undefined || which !== kind) continue;
    const rules: ListenerFilterPredicate[] = [];
    const items = set.list('rules', { required: true });
    if (set.has('rules') && items.length < 2) set.error('rules', 'needs at least 2 rules');
    for (const item of items) {
      const r = Fields.of(f.ctx, item.value, item.path);
      const p = r && predicate(r, depth + 1);
      if (p !== undefined) rules.push(p);
    }
    set.finish();
    if (rules.length === items.length && items.length >= 2) {
      out = { kind: kind === 'or_match' ? 'or' : 'and', rules };
    }
  }
  const not = f.object('not_match');
  if (not !== undefined && which === 'not_match') {
    const rule = predicate(not, depth + 1);
    if (rule !== undefined) out = { kind: 'not', rule };
  }
  const any = f.bool('any_match');
  if (any === false) f.error('any_match', 'must be true');
  if (any === true && which === 'any_match') out = { kind: 'any' };
  const range = f.object('destination_port_range');
  if (range !== undefined && which === 'destination_port_range') {
    const start = range.int('start', { min: 0, max: 65535 }) ?? 0;
    const end = range.int('end', { min: 0, max: 65536 }) ?? 0;
    range.finish();
    if (end <= start) range.error('end', `must be greater than start (${start}): the range is [start, end)`);
    else out = { kind: 'destination_port_range', start, end };
  }
  f.finish();
  return out;
}

/**
 * Listener metadata: Remora reads one key, filter_metadata.remora.server_first_ports. Undefined when it is not
 * set; anything else is an error, since no other listener metadata has an effect.
 */
function listenerMetadata(f: Fields): number[] | undefined {
  const md = f.object('metadata');
  if (md === undefined) return undefined;
  const fm = md.take('filter_metadata');
  md.unsupported(['typed_filter_metadata']);
  md.finish();
  if (fm === undefined) return undefined;
  const fmPath = md.pathOf('filter_metadata');
  if (!isPlainObject(fm)) {
    f.ctx.error(fmPath, `expected an object, got ${typeOf(fm)}`);
    return undefined;
  }
  let ports: number[] | undefined;
  for (const [key, value] of Object.entries(fm)) {
    const path = fieldPath(fmPath, key);
    if (key !== 'remora') {
      f.ctx.error(
        path,
        'listener metadata is not supported by Remora (the only key read is filter_metadata.remora.server_first_ports)',
      );
      continue;
    }
    if (!isPlainObject(value)) {
      f.ctx.error(path, `expected an object, got ${typeOf(value)}`);
      continue;
    }
    for (const [k, v] of Object.entries(value)) {
      // A Struct's keys are free-form: the camelCase spelling is taken too, for configs converted wholesale.
      if (k !== 'server_first_ports' && k !== 'serverFirstPorts') {
        f.ctx.error(fieldPath(path, k), `unknown key ${quote(k)} (Remora reads only server_first_ports)`);
      } else if (ports !== undefined) {
        f.ctx.error(fieldPath(path, k), 'server_first_ports is given twice');
      } else ports = portList(f.ctx, v, fieldPath(path, k)) ?? [];
    }
  }
  return ports;
}

function portList(ctx: Ctx, raw: unknown, path: string): number[] | undefined {
  if (!Array.isArray(raw)) {
    ctx.error(path, `expected an array of ports, got ${typeOf(raw)}`);
    return undefined;
  }
  const out: number[] = [];
  raw.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
      ctx.error(`${path}[${i}]`, `expected a port between 1 and 65535, got ${JSON.stringify(v)}`);
    } else out.push(v);
  });
  return out;
}

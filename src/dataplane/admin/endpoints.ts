// The admin endpoints, in Envoy's names and semantics: one table, each handler a pure function of (target, query).

import { LOG_LEVELS } from '../observe/log.js';
import { renderPrometheus, renderStatsJson, renderStatsText } from '../observe/stats_render.js';
import { certsDocument } from './certs.js';
import { buildConfigDump } from './config_dump.js';
import type { AdminTarget, ClusterStatus, HostStatus } from './target.js';

export type ContentKind = 'text' | 'json' | 'html' | 'prometheus';

export interface AdminResponse {
  readonly status: number;
  readonly kind: ContentKind;
  readonly body: string;
  /** The Allow header of a 405. */
  readonly allow?: string;
  /** Runs once the response has been sent (e.g. /quitquitquit's shutdown). */
  readonly afterResponse?: () => void;
}

export interface AdminContext {
  readonly target: AdminTarget;
  readonly query: URLSearchParams;
  /** "remora/<version>" */
  readonly version: string;
}

export interface Endpoint {
  readonly path: string;
  readonly help: string;
  /** How the index lists it: POST for endpoints that change state. */
  readonly method: 'GET' | 'POST';
  /** Whether this request changes state, and so needs POST (Envoy's rule). */
  readonly mutates: (query: URLSearchParams) => boolean;
  readonly handle: (ctx: AdminContext) => AdminResponse;
}

const always = (): boolean => true;
const never = (): boolean => false;

export const text = (body: string, status = 200): AdminResponse => ({ status, kind: 'text', body });
export const json = (value: unknown, status = 200): AdminResponse => ({
  status,
  kind: 'json',
  body: `${JSON.stringify(value, null, 2)}\n`,
});
const OK = (): AdminResponse => text('OK\n');

/** Envoy's level names, and "warn" as spdlog also accepts it. */
const LEVEL_NAMES: readonly string[] = [...LOG_LEVELS, 'warn'];

export const ENDPOINTS: readonly Endpoint[] = [
  { path: '/', help: 'Admin home page', method: 'GET', mutates: never, handle: (ctx) => home(ctx) },
  {
    path: '/certs',
    help: 'print certs on machine',
    method: 'GET',
    mutates: never,
    handle: ({ target }) => json(certsDocument(target.certificates?.() ?? [])),
  },
  {
    path: '/clusters',
    help: 'upstream cluster status (?format=json)',
    method: 'GET',
    mutates: never,
    handle: ({ target, query }) => {
      const clusters = target.clusters();
      if (query.get('format') === 'json') return json({ cluster_statuses: clusters.map(clusterJson) });
      return text(clusters.map(clusterText).join(''));
    },
  },
  {
    path: '/config_dump',
    help: 'dump current configs (?resource=, ?mask=, ?name_regex=, ?include_eds)',
    method: 'GET',
    mutates: never,
    handle: ({ target, query }) => {
      const regex = compileRegex(query.get('name_regex'));
      if (typeof regex === 'string') return text(regex, 400);
      const result = buildConfigDump(target.rawBootstrap(), {
        resource: query.get('resource') || undefined,
        mask: query.get('mask') || undefined,
        nameRegex: regex,
        includeEds: query.has('include_eds'),
        lastUpdated: new Date(target.startTime),
        dynamic: target.dynamicResources?.(),
      });
      return result.ok ? json(result.body) : text(`${result.error}\n`, result.status);
    },
  },
  {
    path: '/drain_listeners',
    help: 'drain listeners (?graceful: answer in-flight requests with connection: close; ?inboundonly)',
    method: 'POST',
    mutates: always,
    handle: ({ target, query }) => {
      target.drainListeners({ graceful: query.has('graceful'), inboundOnly: query.has('inboundonly') });
      return OK();
    },
  },
  {
    path: '/healthcheck/fail',
    help: 'cause the server to fail health checks',
    method: 'POST',
    mutates: always,
    handle: ({ target }) => {
      target.setHealthcheckFailed(true);
      return OK();
    },
  },
  {
    path: '/healthcheck/ok',
    help: 'cause the server to pass health checks',
    method: 'POST',
    mutates: always,
    handle: ({ target }) => {
      target.setHealthcheckFailed(false);
      return OK();
    },
  },
  {
    path: '/help',
    help: 'print out list of admin commands',
    method: 'GET',
    mutates: never,
    handle: () => text(helpText()),
  },
  {
    path: '/listeners',
    help: 'print listener info (?format=json)',
    method: 'GET',
    mutates: never,
    handle: ({ target, query }) => {
      const listeners = target.listeners();
      if (query.get('format') === 'json') {
        return json({
          listener_statuses: listeners.map((l) => ({
            name: l.name,
            local_address: socketAddress(l.address),
          })),
        });
      }
      return text(listeners.map((l) => `${l.name}::${l.address}\n`).join(''));
    },
  },
  {
    path: '/logging',
    help: 'query (GET) or change (POST ?level=<level> or ?paths=<logger>:<level>,...) the logging level',
    method: 'POST',
    mutates: (query) => query.has('level') || query.has('paths'),
    handle: logging,
  },
  {
    path: '/memory',
    help: 'print current allocation/heap usage',
    method: 'GET',
    mutates: never,
    handle: () => json(memory()),
  },
  {
    path: '/quitquitquit',
    help: 'exit the server (graceful shutdown, as SIGTERM)',
    method: 'POST',
    mutates: always,
    handle: ({ target }) => ({ ...OK(), afterResponse: () => target.quit() }),
  },
  {
    path: '/ready',
    help: 'print server state, return 200 if LIVE, otherwise return 503',
    method: 'GET',
    mutates: never,
    handle: ({ target }) => {
      const state = target.state();
      if (state !== 'LIVE') return text(`${state}\n`, 503);
      if (target.healthcheckFailed()) return text('LIVE (health check failed: POST /healthcheck/ok)\n', 503);
      return text('LIVE\n');
    },
  },
  {
    path: '/reset_counters',
    help: 'reset all counters to zero',
    method: 'POST',
    mutates: always,
    handle: ({ target }) => {
      target.stats.resetCounters();
      return OK();
    },
  },
  {
    path: '/server_info',
    help: 'print server version/status information',
    method: 'GET',
    mutates: never,
    handle: ({ target, version }) => {
      const uptime = `${Math.max(0, Math.floor((Date.now() - target.startTime) / 1000))}s`;
      const node = target.bootstrap().node;
      return json({
        version,
        state: target.state(),
        hot_restart_version: 'disabled',
        command_line_options: {},
        node: { id: node.id, cluster: node.cluster, metadata: node.metadata, user_agent_name: 'remora' },
        uptime_current_epoch: uptime,
        uptime_all_epochs: uptime,
      });
    },
  },
  {
    path: '/stats',
    help: 'print server stats (?filter=<regex>, ?usedonly, ?format=json|prometheus)',
    method: 'GET',
    mutates: never,
    handle: ({ target, query }) => {
      const filter = compileRegex(query.get('filter'));
      if (typeof filter === 'string') return text(filter, 400);
      const opts = { filter, usedOnly: query.has('usedonly') };
      const format = query.get('format') || 'text';
      if (format === 'text') return text(renderStatsText(target.stats, opts));
      if (format === 'json')
        return { status: 200, kind: 'json', body: JSON.stringify(renderStatsJson(target.stats, opts)) };
      if (format === 'prometheus')
        return { status: 200, kind: 'prometheus', body: renderPrometheus(target.stats, opts) };
      return text(`unsupported format '${format}': use text, json or prometheus\n`, 400);
    },
  },
  {
    path: '/stats/prometheus',
    help: 'print server stats in prometheus format (?filter=<regex>, ?usedonly)',
    method: 'GET',
    mutates: never,
    handle: ({ target, query }) => {
      const filter = compileRegex(query.get('filter'));
      if (typeof filter === 'string') return text(filter, 400);
      return {
        status: 200,
        kind: 'prometheus',
        body: renderPrometheus(target.stats, { filter, usedOnly: query.has('usedonly') }),
      };
    },
  },
];

export function helpText(): string {
  let out = 'admin commands are:\n';
  for (const e of ENDPOINTS) out += `  ${e.path}${e.method === 'POST' ? ' (POST)' : ''}: ${e.help}\n`;
  return out;
}

function logging({ target, query }: AdminContext): AdminResponse {
  const usage = `usage: POST /logging?level=<level> or /logging?paths=<logger>:<level>,...; levels: ${LOG_LEVELS.join(', ')}\n`;
  for (const key of query.keys()) {
    if (key !== 'level' && key !== 'paths') return text(`unknown parameter '${key}'\n${usage}`, 400);
  }
  let level = query.get('level');
  const paths = query.get('paths');
  if (level === null && paths !== null) {
    // There is one log level: every named logger must ask for the same one.
    const levels = new Set<string>();
    for (const entry of paths.split(',')) {
      const [name, lvl] = entry.split(':');
      if (!name || !lvl) return text(`malformed paths entry '${entry}'\n${usage}`, 400);
      levels.add(lvl.toLowerCase());
    }
    if (levels.size !== 1) {
      return text(`per-logger levels are not supported: all paths must use one level\n${usage}`, 400);
    }
    level = [...levels][0]!;
  }
  if (level !== null) {
    const normalized = level.toLowerCase();
    if (!LEVEL_NAMES.includes(normalized) || !target.setLogLevel(normalized)) {
      return text(`unknown logger level '${level}'\n${usage}`, 400);
    }
  }
  return text(`active loggers:\n  remora: ${target.logLevel()}\n`);
}

function home({ version }: AdminContext): AdminResponse {
  const rows = ENDPOINTS.map((e) => {
    const cell =
      e.method === 'POST'
        ? `<form action="${escapeHtml(e.path)}" method="post"><button>${escapeHtml(e.path)}</button></form>`
        : `<a href="${escapeHtml(e.path)}">${escapeHtml(e.path)}</a>`;
    return `<tr><td>${cell}</td><td>${escapeHtml(e.help)}</td></tr>`;
  }).join('\n');
  const body =
    `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Remora admin</title></head><body>\n` +
    `<h1>${escapeHtml(version)} admin</h1>\n<table>\n${rows}\n</table>\n</body></html>\n`;
  return { status: 200, kind: 'html', body };
}

function clusterText(c: ClusterStatus): string {
  const p = `${c.name}::`;
  const cb = c.circuitBreakers;
  let out =
    `${p}observability_name::${c.name}\n` +
    `${p}default_priority::max_connections::${cb.maxConnections}\n` +
    `${p}default_priority::max_pending_requests::${cb.maxPendingRequests}\n` +
    `${p}default_priority::max_requests::${cb.maxRequests}\n` +
    `${p}default_priority::max_retries::${cb.maxRetries}\n` +
    `${p}added_via_api::false\n`;
  for (const h of c.hosts) {
    const hp = `${p}${h.address}::`;
    for (const [name, value] of hostStats(h)) out += `${hp}${name}::${value}\n`;
    out +=
      `${hp}health_flags::${h.healthFlags || (h.healthy ? 'healthy' : '/failed_eds_health')}\n` +
      `${hp}weight::${h.weight}\n` +
      `${hp}priority::${h.priority}\n`;
  }
  return out;
}

/** Host counters and gauges, named and ordered as Envoy prints them. */
function hostStats(h: HostStatus): [string, number, 'COUNTER' | 'GAUGE'][] {
  return [
    ['cx_active', h.activeConnections, 'GAUGE'],
    ['cx_connect_fail', h.connectFailures, 'COUNTER'],
    ['rq_active', h.activeRequests, 'GAUGE'],
    ['rq_error', h.errorRequests, 'COUNTER'],
    ['rq_success', h.successRequests, 'COUNTER'],
    ['rq_total', h.totalRequests, 'COUNTER'],
  ];
}

function clusterJson(c: ClusterStatus): unknown {
  const cb = c.circuitBreakers;
  return {
    name: c.name,
    observability_name: c.name,
    added_via_api: false,
    circuit_breakers: {
      thresholds: [
        {
          priority: 'DEFAULT',
          max_connections: cb.maxConnections,
          max_pending_requests: cb.maxPendingRequests,
          max_requests: cb.maxRequests,
          max_retries: cb.maxRetries,
        },
      ],
    },
    host_statuses: c.hosts.map((h) => ({
      address: socketAddress(h.address),
      // As in Envoy's proto JSON: 64-bit values are strings, and COUNTER (the default type) is omitted.
      stats: hostStats(h).map(([name, value, type]) =>
        type === 'GAUGE' ? { name, type, value: String(value) } : { name, value: String(value) },
      ),
      health_status: healthStatus(h),
      weight: h.weight,
      priority: h.priority,
    })),
  };
}

function healthStatus(h: HostStatus): Record<string, unknown> {
  const flags = h.healthFlags;
  const out: Record<string, unknown> = {
    eds_health_status: flags.includes('degraded_eds_health')
      ? 'DEGRADED'
      : flags.includes('failed_eds_health') || (!h.healthy && flags === '')
        ? 'UNHEALTHY'
        : 'HEALTHY',
  };
  if (flags.includes('failed_active_hc')) out.failed_active_health_check = true;
  if (flags.includes('failed_outlier_check')) out.failed_outlier_check = true;
  if (flags.includes('pending_active_hc')) out.pending_active_hc = true;
  return out;
}

/** "10.0.0.1:8080" / "[::1]:80" → Envoy's {socket_address: {address, port_value}}. */
export function socketAddress(hostPort: string): { socket_address: { address: string; port_value: number } } {
  let host = hostPort;
  let port = 0;
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(hostPort) ?? /^([^:]*):(\d+)$/.exec(hostPort);
  if (m) {
    host = m[1]!;
    port = Number(m[2]);
  }
  return { socket_address: { address: host, port_value: port } };
}

function memory(): Record<string, string> {
  const m = process.memoryUsage();
  // Envoy's names where they exist; 64-bit values as strings like its proto JSON.
  return {
    allocated: String(m.heapUsed),
    heap_size: String(m.heapTotal),
    rss: String(m.rss),
    external: String(m.external),
    array_buffers: String(m.arrayBuffers),
  };
}

/** A RegExp for a `?filter=`-style parameter, undefined when absent or empty, or the error text. */
function compileRegex(source: string | null): RegExp | undefined | string {
  if (source === null || source === '') return undefined;
  try {
    return new RegExp(source);
  } catch (err) {
    return `invalid regex '${source}': ${(err as Error).message}\n`;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

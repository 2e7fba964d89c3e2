// The listener filters of one listener (tls_inspector, http_inspector): built once from config, one instance per connection.

import type { ListenerFilterConfig, ListenerFilterPredicate } from '../../config/model.js';
import { declareStats, type ScopeTag, type StatsOf, type StatsStore } from '../observe/stats.js';
import { HttpInspectorParser } from './http_inspector.js';
import { ClientHelloParser } from './tls_inspector.js';

/** Envoy's tls_inspector stats, under the listener's scope. */
export const TLS_INSPECTOR_STATS = declareStats({
  counters: [
    'tls_inspector.client_hello_too_large',
    'tls_inspector.tls_found',
    'tls_inspector.tls_not_found',
    'tls_inspector.alpn_found',
    'tls_inspector.alpn_not_found',
    'tls_inspector.sni_found',
    'tls_inspector.sni_not_found',
    'tls_inspector.read_error',
  ] as const,
  gauges: [] as const,
  histograms: [] as const,
});

/** Envoy's http_inspector stats, under the listener's scope. */
export const HTTP_INSPECTOR_STATS = declareStats({
  counters: [
    'http_inspector.http10_found',
    'http_inspector.http11_found',
    'http_inspector.http2_found',
    'http_inspector.http_not_found',
    'http_inspector.read_error',
  ] as const,
  gauges: [] as const,
  histograms: [] as const,
});

/** What the listener filters have found out about a connection so far. */
export interface Detected {
  /** "" until a filter sets it; the listener makes it "raw_buffer" when none did. */
  transportProtocol: string;
  serverName: string;
  applicationProtocols: readonly string[];
}

/**
 * Envoy's FilterStatus, plus `close`: `continue` = this filter is done (its findings are in `Detected`);
 * `need_more` = wait for more bytes; `close` = the connection must be closed (the filter counted why).
 */
export type ListenerFilterStatus = 'continue' | 'need_more' | 'close';

/** One listener filter on one connection. */
export interface ListenerFilterInstance {
  /** Bytes read since the last call; the first call gets everything read before this filter started. */
  onData(bytes: Buffer, detected: Detected): ListenerFilterStatus;
  /** The socket failed while this filter waited for bytes. */
  onReadError(): void;
}

/** A configured listener filter; `create` returns undefined when it has nothing to do on a connection. */
export interface ListenerFilter {
  readonly name: string;
  create(destinationPort: number, detected: Detected): ListenerFilterInstance | undefined;
}

/** The listener filters of a listener, in order, with their stats under the listener's scope. */
export function buildListenerFilters(
  configs: readonly ListenerFilterConfig[],
  store: StatsStore,
  scope: ScopeTag,
): ListenerFilter[] {
  return configs.map((c) =>
    c.kind === 'tls_inspector'
      ? new TlsInspector(c, store.scope(scope, TLS_INSPECTOR_STATS))
      : new HttpInspector(c, store.scope(scope, HTTP_INSPECTOR_STATS)),
  );
}

/** ListenerFilterChainMatchPredicate on the destination port (the only connection property it can test). */
export function predicateMatches(p: ListenerFilterPredicate, port: number): boolean {
  switch (p.kind) {
    case 'any':
      return true;
    case 'or':
      return p.rules.some((r) => predicateMatches(r, port));
    case 'and':
      return p.rules.every((r) => predicateMatches(r, port));
    case 'not':
      return !predicateMatches(p.rule, port);
    case 'destination_port_range':
      return port >= p.start && port < p.end;
  }
}

type TlsConfig = Extract<ListenerFilterConfig, { kind: 'tls_inspector' }>;
type HttpConfig = Extract<ListenerFilterConfig, { kind: 'http_inspector' }>;

class TlsInspector implements ListenerFilter {
  readonly name: string;
  constructor(
    private readonly config: TlsConfig,
    private readonly stats: StatsOf<typeof TLS_INSPECTOR_STATS>,
  ) {
    this.name = config.name;
  }

  create(port: number): ListenerFilterInstance | undefined {
    if (this.config.filterDisabled && predicateMatches(this.config.filterDisabled, port)) return undefined;
    const parser = new ClientHelloParser(this.config.maxClientHelloSize);
    const s = this.stats;
    const closeOnNotTls = this.config.closeOnParsingErrors;
    return {
      onData(bytes, detected) {
        const r = parser.push(bytes);
        switch (r.kind) {
          case 'need_more':
            return 'need_more';
          case 'too_large':
            s['tls_inspector.client_hello_too_large'].inc();
            return 'close';
          case 'not_tls':
            if (closeOnNotTls) return 'close';
            s['tls_inspector.tls_not_found'].inc();
            return 'continue';
          case 'tls':
            s['tls_inspector.tls_found'].inc();
            (r.serverName ? s['tls_inspector.sni_found'] : s['tls_inspector.sni_not_found']).inc();
            (r.alpn.length > 0 ? s['tls_inspector.alpn_found'] : s['tls_inspector.alpn_not_found']).inc();
            detected.transportProtocol = 'tls';
            if (r.serverName) detected.serverName = r.serverName;
            if (r.alpn.length > 0) detected.applicationProtocols = r.alpn;
            return 'continue';
        }
      },
      onReadError: () => s['tls_inspector.read_error'].inc(),
    };
  }
}

class HttpInspector implements ListenerFilter {
  readonly name: string;
  constructor(
    private readonly config: HttpConfig,
    private readonly stats: StatsOf<typeof HTTP_INSPECTOR_STATS>,
  ) {
    this.name = config.name;
  }

  create(port: number, detected: Detected): ListenerFilterInstance | undefined {
    if (this.config.filterDisabled && predicateMatches(this.config.filterDisabled, port)) return undefined;
    // As in Envoy: behind TLS the bytes are ciphertext, there is nothing to see.
    if (detected.transportProtocol !== '' && detected.transportProtocol !== 'raw_buffer') return undefined;
    const parser = new HttpInspectorParser();
    const s = this.stats;
    return {
      onData(bytes, found) {
        const r = parser.push(bytes);
        switch (r.kind) {
          case 'need_more':
            return 'need_more';
          case 'too_large':
            s['http_inspector.read_error'].inc();
            return 'close';
          case 'not_http':
            s['http_inspector.http_not_found'].inc();
            return 'continue';
          case 'http':
            if (r.protocol === 'h2c') s['http_inspector.http2_found'].inc();
            else if (r.protocol === 'http/1.1') s['http_inspector.http11_found'].inc();
            else s['http_inspector.http10_found'].inc();
            found.applicationProtocols = [r.protocol];
            return 'continue';
        }
      },
      onReadError: () => s['http_inspector.read_error'].inc(),
    };
  }
}

// typed_config (google.protobuf.Any in JSON): the extension type URLs Remora knows and how to open one.

import { type Fields, quote } from './reader.js';

const PREFIX = 'type.googleapis.com/';

export const TYPE_URLS = {
  httpConnectionManager: `${PREFIX}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  tcpProxy: `${PREFIX}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  router: `${PREFIX}envoy.extensions.filters.http.router.v3.Router`,
  httpRbac: `${PREFIX}envoy.extensions.filters.http.rbac.v3.RBAC`,
  networkRbac: `${PREFIX}envoy.extensions.filters.network.rbac.v3.RBAC`,
  stdoutAccessLog: `${PREFIX}envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`,
  stderrAccessLog: `${PREFIX}envoy.extensions.access_loggers.stream.v3.StderrAccessLog`,
  fileAccessLog: `${PREFIX}envoy.extensions.access_loggers.file.v3.FileAccessLog`,
  downstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  upstreamTlsContext: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  rawBuffer: `${PREFIX}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
  tlsInspector: `${PREFIX}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  httpInspector: `${PREFIX}envoy.extensions.filters.listener.http_inspector.v3.HttpInspector`,
  originalDst: `${PREFIX}envoy.extensions.filters.listener.original_dst.v3.OriginalDst`,
  upstreamHttpProtocolOptions: `${PREFIX}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  /** Istio's istio.stats, HTTP and network filter alike. */
  istioStats: `${PREFIX}stats.PluginConfig`,
  /** Istio's ALPN override filter (istio.alpn), which Istio's outbound HCMs carry. */
  istioAlpn: `${PREFIX}istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig`,
} as const;

export interface TypedConfig {
  /** Canonical type URL: `type.googleapis.com/` + the full message name. */
  readonly typeUrl: string;
  /** The message's fields (everything but `@type`). */
  readonly fields: Fields;
}

/**
 * Opens the Any in field `name` of `f`. The `@type` may use any URL prefix; only the part after the last "/"
 * names the message. Undefined (with an error) when missing or malformed.
 */
export function typedConfig(f: Fields, name: string, opts: { required: boolean }): TypedConfig | undefined {
  const any = f.object(name, opts);
  return any === undefined ? undefined : openAny(any);
}

/** Reads the `@type` of an Any already opened as an object (e.g. a value of a map of Anys). */
export function openAny(any: Fields): TypedConfig | undefined {
  const url = any.string('@type', { required: true });
  if (url === undefined) return undefined;
  const slash = url.lastIndexOf('/');
  const message = url.slice(slash + 1);
  if (slash < 0 || !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$/.test(message)) {
    any.error('@type', `malformed type URL ${quote(url)}`);
    return undefined;
  }
  return { typeUrl: PREFIX + message, fields: any };
}

/**
 * Reports a typed_config of a type this position does not take: Envoy extensions of the right family are
 * "not supported yet", anything else is unknown.
 */
export function wrongType(tc: TypedConfig, family: string, what: string): void {
  const name = tc.typeUrl.slice(PREFIX.length);
  const message = name.startsWith(family)
    ? `${what} type ${quote(tc.typeUrl)} is not supported by Remora yet`
    : `unknown ${what} type ${quote(tc.typeUrl)}`;
  tc.fields.error('@type', message);
}

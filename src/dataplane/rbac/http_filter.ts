// envoy.filters.http.rbac: decides each request before the router sees it, from its headers, its path and its
// connection (addresses, SNI, client certificate).

import type { IpBytes } from '../../config/cidr.js';
import type { HttpFilterConfig, HttpRbacConfig } from '../../config/model.js';
import type { DownstreamStream } from '../http/stream.js';
import type { Logger } from '../observe/log.js';
import { type StatsStore, scopes } from '../observe/stats.js';
import { connectionFacts, ipOf, UNKNOWN_CONNECTION } from './connection_facts.js';
import { RbacDecider } from './decision.js';
import { pathWithoutQuery, type RbacInput } from './engine.js';
import { RbacStats } from './stats.js';

/** The body of a denial, exactly as Envoy sends it. */
export const RBAC_DENIED_BODY = 'RBAC: access denied';

/** What the filter reads of a request beyond its stream: as the connection manager resolved it. */
export interface RbacRequest {
  readonly stream: DownstreamStream;
  /** :authority (Host for HTTP/1.x, or default_host_for_http_10). */
  readonly authority: string;
  readonly scheme: string;
}

/** One envoy.filters.http.rbac of an HCM; built once per HCM config, shared by all its requests. */
export class HttpRbacFilter {
  private readonly decider: RbacDecider;

  constructor(
    readonly name: string,
    config: HttpRbacConfig,
    /** The HCM's stat_prefix: the counters are http.<stat_prefix>.rbac.*. */
    hcmStatPrefix: string,
    store: StatsStore,
    logger: Logger,
  ) {
    const tag = scopes.http(hcmStatPrefix);
    const stats = new RbacStats(
      store,
      tag,
      tag.prefix,
      config.rulesStatPrefix,
      config.shadowRulesStatPrefix,
      config.trackPerRuleStats,
    );
    const what = `rbac ${JSON.stringify(name)} of http.${hcmStatPrefix}`;
    this.decider = new RbacDecider(what, config.rules, config.shadowRules, stats, logger);
  }

  /** The HCM's RBAC filters, in chain order; [] when it has none. */
  static fromChain(
    filters: readonly HttpFilterConfig[],
    hcmStatPrefix: string,
    store: StatsStore,
    logger: Logger,
  ): HttpRbacFilter[] {
    const out: HttpRbacFilter[] = [];
    for (const f of filters) {
      if (f.rbac !== undefined) out.push(new HttpRbacFilter(f.name, f.rbac, hcmStatPrefix, store, logger));
    }
    return out;
  }

  /** Undefined lets the request on; otherwise it is denied, with these response code details. */
  check(input: RbacInput, req: RbacRequest): string | undefined {
    return this.decider.decide(input, () => describeRequest(input, req));
  }
}

/**
 * What the rules of an HCM's RBAC filters read of one request; built once per request. `useRemoteAddress` is the
 * HCM's use_remote_address: false makes remote_ip the last x-forwarded-for address, as Envoy does.
 */
export function rbacRequestInput(req: RbacRequest, useRemoteAddress: boolean): RbacInput {
  const { stream, authority, scheme } = req;
  const socket = stream.connection.socket;
  const connection = socket === undefined ? UNKNOWN_CONNECTION : connectionFacts(socket);
  return {
    connection,
    header: (name) => {
      if (name.charCodeAt(0) !== 58 /* : */) return stream.header(name);
      switch (name) {
        case ':method':
          return stream.method;
        case ':path':
          return stream.url;
        case ':authority':
          return authority;
        case ':scheme':
          return scheme;
        default:
          return undefined;
      }
    },
    urlPath: () => pathWithoutQuery(stream.url),
    remoteIp: () =>
      (useRemoteAddress ? undefined : lastForwardedFor(stream.header('x-forwarded-for'))) ??
      connection.directRemoteIp,
  };
}

/**
 * Envoy's downstream address without use_remote_address: the last x-forwarded-for entry, when it is an IP
 * address (no trusted hops: xff_num_trusted_hops is 0 here).
 */
export function lastForwardedFor(xff: string | undefined): IpBytes | undefined {
  if (xff === undefined) return undefined;
  const last = xff.slice(xff.lastIndexOf(',') + 1).trim();
  return last === '' ? undefined : ipOf(last);
}

function describeRequest(input: RbacInput, req: RbacRequest): Record<string, unknown> {
  const c = req.stream.connection;
  const peer = input.connection.peer;
  return {
    method: req.stream.method,
    path: req.stream.url,
    authority: req.authority,
    remote: c.remoteAddress,
    local: c.localAddress,
    sni: input.connection.requestedServerName || undefined,
    peer_uri_san: peer?.uriSans.join(',') || undefined,
    peer_subject: peer?.subject || undefined,
  };
}

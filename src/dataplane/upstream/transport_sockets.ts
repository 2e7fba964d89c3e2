// A cluster's transport sockets: its own transport_socket and those of its transport_socket_matches, chosen per host
// from the host's metadata as Envoy's TransportSocketMatcher does.

import type { ClusterConfig, FilterMetadata, UpstreamTlsConfig } from '../../config/model.js';
import type { Logger } from '../observe/log.js';
import { type Counter, type ScopeTag, type StatsStore, scopes } from '../observe/stats.js';
import type { SecretManager } from '../tls/secret_manager.js';
import { UpstreamTls } from '../tls/upstream.js';

/** The filter_metadata key whose Struct the matches are checked against. */
export const TRANSPORT_SOCKET_MATCH_KEY = 'envoy.transport_socket_match';

export interface TransportSocketsOptions {
  readonly store: StatsStore;
  readonly logger: Logger;
  readonly secrets?: SecretManager | undefined;
}

interface Match {
  readonly name: string;
  readonly labels: readonly (readonly [string, unknown])[];
  readonly tls: UpstreamTls | undefined;
  /** `cluster.<name>.<match name>.total_match_count`: hosts that took it. */
  readonly count: Counter;
}

/**
 * The TLS contexts a cluster's hosts may connect with. `resolve` picks one for a host's metadata: the first match
 * whose labels its LbEndpoint metadata holds, else the first its locality metadata holds, else the cluster's own
 * transport_socket (plaintext when there is none). A match with no labels takes every host.
 */
export class TransportSockets {
  /** The cluster's transport_socket; undefined = plaintext. */
  readonly default: UpstreamTls | undefined;
  private readonly matches: readonly Match[];
  /** `cluster.<name>.default.total_match_count`; kept only when there are matches, as the others are. */
  private readonly defaultCount: Counter | undefined;

  /** Throws TlsMaterialError when a context's certificate files cannot be used (none is left open then). */
  constructor(config: ClusterConfig, opts: TransportSocketsOptions) {
    const scope = scopes.cluster(config.name);
    const cluster = `cluster ${JSON.stringify(config.name)}`;
    const built: UpstreamTls[] = [];
    const context = (tls: UpstreamTlsConfig | undefined, name: string): UpstreamTls | undefined => {
      if (tls === undefined) return undefined;
      const c = new UpstreamTls(tls, {
        store: opts.store,
        scope,
        logger: opts.logger,
        name,
        secrets: opts.secrets,
      });
      built.push(c);
      return c;
    };
    try {
      this.default = context(config.tls, cluster);
      const matches = config.transportSocketMatches ?? [];
      this.matches = matches.map((m) => ({
        name: m.name,
        labels: Object.entries(m.match),
        tls: context(m.tls, `${cluster} transport socket match ${JSON.stringify(m.name)}`),
        count: matchCounter(opts.store, scope, m.name),
      }));
      this.defaultCount = matches.length > 0 ? matchCounter(opts.store, scope, 'default') : undefined;
    } catch (err) {
      for (const c of built) c.close();
      throw err;
    }
  }

  /** Whether any host may take another socket than the cluster's own. */
  get hasMatches(): boolean {
    return this.matches.length > 0;
  }

  /** The transport socket of a host with this metadata; counts the match (Envoy counts each host resolved). */
  resolve(
    endpoint: FilterMetadata | undefined,
    locality: FilterMetadata | undefined,
  ): UpstreamTls | undefined {
    const m = this.match(endpoint, locality);
    if (m === undefined) {
      this.defaultCount?.inc();
      return this.default;
    }
    m.count.inc();
    return m.tls;
  }

  /** What `resolve` would choose, without counting it. */
  peek(endpoint: FilterMetadata | undefined, locality: FilterMetadata | undefined): UpstreamTls | undefined {
    const m = this.match(endpoint, locality);
    return m === undefined ? this.default : m.tls;
  }

  private match(
    endpoint: FilterMetadata | undefined,
    locality: FilterMetadata | undefined,
  ): Match | undefined {
    // Every match against the endpoint's metadata first: it takes precedence over the locality's.
    for (const m of this.matches) if (labelsMatch(m.labels, endpoint)) return m;
    for (const m of this.matches) if (labelsMatch(m.labels, locality)) return m;
    return undefined;
  }

  /** Every TLS context: the cluster's own and the matches'. */
  contexts(): UpstreamTls[] {
    const out: UpstreamTls[] = [];
    if (this.default) out.push(this.default);
    for (const m of this.matches) if (m.tls) out.push(m.tls);
    return out;
  }

  /** Whether the secrets of every context have arrived: a cluster warms until they have, as in Envoy. */
  get ready(): boolean {
    return this.contexts().every((c) => c.readiness.ready);
  }

  /** Resolves once every context is ready (or closed). */
  async whenReady(): Promise<void> {
    await Promise.all(this.contexts().map((c) => c.readiness.whenReady()));
  }

  /** The longest initial_fetch_timeout of the contexts still waiting; 0 = wait for ever (or none waiting). */
  get initialFetchTimeoutMs(): number {
    const waits = this.contexts()
      .filter((c) => !c.readiness.ready)
      .map((c) => c.readiness.initialFetchTimeoutMs);
    return waits.length === 0 || waits.includes(0) ? 0 : Math.max(...waits);
  }

  close(): void {
    for (const c of this.contexts()) c.close();
  }
}

function matchCounter(store: StatsStore, scope: ScopeTag, name: string): Counter {
  const stat = `${name}.total_match_count`;
  return store.counter(scope.prefix + stat, scope, stat);
}

/** Envoy's Metadata::metadataLabelMatch: every label is in the metadata's match Struct with an equal value. */
function labelsMatch(labels: Match['labels'], md: FilterMetadata | undefined): boolean {
  if (labels.length === 0) return true;
  const s =
    md !== undefined && Object.hasOwn(md, TRANSPORT_SOCKET_MATCH_KEY)
      ? md[TRANSPORT_SOCKET_MATCH_KEY]
      : undefined;
  if (s === undefined) return false;
  for (const [key, value] of labels) {
    if (!Object.hasOwn(s, key) || !jsonEqual(s[key], value)) return false;
  }
  return true;
}

/** Equality of JSON values as protobuf's Value equality: same kind, same contents, key order aside. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((v, i) => jsonEqual(v, bs[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = Object.keys(ao);
  if (keys.length !== Object.keys(bo).length) return false;
  return keys.every((k) => Object.hasOwn(bo, k) && jsonEqual(ao[k], bo[k]));
}

// The stats store: counters, gauges and histograms named in Envoy's vocabulary, rendered as text or Prometheus.

/** A stat scope such as `cluster.<name>.` and its Prometheus tag (`envoy_cluster_name="<name>"`). */
export interface ScopeTag {
  readonly prefix: string;
  readonly tagName: string;
  readonly tagValue: string;
  /**
   * A stat of a custom stat namespace (Istio's `istiocustom`): Prometheus shows it as `family{labels}`, without
   * Envoy's `envoy_` prefix and without the tag above. `labels` is rendered, without braces.
   */
  readonly custom?: { readonly family: string; readonly labels: string };
}

export class Counter {
  value = 0;
  constructor(
    readonly name: string,
    readonly tag: ScopeTag | undefined,
    readonly statName: string,
  ) {}
  inc(n = 1): void {
    this.value += n;
  }
}

export class Gauge {
  value = 0;
  constructor(
    readonly name: string,
    readonly tag: ScopeTag | undefined,
    readonly statName: string,
  ) {}
  inc(n = 1): void {
    this.value += n;
  }
  dec(n = 1): void {
    this.value -= n;
  }
  set(v: number): void {
    this.value = v;
  }
}

/** Envoy's default histogram buckets, in milliseconds. */
export const HISTOGRAM_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
] as const;

export class Histogram {
  readonly counts = new Float64Array(HISTOGRAM_BUCKETS_MS.length);
  count = 0;
  sum = 0;
  constructor(
    readonly name: string,
    readonly tag: ScopeTag | undefined,
    readonly statName: string,
  ) {}
  record(ms: number): void {
    this.count++;
    this.sum += ms;
    for (let i = 0; i < HISTOGRAM_BUCKETS_MS.length; i++) {
      if (ms <= HISTOGRAM_BUCKETS_MS[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
  /** Approximate quantile (upper bucket bound), for /stats text. */
  quantile(q: number): number | undefined {
    if (this.count === 0) return undefined;
    const want = q * this.count;
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_BUCKETS_MS.length; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return HISTOGRAM_BUCKETS_MS[i];
    }
    return Number.POSITIVE_INFINITY;
  }
}

/** A declaration of one component's stats: one list per component, as Envoy's ALL_*_STATS macros. */
export interface StatsDeclaration<C extends string, G extends string, H extends string> {
  readonly counters: readonly C[];
  readonly gauges: readonly G[];
  readonly histograms: readonly H[];
}

export type DeclaredStats<C extends string, G extends string, H extends string> = {
  readonly [K in C]: Counter;
} & { readonly [K in G]: Gauge } & { readonly [K in H]: Histogram };

export function declareStats<C extends string, G extends string, H extends string>(
  decl: StatsDeclaration<C, G, H>,
): StatsDeclaration<C, G, H> {
  return decl;
}

export class StatsStore {
  private readonly counters = new Map<string, Counter>();
  private readonly gauges = new Map<string, Gauge>();
  private readonly histograms = new Map<string, Histogram>();

  counter(name: string, tag?: ScopeTag, statName = name): Counter {
    let c = this.counters.get(name);
    if (!c) {
      c = new Counter(name, tag, statName);
      this.counters.set(name, c);
    }
    return c;
  }

  gauge(name: string, tag?: ScopeTag, statName = name): Gauge {
    let g = this.gauges.get(name);
    if (!g) {
      g = new Gauge(name, tag, statName);
      this.gauges.set(name, g);
    }
    return g;
  }

  histogram(name: string, tag?: ScopeTag, statName = name): Histogram {
    let h = this.histograms.get(name);
    if (!h) {
      h = new Histogram(name, tag, statName);
      this.histograms.set(name, h);
    }
    return h;
  }

  /**
   * Creates (or finds) every stat of a declaration under a scope: `scope.prefix + stat`.
   * Stats live as long as the store; a scope built twice (e.g. a cluster re-added) shares its counters.
   */
  scope<C extends string, G extends string, H extends string>(
    tag: ScopeTag | undefined,
    decl: StatsDeclaration<C, G, H>,
  ): DeclaredStats<C, G, H> {
    const prefix = tag ? tag.prefix : '';
    const out = withFastProperties([...decl.counters, ...decl.gauges, ...decl.histograms]);
    for (const n of decl.counters) out[n] = this.counter(prefix + n, tag, n);
    for (const n of decl.gauges) out[n] = this.gauge(prefix + n, tag, n);
    for (const n of decl.histograms) out[n] = this.histogram(prefix + n, tag, n);
    return out as DeclaredStats<C, G, H>;
  }

  resetCounters(): void {
    for (const c of this.counters.values()) c.value = 0;
  }

  allCounters(): Iterable<Counter> {
    return this.counters.values();
  }
  allGauges(): Iterable<Gauge> {
    return this.gauges.values();
  }
  allHistograms(): Iterable<Histogram> {
    return this.histograms.values();
  }
}

/** Scope helpers, in Envoy's naming. */
export const scopes = {
  cluster: (name: string): ScopeTag => ({
    prefix: `cluster.${name}.`,
    tagName: 'envoy_cluster_name',
    tagValue: name,
  }),
  http: (prefix: string): ScopeTag => ({
    prefix: `http.${prefix}.`,
    tagName: 'envoy_http_conn_manager_prefix',
    tagValue: prefix,
  }),
  tcp: (prefix: string): ScopeTag => ({
    prefix: `tcp.${prefix}.`,
    tagName: 'envoy_tcp_prefix',
    tagValue: prefix,
  }),
  listener: (address: string): ScopeTag => ({
    prefix: `listener.${address}.`,
    tagName: 'envoy_listener_address',
    tagValue: address,
  }),
};

/** The typed stats object a declaration yields: `StatsOf<typeof CLUSTER_STATS>`. */
export type StatsOf<D> =
  D extends StatsDeclaration<infer C, infer G, infer H> ? DeclaredStats<C, G, H> : never;

/** Makes a gauge read its value from `read()` when rendered, for state that changes on every request. */
export function computedGauge(g: Gauge, read: () => number): void {
  Object.defineProperty(g, 'value', { get: read, set: () => undefined, configurable: true });
}

/**
 * An object with these property names, in V8's fast mode. Built by adding keys one by one, an object with
 * more than a dozen properties turns into a hash table, and every `stats.some_counter` on the hot path
 * becomes a dictionary lookup; JSON.parse builds its objects with fast properties, and assigning to
 * existing properties keeps them.
 */
function withFastProperties(names: readonly string[]): Record<string, Counter | Gauge | Histogram> {
  return JSON.parse(JSON.stringify(Object.fromEntries(names.map((n) => [n, 0]))));
}

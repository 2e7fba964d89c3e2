// Renders a StatsStore as Envoy's /stats text, its JSON form, and Prometheus text exposition format 0.0.4.

import { type Counter, type Gauge, HISTOGRAM_BUCKETS_MS, type Histogram, type StatsStore } from './stats.js';

export interface StatsRenderOptions {
  /** Keep only stats whose full name matches (a search, as Envoy's `?filter=`). */
  readonly filter?: RegExp | undefined;
  /**
   * Keep only stats that hold a value: counters above zero, gauges not zero, histograms with samples.
   * (Envoy tracks a "used" flag; a stat that went back to zero counts as unused here.)
   */
  readonly usedOnly?: boolean | undefined;
}

/** Envoy's quantiles for /stats, as fractions, and their labels. */
export const SUPPORTED_QUANTILES = [0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 1] as const;
const QUANTILE_LABELS = SUPPORTED_QUANTILES.map((q) => `P${Number((q * 100).toFixed(1))}`);

/** Envoy's /stats text: `name: value` for counters and gauges sorted by name, then histograms sorted by name. */
export function renderStatsText(store: StatsStore, opts: StatsRenderOptions = {}): string {
  const keep = selector(opts);
  const scalars: [string, number][] = [];
  for (const c of store.allCounters()) if (keep(c.name, c.value !== 0)) scalars.push([c.name, c.value]);
  for (const g of store.allGauges()) if (keep(g.name, g.value !== 0)) scalars.push([g.name, g.value]);
  scalars.sort(byFirst);
  let out = '';
  for (const [name, value] of scalars) out += `${name}: ${formatNumber(value)}\n`;
  for (const h of sortedHistograms(store, keep)) {
    if (h.count === 0) {
      out += `${h.name}: No recorded values\n`;
      continue;
    }
    const parts: string[] = [];
    for (let i = 0; i < SUPPORTED_QUANTILES.length; i++) {
      // Only cumulative values are kept, so the interval column repeats them.
      const v = formatQuantile(histogramQuantile(h, SUPPORTED_QUANTILES[i]!));
      parts.push(`${QUANTILE_LABELS[i]}(${v},${v})`);
    }
    out += `${h.name}: ${parts.join(' ')}\n`;
  }
  return out;
}

export interface StatsJson {
  stats: (
    | { name: string; value: number }
    | {
        histograms: {
          supported_quantiles: number[];
          computed_quantiles: {
            name: string;
            values: { interval: number | null; cumulative: number | null }[];
          }[];
        };
      }
  )[];
}

/** Envoy's `/stats?format=json`: counters and gauges, then one `histograms` element when there are any. */
export function renderStatsJson(store: StatsStore, opts: StatsRenderOptions = {}): StatsJson {
  const keep = selector(opts);
  const scalars: { name: string; value: number }[] = [];
  for (const c of store.allCounters())
    if (keep(c.name, c.value !== 0)) scalars.push({ name: c.name, value: c.value });
  for (const g of store.allGauges())
    if (keep(g.name, g.value !== 0)) scalars.push({ name: g.name, value: g.value });
  scalars.sort((a, b) => compare(a.name, b.name));
  const out: StatsJson = { stats: scalars };
  const histograms = sortedHistograms(store, keep);
  if (histograms.length > 0) {
    out.stats.push({
      histograms: {
        supported_quantiles: SUPPORTED_QUANTILES.map((q) => Number((q * 100).toFixed(1))),
        computed_quantiles: histograms.map((h) => ({
          name: h.name,
          values: SUPPORTED_QUANTILES.map((q) => {
            const v = histogramQuantile(h, q);
            const n = v === undefined ? null : Number(formatQuantile(v));
            return { interval: n, cumulative: n };
          }),
        })),
      },
    });
  }
  return out;
}

/**
 * Quantile of a histogram, interpolated linearly inside the bucket that holds it
 * (samples above the last bucket are reported at the last bound). undefined when empty.
 */
export function histogramQuantile(h: Histogram, q: number): number | undefined {
  if (h.count === 0) return undefined;
  const want = q * h.count;
  let seen = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS_MS.length; i++) {
    const c = h.counts[i]!;
    if (c === 0) continue;
    if (seen + c >= want) {
      const lower = i === 0 ? 0 : HISTOGRAM_BUCKETS_MS[i - 1]!;
      const upper = HISTOGRAM_BUCKETS_MS[i]!;
      return lower + ((upper - lower) * Math.max(0, want - seen)) / c;
    }
    seen += c;
  }
  return HISTOGRAM_BUCKETS_MS[HISTOGRAM_BUCKETS_MS.length - 1]!;
}

// ---------------------------------------------------------------- Prometheus

/** The Prometheus name and labels of one stat, as Envoy's tag extraction produces them. */
export interface PrometheusIdentity {
  readonly family: string;
  /** Rendered label pairs without braces, e.g. `envoy_cluster_name="web"`; '' when none. */
  readonly labels: string;
}

/**
 * Envoy's naming: a stat under a ScopeTag becomes `envoy_<first prefix segment>_<statName>` with the tag as a
 * label; an untagged stat becomes `envoy_<name>`. Response-code stats get Envoy's code tags:
 * `..._rq_2xx` → `..._rq_xx{envoy_response_code_class="2"}`, `..._rq_503` → `..._rq{envoy_response_code="503"}`;
 * gRPC statuses likewise: `grpc_response_status.14` → `grpc_response_status{grpc_response_status="14"}`.
 */
export function prometheusIdentity(stat: Counter | Gauge | Histogram): PrometheusIdentity {
  if (stat.tag?.custom !== undefined) return stat.tag.custom;
  const labels: string[] = [];
  let base: string;
  let scope: string;
  if (stat.tag) {
    const dot = stat.tag.prefix.indexOf('.');
    scope = dot > 0 ? `${stat.tag.prefix.slice(0, dot)}_` : '';
    base = stat.statName;
  } else {
    scope = '';
    base = stat.name;
  }
  const grpc = GRPC_STATUS.exec(base);
  if (grpc) {
    base = grpc[1]!;
    labels.push(label('grpc_response_status', grpc[2]!));
  }
  const code = grpc ? null : RESPONSE_CODE.exec(base);
  if (code) {
    const value = code[2]!;
    if (value.endsWith('xx')) {
      base = `${code[1]}_rq_xx`;
      labels.push(label('envoy_response_code_class', value[0]!));
    } else {
      base = `${code[1]}_rq`;
      labels.push(label('envoy_response_code', value));
    }
  }
  if (stat.tag) labels.push(label(sanitizeName(stat.tag.tagName), stat.tag.tagValue));
  return { family: sanitizeName(`envoy_${scope}${base}`), labels: labels.join(',') };
}

const RESPONSE_CODE = /^(.*)_rq_([1-5]xx|[1-5]\d\d)$/;
/** `grpc_response_status.14` → `grpc_response_status{grpc_response_status="14"}` (Istio's label name). */
const GRPC_STATUS = /^(.*grpc_response_status)\.(\d+)$/;

/** Prometheus text exposition format 0.0.4: one `# TYPE` line per family, counters, then gauges, then histograms. */
export function renderPrometheus(store: StatsStore, opts: StatsRenderOptions = {}): string {
  const keep = selector(opts);
  const counters = new Map<string, [string, string][]>();
  const gauges = new Map<string, [string, string][]>();
  const histograms = new Map<string, [string, string][]>();
  const typeOf = new Map<string, string>();

  const add = (
    families: Map<string, [string, string][]>,
    type: string,
    stat: Counter | Gauge | Histogram,
    render: (id: PrometheusIdentity) => string,
  ): void => {
    const id = prometheusIdentity(stat);
    const seen = typeOf.get(id.family);
    // A family name used by two stat types would make the exposition invalid: the first type keeps it.
    if (seen !== undefined && seen !== type) return;
    typeOf.set(id.family, type);
    let series = families.get(id.family);
    if (!series) {
      series = [];
      families.set(id.family, series);
    }
    series.push([id.labels, render(id)]);
  };

  for (const c of store.allCounters()) {
    if (!keep(c.name, c.value !== 0)) continue;
    add(counters, 'counter', c, (id) => `${id.family}${braces(id.labels)} ${promNumber(c.value)}\n`);
  }
  for (const g of store.allGauges()) {
    if (!keep(g.name, g.value !== 0)) continue;
    add(gauges, 'gauge', g, (id) => `${id.family}${braces(id.labels)} ${promNumber(g.value)}\n`);
  }
  for (const h of store.allHistograms()) {
    if (!keep(h.name, h.count > 0)) continue;
    add(histograms, 'histogram', h, (id) => renderPromHistogram(id, h));
  }

  let out = '';
  for (const [families, type] of [
    [counters, 'counter'],
    [gauges, 'gauge'],
    [histograms, 'histogram'],
  ] as const) {
    for (const family of [...families.keys()].sort(compare)) {
      out += `# TYPE ${family} ${type}\n`;
      const series = families.get(family)!;
      series.sort(byFirst);
      for (const [, text] of series) out += text;
    }
  }
  return out;
}

function renderPromHistogram(id: PrometheusIdentity, h: Histogram): string {
  const sep = id.labels === '' ? '' : ',';
  let out = '';
  let cumulative = 0;
  for (let i = 0; i < HISTOGRAM_BUCKETS_MS.length; i++) {
    cumulative += h.counts[i]!;
    out += `${id.family}_bucket{${id.labels}${sep}le="${promNumber(HISTOGRAM_BUCKETS_MS[i]!)}"} ${promNumber(cumulative)}\n`;
  }
  out += `${id.family}_bucket{${id.labels}${sep}le="+Inf"} ${promNumber(h.count)}\n`;
  out += `${id.family}_sum${braces(id.labels)} ${promNumber(h.sum)}\n`;
  out += `${id.family}_count${braces(id.labels)} ${promNumber(h.count)}\n`;
  return out;
}

/** Replaces every character outside [a-zA-Z0-9_:] with '_' and keeps the name from starting with a digit. */
export function sanitizeName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[0-9]/.test(s) ? `_${s}` : s;
}

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`));
}

function label(name: string, value: string): string {
  return `${name}="${escapeLabelValue(value)}"`;
}

function braces(labels: string): string {
  return labels === '' ? '' : `{${labels}}`;
}

function promNumber(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

// ---------------------------------------------------------------- shared helpers

function selector(opts: StatsRenderOptions): (name: string, used: boolean) => boolean {
  const filter = opts.filter ? statelessRegExp(opts.filter) : undefined;
  const usedOnly = opts.usedOnly === true;
  return (name, used) => (!usedOnly || used) && (!filter || filter.test(name));
}

/** A global or sticky RegExp keeps state between test() calls; strip those flags. */
function statelessRegExp(re: RegExp): RegExp {
  return re.global || re.sticky ? new RegExp(re.source, re.flags.replace(/[gy]/g, '')) : re;
}

function sortedHistograms(store: StatsStore, keep: (name: string, used: boolean) => boolean): Histogram[] {
  const out: Histogram[] = [];
  for (const h of store.allHistograms()) if (keep(h.name, h.count > 0)) out.push(h);
  return out.sort((a, b) => compare(a.name, b.name));
}

function formatNumber(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
}

function formatQuantile(v: number | undefined): string {
  return v === undefined ? 'nan' : String(Number(v.toPrecision(6)));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function byFirst(a: readonly [string, unknown], b: readonly [string, unknown]): number {
  return compare(a[0], b[0]);
}

// Tests Envoy's /stats text and JSON renderings and the Prometheus exposition of a StatsStore.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StatsStore, scopes } from './stats.js';
import {
  escapeLabelValue,
  histogramQuantile,
  prometheusIdentity,
  renderPrometheus,
  renderStatsJson,
  renderStatsText,
  sanitizeName,
} from './stats_render.js';

function sampleStore(): StatsStore {
  const store = new StatsStore();
  store.counter('cluster.web.upstream_rq_total', scopes.cluster('web'), 'upstream_rq_total').inc(3);
  store.counter('cluster.api.upstream_rq_total', scopes.cluster('api'), 'upstream_rq_total').inc(1);
  store.counter('http.ingress.downstream_rq_2xx', scopes.http('ingress'), 'downstream_rq_2xx').inc(7);
  store.counter('http.ingress.downstream_rq_5xx', scopes.http('ingress'), 'downstream_rq_5xx');
  store.counter('cluster.web.upstream_rq_503', scopes.cluster('web'), 'upstream_rq_503').inc(2);
  store.gauge('server.live').set(1);
  store.gauge('cluster.web.upstream_cx_active', scopes.cluster('web'), 'upstream_cx_active').set(2);
  const h = store.histogram('cluster.web.upstream_rq_time', scopes.cluster('web'), 'upstream_rq_time');
  for (const v of [0.3, 3, 4, 20, 700]) h.record(v);
  store.histogram('http.ingress.downstream_rq_time', scopes.http('ingress'), 'downstream_rq_time');
  return store;
}

/** A line of the exposition format: a comment, or `name{labels} value`. */
const SAMPLE_LINE =
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/;

describe('renderStatsText', () => {
  it('prints counters and gauges sorted by name, then histograms', () => {
    const text = renderStatsText(sampleStore());
    const lines = text.trimEnd().split('\n');
    const scalarLines = lines.filter((l) => !l.includes('P50') && !l.includes('No recorded values'));
    const names = scalarLines.map((l) => l.split(': ')[0]!);
    assert.deepEqual(names, [...names].sort());
    assert.ok(lines.includes('cluster.web.upstream_rq_total: 3'));
    assert.ok(lines.includes('server.live: 1'));
    assert.ok(lines.includes('http.ingress.downstream_rq_5xx: 0'));
    assert.ok(lines.includes('http.ingress.downstream_rq_time: No recorded values'));
    const hist = lines.find((l) => l.startsWith('cluster.web.upstream_rq_time: '));
    assert.match(
      hist!,
      /^cluster\.web\.upstream_rq_time: P0\(([\d.]+),\1\) P25\([\d.]+,[\d.]+\) P50\([\d.]+,[\d.]+\) P75\(\S+\) P90\(\S+\) P95\(\S+\) P99\(\S+\) P99\.5\(\S+\) P99\.9\(\S+\) P100\(\S+\)$/,
    );
    // Histograms come after every counter and gauge.
    assert.ok(lines.indexOf(hist!) > lines.indexOf('server.live: 1'));
  });

  it('filters by regex and by use', () => {
    const store = sampleStore();
    assert.equal(renderStatsText(store, { filter: /^server\./ }), 'server.live: 1\n');
    const used = renderStatsText(store, { usedOnly: true });
    assert.ok(!used.includes('downstream_rq_5xx'));
    assert.ok(!used.includes('downstream_rq_time'));
    assert.ok(used.includes('cluster.web.upstream_rq_time: P0'));
    // A global regex must not skip matches through lastIndex.
    assert.equal(renderStatsText(store, { filter: /upstream_rq_total/g }).split('\n').length, 3);
  });
});

describe('renderStatsJson', () => {
  it('lists stats and histogram quantiles', () => {
    const json = renderStatsJson(sampleStore());
    assert.deepEqual(json.stats[0], { name: 'cluster.api.upstream_rq_total', value: 1 });
    const last = json.stats.at(-1) as {
      histograms: { supported_quantiles: number[]; computed_quantiles: unknown[] };
    };
    assert.deepEqual(last.histograms.supported_quantiles, [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100]);
    assert.equal(last.histograms.computed_quantiles.length, 2);
  });
});

describe('histogramQuantile', () => {
  it('interpolates inside buckets and stays within bounds', () => {
    const store = new StatsStore();
    const h = store.histogram('h');
    assert.equal(histogramQuantile(h, 0.5), undefined);
    for (let i = 0; i < 100; i++) h.record(7);
    const p50 = histogramQuantile(h, 0.5)!;
    assert.ok(p50 > 5 && p50 <= 10, String(p50));
    assert.equal(histogramQuantile(h, 1), 10);
    h.record(1e9);
    assert.equal(histogramQuantile(h, 1), 3600000);
  });
});

describe('renderPrometheus', () => {
  const out = renderPrometheus(sampleStore());
  const lines = out.trimEnd().split('\n');

  it('emits only comments and valid samples', () => {
    for (const line of lines) {
      if (line.startsWith('#'))
        assert.match(line, /^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$/);
      else assert.match(line, SAMPLE_LINE);
    }
    assert.ok(out.endsWith('\n'));
  });

  it('turns scope tags into labels, as Envoy names them', () => {
    assert.ok(lines.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="web"} 3'));
    assert.ok(lines.includes('envoy_cluster_upstream_rq_total{envoy_cluster_name="api"} 1'));
    assert.ok(lines.includes('envoy_server_live 1'));
    assert.ok(lines.includes('envoy_cluster_upstream_cx_active{envoy_cluster_name="web"} 2'));
  });

  it('extracts response code classes and codes', () => {
    assert.ok(
      lines.includes(
        'envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="ingress"} 7',
      ),
    );
    assert.ok(
      lines.includes(
        'envoy_http_downstream_rq_xx{envoy_response_code_class="5",envoy_http_conn_manager_prefix="ingress"} 0',
      ),
    );
    assert.ok(
      lines.includes('envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="web"} 2'),
    );
  });

  it('writes one TYPE line per family, before all of its series', () => {
    const typeLines = lines.filter((l) => l.startsWith('# TYPE '));
    const families = typeLines.map((l) => l.split(' ')[2]);
    assert.equal(new Set(families).size, families.length);
    let current = '';
    for (const line of lines) {
      if (line.startsWith('# TYPE ')) current = line.split(' ')[2]!;
      else assert.ok(line.startsWith(current), `${line} outside its family ${current}`);
    }
    assert.ok(typeLines.includes('# TYPE envoy_cluster_upstream_rq_total counter'));
    assert.ok(typeLines.includes('# TYPE envoy_server_live gauge'));
    assert.ok(typeLines.includes('# TYPE envoy_cluster_upstream_rq_time histogram'));
  });

  it('renders histograms with cumulative buckets, +Inf, sum and count', () => {
    const series = lines.filter((l) => l.startsWith('envoy_cluster_upstream_rq_time'));
    const buckets = series.filter((l) => l.includes('_bucket{'));
    const counts = buckets.map((l) => Number(l.split(' ')[1]));
    for (let i = 1; i < counts.length; i++) assert.ok(counts[i]! >= counts[i - 1]!);
    assert.ok(buckets.includes('envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web",le="0.5"} 1'));
    assert.ok(buckets.includes('envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web",le="5"} 3'));
    assert.equal(
      buckets.at(-1),
      'envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="web",le="+Inf"} 5',
    );
    assert.ok(series.includes('envoy_cluster_upstream_rq_time_sum{envoy_cluster_name="web"} 727.3'));
    assert.ok(series.includes('envoy_cluster_upstream_rq_time_count{envoy_cluster_name="web"} 5'));
  });

  it('sanitizes names and escapes label values', () => {
    const store = new StatsStore();
    store
      .counter('listener.[::]:80.downstream_cx_total', scopes.listener('[::]:80'), 'downstream_cx_total')
      .inc();
    store.counter('cluster.we"ird\\na\nme.x', scopes.cluster('we"ird\\na\nme'), 'x').inc();
    store.counter('odd-name.with/slash').inc();
    const text = renderPrometheus(store);
    for (const line of text.trimEnd().split('\n')) if (!line.startsWith('#')) assert.match(line, SAMPLE_LINE);
    assert.ok(text.includes('envoy_listener_downstream_cx_total{envoy_listener_address="[::]:80"} 1'));
    assert.ok(text.includes('envoy_cluster_x{envoy_cluster_name="we\\"ird\\\\na\\nme"} 1'));
    assert.ok(text.includes('envoy_odd_name_with_slash 1'));
    assert.equal(sanitizeName('9lives'), '_9lives');
    assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  });

  it('honours filter and usedOnly', () => {
    const text = renderPrometheus(sampleStore(), { usedOnly: true, filter: /^http\./ });
    assert.ok(!text.includes('envoy_cluster'));
    assert.ok(!text.includes('code_class="5"'));
    assert.ok(text.includes('code_class="2"'));
  });

  it('names untagged stats from their full name', () => {
    const store = new StatsStore();
    const c = store.counter('listener_manager.total_listeners_active');
    assert.deepEqual(prometheusIdentity(c), {
      family: 'envoy_listener_manager_total_listeners_active',
      labels: '',
    });
  });
});

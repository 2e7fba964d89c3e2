// Reduces rounds to medians, prints the comparison tables and writes the JSON record under bench/results/.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './load.js';
import type { Protocol } from './targets/target.js';

/** One load pattern run against every target. */
export interface Scenario {
  readonly id: string;
  readonly kind: 'http' | 'tcp-rr' | 'tcp-bulk' | 'h2' | 'grpc' | 'rate';
  /** The endpoint of a target the load goes to. */
  readonly protocol: Protocol;
  /** Connections (HTTP/2: client connections; gRPC: channels). */
  readonly connections: number;
  /** HTTP/2: concurrent streams per connection; gRPC: unary calls in flight over all channels. */
  readonly streams?: number;
  /** Fixed-rate load: requests/s offered, and its own measured window and warm-up (seconds) per measurement. */
  readonly rate?: { perSecond: number; durationS: number; warmupS: number };
  /** Unit of `LoadResult.rate` for this scenario. */
  readonly unit: 'req/s' | 'trips/s' | 'MB/s' | 'calls/s';
  readonly title: string;
}

/** One round's outcome for a (scenario, target) pair. */
export type RoundOutcome = LoadResult | { error: string };

/** Every round of a (scenario, target) pair plus the per-metric medians over successful rounds. */
export interface Cell {
  rounds: RoundOutcome[];
  median?: LoadResult;
}

/** How a target fared as a whole, and its memory. */
export interface TargetInfo {
  status: 'ok' | 'failed' | 'skipped';
  /** Every protocol the target may serve (`Target.protocols`). */
  protocols: Protocol[];
  reason?: string;
  /**
   * idle: 1 s after start; idleSettled: after --settle more idle seconds, before any load; load: peak during
   * measurements; after: right after the last; settled: after --settle idle seconds following the load.
   */
  rssKiB?: {
    idle?: number;
    idleSettled?: number;
    load?: number;
    loadHttp?: number;
    /** Peak during the h2c and gRPC measurements, which run after all HTTP/1.1 and TCP ones. */
    loadH2?: number;
    after?: number;
    settled?: number;
  };
}

/** The machine a run was measured on. */
export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  kernel: string;
  /** 1-minute load average before and after the run (the run itself keeps both cores busy). */
  loadAvg: { before: number; after?: number };
  /**
   * Share (%) of the last minute in which some runnable task waited for a CPU (/proc/pressure/cpu `some avg60`),
   * before and after the run: on a shared machine, what the latency of the mesh scenario depends on most.
   */
  cpuPressure?: { before: number; after?: number };
}

/** `some avg60` of /proc/pressure/cpu, or undefined where the kernel has no PSI. */
export function cpuPressure(): number | undefined {
  try {
    const m = /^some .*avg60=([\d.]+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'));
    return m === null ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  const pressure = cpuPressure();
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    node: process.version,
    kernel: release(),
    loadAvg: { before: loadavg()[0]! },
    ...(pressure === undefined ? {} : { cpuPressure: { before: pressure } }),
  };
}

/** Everything one run produced; this is also the JSON written to bench/results/. */
export interface BenchReport {
  startedAt: string;
  finishedAt?: string;
  machine: MachineInfo;
  config: {
    durationS: number;
    rounds: number;
    warmupS: number;
    settleS: number;
    loadTool: string;
    upstream: string;
    /** The TCP scenarios' echo server and round-trip client: `c` (children/tcp-tool.c) or `node`. */
    tcpTool?: string;
    /** h2c upstream of the HTTP/2 scenario (`direct`, `remora-h2up`), when it ran. */
    h2Upstream?: string;
    loadCpu: number | undefined;
    proxyCpu: number | undefined;
    pinned: boolean;
  };
  targets: Record<string, TargetInfo>;
  scenarios: Scenario[];
  /** Selected scenarios that could not run here (load tool missing), with the reason. */
  skipped?: Record<string, string>;
  results: Record<string, Record<string, Cell>>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Per-metric medians of the successful rounds (each metric on its own), or undefined if none succeeded. */
export function medianOf(rounds: readonly RoundOutcome[]): LoadResult | undefined {
  const ok = rounds.filter((r): r is LoadResult => !('error' in r));
  if (ok.length === 0) return undefined;
  const pick = (f: (r: LoadResult) => number | undefined): number | undefined => {
    const vs = ok.map(f).filter((v): v is number => v !== undefined);
    return vs.length === 0 ? undefined : median(vs);
  };
  const out: LoadResult = {
    rate: pick((r) => r.rate)!,
    count: pick((r) => r.count)!,
    errors: ok.reduce((sum, r) => sum + r.errors, 0),
  };
  const cpu = pick((r) => r.cpuUsPerOp);
  if (cpu !== undefined) out.cpuUsPerOp = cpu;
  const p50 = pick((r) => r.p50Us);
  const p90 = pick((r) => r.p90Us);
  const p99 = pick((r) => r.p99Us);
  const p999 = pick((r) => r.p999Us);
  const max = pick((r) => r.maxUs);
  if (p50 !== undefined) out.p50Us = p50;
  if (p90 !== undefined) out.p90Us = p90;
  if (p99 !== undefined) out.p99Us = p99;
  if (p999 !== undefined) out.p999Us = p999;
  if (max !== undefined) out.maxUs = max;
  const parts = ok[0]!.cpuUsPerOpEach?.length ?? 0;
  if (parts > 0 && ok.every((r) => r.cpuUsPerOpEach?.length === parts)) {
    out.cpuUsPerOpEach = Array.from({ length: parts }, (_, i) =>
      median(ok.map((r) => r.cpuUsPerOpEach![i]!)),
    );
  }
  if (ok.every((r) => r.fixedRate !== undefined)) {
    out.fixedRate = {
      sent: median(ok.map((r) => r.fixedRate!.sent)),
      queued: median(ok.map((r) => r.fixedRate!.queued)),
      dispatchLagP99Us: median(ok.map((r) => r.fixedRate!.dispatchLagP99Us)),
    };
  }
  return out;
}

/** Plain-text table; the first column and any in `left` are left-aligned, the rest right-aligned. */
function table(header: string[], rows: string[][], left: readonly number[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const fmtRate = (v: number, unit: Scenario['unit']): string =>
  unit === 'MB/s' ? v.toFixed(1) : Math.round(v).toString();
const fmtUs = (v: number | undefined): string => (v === undefined ? '-' : Math.round(v).toString());
const ratio = (a: LoadResult | undefined, b: LoadResult | undefined): string =>
  a === undefined || b === undefined || b.rate === 0 ? '-' : `${(a.rate / b.rate).toFixed(2)}x`;
const added = (a: LoadResult | undefined, base: LoadResult | undefined): string =>
  a?.p50Us === undefined || base?.p50Us === undefined ? '-' : `${Math.round(a.p50Us - base.p50Us)}`;

/** The plain Node proxy a scenario's rates are compared with: node-http-proxy, or node:http2 for HTTP/2. */
function nodePeerOf(s: Scenario): { name: string; header: string } {
  return s.protocol === 'h2' || s.protocol === 'grpc'
    ? { name: 'node-http2-proxy', header: 'vs node:http2' }
    : { name: 'node-http-proxy', header: 'vs node-http-proxy' };
}

const PROTOCOL_LABEL: Record<Protocol, string> = {
  http: 'HTTP/1.1',
  tcp: 'TCP',
  h2: 'h2c',
  grpc: 'gRPC',
  mesh: 'HTTP/1.1',
};

/**
 * Istio's published figure for the same path (client -> sidecar -> mTLS -> sidecar -> server against client ->
 * server, HTTP/1.1, 1000 req/s): the latency two Envoy sidecars add in Istio 1.24's default configuration.
 */
export const ISTIO_ANCHOR = { version: '1.24', addedP90Us: 228, addedP99Us: 298 } as const;

/** What the mesh table's rows stand for. */
const MESH_ROLE: Record<string, string> = {
  direct: 'client -> server',
  remora: 'one Remora, plaintext',
  'remora-mesh': 'two Remora sidecars, mTLS',
  'envoy-mesh': 'two Envoy sidecars, mTLS',
};

/** The fixed-rate table: latency percentiles, what each path adds over direct, per round too, and sidecar CPU. */
function renderRate(report: BenchReport, s: Scenario, names: string[]): string {
  const cells = report.results[s.id] ?? {};
  const direct = cells.direct;
  const plus = (m: LoadResult, base: LoadResult | undefined, f: (r: LoadResult) => number | undefined) => {
    const a = f(m);
    const b = base === undefined ? undefined : f(base);
    return a === undefined || b === undefined ? '-' : `${Math.round(a - b)}`;
  };
  /** The added p99 in each round against direct's p99 of the same round. */
  const byRound = (cell: Cell): string => {
    const out: string[] = [];
    cell.rounds.forEach((r, i) => {
      const d = direct?.rounds[i];
      if ('error' in r || d === undefined || 'error' in d || r.p99Us === undefined || d.p99Us === undefined)
        out.push('x');
      else out.push(`${Math.round(r.p99Us - d.p99Us)}`);
    });
    return out.join(' ');
  };
  const rows: string[][] = [];
  const dash = (n: number): string[] => Array.from({ length: n }, () => '-');
  for (const name of names) {
    const info = report.targets[name]!;
    if (!info.protocols.includes('mesh')) continue;
    const role = MESH_ROLE[name] ?? '';
    if (info.status !== 'ok') {
      rows.push([name, role, ...dash(11), `${info.status}: ${info.reason ?? ''}`]);
      continue;
    }
    const cell = cells[name];
    const m = cell?.median;
    if (cell === undefined || m === undefined) {
      rows.push([name, role, ...dash(11), `failed: ${failureOf(cell) ?? 'no rounds ran'}`]);
      continue;
    }
    const isDirect = name === 'direct';
    const partial = cell.rounds.filter((r) => 'error' in r).length;
    const notes = [
      m.errors > 0 && `${m.errors} errors`,
      partial > 0 && `${partial} failed rounds`,
      (m.fixedRate?.queued ?? 0) > 0 && `${m.fixedRate!.queued} queued`,
    ].filter((x) => x !== false);
    const cpu =
      m.cpuUsPerOp === undefined
        ? '-'
        : m.cpuUsPerOpEach === undefined
          ? m.cpuUsPerOp.toFixed(1)
          : `${m.cpuUsPerOp.toFixed(1)} (${m.cpuUsPerOpEach.map((c) => c.toFixed(1)).join(' + ')})`;
    rows.push([
      name,
      role,
      Math.round(m.rate).toString(),
      fmtUs(m.p50Us),
      fmtUs(m.p90Us),
      fmtUs(m.p99Us),
      fmtUs(m.p999Us),
      isDirect ? '-' : plus(m, direct?.median, (r) => r.p50Us),
      isDirect ? '-' : plus(m, direct?.median, (r) => r.p90Us),
      isDirect ? '-' : plus(m, direct?.median, (r) => r.p99Us),
      isDirect ? '-' : byRound(cell),
      cpu,
      m.cpuUsPerOp === undefined ? '-' : `${((m.cpuUsPerOp * m.rate) / 1e4).toFixed(1)}`,
      notes.join(', '),
    ]);
  }
  const a = ISTIO_ANCHOR;
  rows.push([
    `Istio ${a.version}`,
    'published: two Envoy sidecars, mTLS',
    '1000',
    ...dash(4),
    '-',
    `${a.addedP90Us}`,
    `${a.addedP99Us}`,
    ...dash(3),
    'not measured here',
  ]);
  const lag = Object.values(cells)
    .map((c) => c.median?.fixedRate?.dispatchLagP99Us)
    .filter((v): v is number => v !== undefined);
  return [
    '',
    `## ${s.title}`,
    table(
      [
        ' target',
        'path',
        'req/s',
        'p50 us',
        'p90 us',
        'p99 us',
        'p99.9 us',
        '+p50 us',
        '+p90 us',
        '+p99 us',
        '+p99 by round',
        'cpu us/req',
        'cpu %',
        'notes',
      ],
      rows,
      [1, 10, 11, 13],
    ),
    `${s.rate!.perSecond} req/s offered over ${s.connections} connections for ${s.rate!.durationS}s after ${s.rate!.warmupS}s on the same ` +
      "connections; latency from each request's dispatch to its last response byte (a request waiting for its " +
      'busy connection counts the wait); "+" columns: minus direct. cpu: both sidecars (client + server), % of one core.' +
      (lag.length > 0 ? ` Load generator's dispatch lag p99: ${Math.max(...lag)} us.` : ''),
  ].join('\n');
}

function failureOf(cell: Cell | undefined): string | undefined {
  if (cell === undefined || cell.median !== undefined) return undefined;
  const last = [...cell.rounds].reverse().find((r): r is { error: string } => 'error' in r);
  return last?.error ?? 'no rounds ran';
}

/** The human-readable tables: one per scenario, then memory. */
export function renderReport(report: BenchReport): string {
  const names = Object.keys(report.targets);
  const parts: string[] = [];
  const c = report.config;
  const on = c.pinned ? ` on core ${c.loadCpu}` : '';
  const has = (p: Protocol): boolean => report.scenarios.some((s) => s.protocol === p);
  const setup = [
    `proxies${c.pinned ? ` pinned to core ${c.proxyCpu}` : ' not pinned'}`,
    has('http') && `HTTP/1.1: ${c.loadTool}${on}, upstream ${c.upstream}${on}`,
    has('tcp') &&
      (c.tcpTool === 'c'
        ? `TCP: echo server and round-trip client in C (bench/children/tcp-tool.c), bulk client in node${on}`
        : `TCP: echo server and clients in node${on}`),
    has('h2') && `HTTP/2: h2load${on}, h2c upstream (direct, remora-h2up) ${c.h2Upstream ?? '-'}${on}`,
    has('grpc') && `gRPC: grpc-js load client and server${on}`,
    has('mesh') &&
      `mesh: fixed-rate client${on}, sidecars both${c.pinned ? ` on core ${c.proxyCpu}` : ' not pinned'}`,
  ].filter((x) => x !== false);
  parts.push(
    `Remora bench: ${c.rounds} rounds x ${c.durationS}s per target, alternating; medians shown.`,
    `${setup.join('; ')}.`,
    `machine: ${report.machine.cpus} x ${report.machine.cpuModel}, node ${report.machine.node}, linux ${report.machine.kernel}`,
  );
  // Only the figure taken before the run says something about other work; the run itself loads both cores.
  const before = report.machine.loadAvg.before;
  const psi = report.machine.cpuPressure;
  const psiText =
    psi === undefined
      ? ''
      : ` (CPU pressure: tasks waited for a CPU ${psi.before.toFixed(0)} % of the minute before the run` +
        `${psi.after === undefined ? '' : `, ${psi.after.toFixed(0)} % of the last minute of it`})`;
  if (before > 0.5) {
    parts.push(
      `warning: load average was ${before.toFixed(2)} before the run on ${report.machine.cpus} cores${psiText}; ` +
        'other processes compete for the cores, figures are noisy.',
    );
  }
  for (const [id, reason] of Object.entries(report.skipped ?? {}))
    parts.push(`scenario ${id} skipped: ${reason}`);
  for (const s of report.scenarios) {
    if (s.kind === 'rate') {
      parts.push(renderRate(report, s, names));
      continue;
    }
    const cells = report.results[s.id] ?? {};
    const nodePeer = nodePeerOf(s);
    const nhp = cells[nodePeer.name]?.median;
    const ngx = cells.nginx?.median;
    const direct = cells.direct?.median;
    const rows: string[][] = [];
    for (const name of names) {
      const info = report.targets[name]!;
      // HTTP/2 tables list every target, so the HTTP/1.1-only peers show as absent rather than vanish.
      const listed = info.protocols.includes(s.protocol) || s.protocol === 'h2' || s.protocol === 'grpc';
      if (!listed) continue;
      if (info.status !== 'ok') {
        rows.push([name, '-', '-', '-', '-', '-', '-', '-', `${info.status}: ${info.reason ?? ''}`]);
        continue;
      }
      const cell = cells[name];
      if (cell === undefined) {
        rows.push([name, '-', '-', '-', '-', '-', '-', '-', `no ${PROTOCOL_LABEL[s.protocol]} endpoint`]);
        continue;
      }
      const m = cell.median;
      const failure = failureOf(cell);
      if (m === undefined) {
        rows.push([name, '-', '-', '-', '-', '-', '-', '-', `failed: ${failure}`]);
        continue;
      }
      const partial = cell.rounds.length - cell.rounds.filter((r) => !('error' in r)).length;
      const errs = m.errors + partial;
      rows.push([
        name,
        fmtRate(m.rate, s.unit),
        fmtUs(m.p50Us),
        fmtUs(m.p99Us),
        name === nodePeer.name || nhp === undefined ? '-' : ratio(m, nhp),
        name === 'nginx' || ngx === undefined ? '-' : ratio(m, ngx),
        name === 'direct' ? '-' : added(m, direct),
        m.cpuUsPerOp === undefined ? '-' : m.cpuUsPerOp.toFixed(1),
        errs === 0 ? '' : `${m.errors} errors${partial ? `, ${partial} failed rounds` : ''}`,
      ]);
    }
    const plusHeader =
      s.kind === 'tcp-bulk'
        ? '+p50 vs direct'
        : s.streams === undefined
          ? `+p50 vs direct @${s.connections}c (us)`
          : '+p50 vs direct (us)';
    parts.push(
      '',
      `## ${s.title}`,
      table(
        [
          ' target',
          s.unit,
          'p50 us',
          'p99 us',
          nodePeer.header,
          'vs nginx',
          plusHeader,
          'cpu us/op',
          'notes',
        ],
        rows,
        [8],
      ),
    );
  }
  const memRows = names
    .filter((n) => report.targets[n]!.rssKiB !== undefined)
    .map((n) => {
      const r = report.targets[n]!.rssKiB!;
      const mb = (k: number | undefined): string => (k === undefined ? '-' : (k / 1024).toFixed(1));
      return [
        n,
        mb(r.idle),
        mb(r.idleSettled),
        mb(r.loadHttp),
        mb(r.loadH2),
        mb(r.load),
        mb(r.after),
        mb(r.settled),
      ];
    });
  if (memRows.length > 0) {
    parts.push(
      '',
      '## RSS (MiB, process tree, /proc/<pid>/status VmRSS)',
      table(
        [
          ' target',
          'idle, 1 s after start',
          'idle, settled',
          'peak, HTTP load',
          'peak, HTTP/2 load',
          'peak, any load',
          'after load',
          'after load, settled',
        ],
        memRows,
      ),
    );
  }
  parts.push(
    '',
    'ratios compare rates (higher = faster than the peer); "+p50 vs direct" is the latency the proxy adds.',
  );
  return parts.join('\n');
}

/** Writes the report to `<dir>/<timestamp>.json` and returns the path. */
export function writeReport(report: BenchReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const stamp = report.startedAt.replace(/[:.]/g, '-');
  const file = join(dir, `${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

// Percentiles, the table and the JSON record of `npm run bench:xds`.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './report.js';

/** One endpoint change: how long until each client ACKed the EDS update carrying it. */
export interface XdsRound {
  /** Clients that ACKed the new endpoint within the round's timeout, of `clients`. */
  converged: number;
  clients: number;
  /** From the file write to a client's ACK, in ms, over the converged clients. */
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  minMs: number | undefined;
  /** Mean of the control plane's own `remora_xds_convergence_seconds` over the round (cache change to ACK), ms. */
  serverConvergenceMeanMs: number | undefined;
  /** EDS responses the control plane sent during the round. */
  edsPushes: number | undefined;
  /** Control-plane CPU (user + system) from the write until the last ACK, seconds. */
  cpuS: number | undefined;
  /** Control-plane RSS peak during the round, KiB. */
  peakRssKiB: number | undefined;
  errors?: string[];
}

export interface XdsRun {
  clients: number;
  workers: number;
  /** Node groups (distinct configurations) among the connected proxies, from /debug/syncz. */
  groups: number | undefined;
  /** From opening the streams until every client had everything it subscribed to. */
  sync: { ms: number | undefined; synced: number; cpuS: number | undefined; errors?: string[] };
  rounds: XdsRound[];
  /** Medians over the rounds. */
  median: { p50Ms?: number; p99Ms?: number; maxMs?: number; cpuS?: number; serverConvergenceMeanMs?: number };
  /** idle: started, no client; connected: 1 s after every client synced; peak: whole run; settled: after --settle. */
  rssKiB: { idle?: number; connected?: number; peak?: number; after?: number; settled?: number };
  status: 'ok' | 'failed';
  reason?: string;
}

export interface XdsReport {
  startedAt: string;
  finishedAt?: string;
  machine: MachineInfo;
  config: {
    rounds: number;
    namespaces: number;
    services: number;
    podsPerService: number;
    filesDebounceMs: number;
    adsDebounceMs: number;
    timeoutS: number;
    settleS: number;
    pinned: boolean;
  };
  runs: XdsRun[];
}

/** The nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function median(values: readonly (number | undefined)[]): number | undefined {
  const v = values.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid] : (v[mid - 1]! + v[mid]!) / 2;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const ms = (v: number | undefined): string => (v === undefined ? '-' : Math.round(v).toString());
const mb = (kib: number | undefined): string => (kib === undefined ? '-' : (kib / 1024).toFixed(0));
const sec = (v: number | undefined): string => (v === undefined ? '-' : v.toFixed(2));

export function renderXdsReport(r: XdsReport): string {
  const c = r.config;
  const floor = c.filesDebounceMs + c.adsDebounceMs;
  const out: string[] = [
    `xDS convergence: ${c.services} services in ${c.namespaces} namespaces, ${c.podsPerService} endpoints each; ` +
      `${c.rounds} rounds of "add one endpoint to ns-0/svc-0" (in every proxy's scope)`,
    `${r.machine.cpus} CPUs (${r.machine.cpuModel}), Node ${r.machine.node}, load average ${r.machine.loadAvg.before.toFixed(2)} before` +
      (c.pinned ? '; control plane pinned to its own core' : ''),
    '',
  ];
  const rows: string[][] = [];
  for (const run of r.runs) {
    if (run.status === 'failed') {
      rows.push([`${run.clients}`, `failed: ${run.reason ?? '?'}`]);
      continue;
    }
    run.rounds.forEach((x, i) => {
      rows.push([
        i === 0 ? `${run.clients}` : '',
        `${i + 1}`,
        `${x.converged}/${x.clients}`,
        ms(x.p50Ms),
        ms(x.p99Ms),
        ms(x.maxMs),
        ms(x.p99Ms === undefined ? undefined : x.p99Ms - floor),
        ms(x.serverConvergenceMeanMs),
        sec(x.cpuS),
        mb(x.peakRssKiB),
      ]);
    });
    const m = run.median;
    rows.push([
      '',
      'median',
      '',
      ms(m.p50Ms),
      ms(m.p99Ms),
      ms(m.maxMs),
      ms(m.p99Ms === undefined ? undefined : m.p99Ms - floor),
      ms(m.serverConvergenceMeanMs),
      sec(m.cpuS),
      '',
    ]);
  }
  out.push(
    table(
      [
        'clients',
        'round',
        'converged',
        'p50 ms',
        'p99 ms',
        'max ms',
        'p99-debounce',
        'cp mean ms',
        'cp cpu s',
        'cp rss MB',
      ],
      rows,
    ),
  );
  out.push('');
  const mem: string[][] = r.runs
    .filter((run) => run.status === 'ok')
    .map((run) => [
      `${run.clients}`,
      `${run.workers}`,
      `${run.groups ?? '-'}`,
      ms(run.sync.ms),
      sec(run.sync.cpuS),
      mb(run.rssKiB.idle),
      mb(run.rssKiB.connected),
      mb(run.rssKiB.peak),
      mb(run.rssKiB.after),
      mb(run.rssKiB.settled),
    ]);
  out.push(
    table(
      [
        'clients',
        'workers',
        'groups',
        'sync ms',
        'sync cpu s',
        'rss idle MB',
        'connected',
        'peak',
        'after',
        'settled',
      ],
      mem,
    ),
  );
  out.push(
    '',
    `Times run from the file write to each client's ACK. ${floor} ms of each is debounce: the files source waits ` +
      `${c.filesDebounceMs} ms of quiet before re-reading, the ADS server ${c.adsDebounceMs} ms before pushing ` +
      '(p99-debounce subtracts both). "cp mean ms" is the control plane\'s own convergence histogram (from its ' +
      'snapshot change to the ACK, so the ADS debounce but not the file one), averaged over the round.',
  );
  return out.join('\n');
}

export function writeXdsReport(report: XdsReport, dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `xds-${report.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

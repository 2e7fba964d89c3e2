// Entry point of `npm run bench:xds`: one real control plane, N simulated ADS clients, endpoint changes timed
// from the file write to every client's ACK; the control plane's RSS and CPU beside.

import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { WorkerCommand, WorkerReport } from './children/xds-clients.js';
import {
  benchDistDir,
  canPin,
  cpuTreeUs,
  freePort,
  installCleanup,
  pinProcess,
  repoRoot,
  rssTreeKiB,
  sampleRss,
  spawnManaged,
  stopAll,
  waitReady,
} from './proc.js';
import { machineInfo } from './report.js';
import { clock } from './xds-client.js';
import { addEndpoint, addedEndpoint, type MeshShape, writeMesh } from './xds-mesh.js';
import {
  median,
  percentile,
  renderXdsReport,
  writeXdsReport,
  type XdsReport,
  type XdsRound,
  type XdsRun,
} from './xds-report.js';

/** The defaults of the files source and of the ADS server (src/controlplane): what each change waits for. */
const FILES_DEBOUNCE_MS = 100;
const ADS_DEBOUNCE_MS = 100;

const USAGE = `usage: npm run bench:xds -- [options]
  --clients <n,m>     simulated proxies per run, one run each      BENCH_XDS_CLIENTS (100,1000)
  --rounds <n>        endpoint changes per run                     BENCH_XDS_ROUNDS (5)
  --services <n>      services in the mesh                         BENCH_XDS_SERVICES (50)
  --namespaces <n>    namespaces they are spread over              BENCH_XDS_NAMESPACES (5)
  --workers <n>       client processes (0: one per 500 clients)    BENCH_XDS_WORKERS (0)
  --timeout <s>       how long a round waits for every ACK         BENCH_XDS_TIMEOUT (30)
  --gap <s>           idle time between rounds                     BENCH_XDS_GAP (2)
  --settle <s>        idle time before the settled RSS             BENCH_XDS_SETTLE (15; 0 = skip)
  --cpu-prof <dir>    run the control plane with --cpu-prof, profiles in <dir>
  --no-pin            do not pin (default: control plane on core 1, clients on core 0)`;

interface Options {
  clients: number[];
  rounds: number;
  services: number;
  namespaces: number;
  workers: number;
  timeoutS: number;
  gapS: number;
  settleS: number;
  cpuProf: string | undefined;
  pinned: boolean;
}

function parseOptions(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      clients: { type: 'string' },
      rounds: { type: 'string' },
      services: { type: 'string' },
      namespaces: { type: 'string' },
      workers: { type: 'string' },
      timeout: { type: 'string' },
      gap: { type: 'string' },
      settle: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'no-pin': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const env = process.env;
  const num = (flag: string, v: string | undefined, envName: string, dflt: string, min: number): number => {
    const n = Number(v ?? env[envName] ?? dflt);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag}: expected a number >= ${min}, got ${v}`);
    return n;
  };
  const clients = (values.clients ?? env.BENCH_XDS_CLIENTS ?? '100,1000').split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--clients: expected counts, got ${JSON.stringify(s)}`);
    return n;
  });
  return {
    clients,
    rounds: num('rounds', values.rounds, 'BENCH_XDS_ROUNDS', '5', 1),
    services: num('services', values.services, 'BENCH_XDS_SERVICES', '50', 1),
    namespaces: num('namespaces', values.namespaces, 'BENCH_XDS_NAMESPACES', '5', 1),
    workers: num('workers', values.workers, 'BENCH_XDS_WORKERS', '0', 0),
    timeoutS: num('timeout', values.timeout, 'BENCH_XDS_TIMEOUT', '30', 1),
    gapS: num('gap', values.gap, 'BENCH_XDS_GAP', '2', 0),
    settleS: num('settle', values.settle, 'BENCH_XDS_SETTLE', '15', 0),
    cpuProf: values['cpu-prof'],
    pinned: !values['no-pin'] && canPin && cpus().length >= 2,
  };
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LOAD_CPU = 0;
const CP_CPU = 1;

/** A client process and the reports it sends, taken in order. */
class Worker {
  private readonly queue: WorkerReport[] = [];
  private waiter: ((r: WorkerReport) => void) | undefined;
  private exited: string | undefined;

  constructor(
    readonly child: ChildProcess,
    readonly from: number,
    readonly count: number,
  ) {
    child.on('message', (m: WorkerReport) => {
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(m);
      else this.queue.push(m);
    });
    child.on('exit', (code, signal) => {
      this.exited = `client process exited (${signal ?? `code ${code}`})`;
    });
  }

  send(m: WorkerCommand): void {
    this.child.send(m);
  }

  /** The next report of kind `op`; rejects when the process dies or none comes in `timeoutMs`. */
  async next<K extends WorkerReport['op']>(
    op: K,
    timeoutMs: number,
  ): Promise<Extract<WorkerReport, { op: K }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const queued = this.queue.shift();
      const r =
        queued ??
        (await new Promise<WorkerReport | undefined>((resolve) => {
          if (this.exited !== undefined) return resolve(undefined);
          const timer = setTimeout(
            () => {
              this.waiter = undefined;
              resolve(undefined);
            },
            Math.max(0, deadline - Date.now()),
          );
          this.waiter = (m) => {
            clearTimeout(timer);
            resolve(m);
          };
        }));
      if (r === undefined)
        throw new Error(this.exited ?? `no "${op}" from a client process in ${timeoutMs} ms`);
      if (r.op === op) return r as Extract<WorkerReport, { op: K }>;
    }
  }

  stop(): void {
    if (this.exited === undefined && this.child.connected) this.send({ op: 'stop' });
    setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
  }
}

/** Sums of the control plane's counters and histograms this harness reads, from /metrics. */
async function scrape(debugPort: number): Promise<{ convSum: number; convCount: number; eds: number }> {
  const text = await (await fetch(`http://127.0.0.1:${debugPort}/metrics`)).text();
  const val = (re: RegExp): number => Number(re.exec(text)?.[1] ?? 0);
  return {
    convSum: val(/^remora_xds_convergence_seconds_sum (\S+)$/m),
    convCount: val(/^remora_xds_convergence_seconds_count (\S+)$/m),
    eds: val(/^remora_xds_pushes_total\{type="EDS"\} (\S+)$/m),
  };
}

async function groupCount(debugPort: number): Promise<number | undefined> {
  try {
    const proxies = (await (await fetch(`http://127.0.0.1:${debugPort}/debug/syncz`)).json()) as {
      nodeKey: string;
    }[];
    return new Set(proxies.map((p) => p.nodeKey)).size;
  } catch {
    return undefined;
  }
}

const errorsOf = (reports: { errors: string[] }[]): string[] => [
  ...new Set(reports.flatMap((r) => r.errors)),
];

async function runOne(opts: Options, shape: MeshShape, clients: number, root: string): Promise<XdsRun> {
  const run: XdsRun = {
    clients,
    workers: opts.workers > 0 ? opts.workers : Math.max(1, Math.ceil(clients / 500)),
    groups: undefined,
    sync: { ms: undefined, synced: 0, cpuS: undefined },
    rounds: [],
    median: {},
    rssKiB: {},
    status: 'ok',
  };
  const dir = join(root, `mesh-${clients}`);
  writeMesh(dir, shape);
  const [xdsPort, debugPort] = [await freePort(), await freePort()];
  const nodeArgs = opts.cpuProf === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf];
  const cp = spawnManaged(
    'control-plane',
    process.execPath,
    [
      ...nodeArgs,
      join(repoRoot, 'bin', 'remora'),
      'control-plane',
      '--config-dir',
      dir,
      '--xds-port',
      String(xdsPort),
      '--debug-port',
      String(debugPort),
    ],
    opts.pinned ? CP_CPU : undefined,
  );
  const workers: Worker[] = [];
  let stopPeak: (() => number | undefined) | undefined;
  try {
    await waitReady(cp, { ports: [xdsPort], url: `http://127.0.0.1:${debugPort}/metrics` }, 30_000);
    run.rssKiB.idle = rssTreeKiB(cp.pid);
    stopPeak = sampleRss(cp.pid, 100);

    const per = Math.ceil(clients / run.workers);
    for (let from = 0; from < clients; from += per) {
      const child = fork(join(benchDistDir, 'children', 'xds-clients.js'), [], { stdio: 'inherit' });
      if (opts.pinned && child.pid !== undefined) pinProcess(child.pid, LOAD_CPU);
      workers.push(new Worker(child, from, Math.min(per, clients - from)));
    }
    await Promise.all(workers.map((w) => w.next('ready', 30_000)));
    const cpu0 = cpuTreeUs(cp.pid);
    const t0 = clock();
    const timeoutMs = opts.timeoutS * 1000;
    for (const w of workers)
      w.send({ op: 'start', port: xdsPort, from: w.from, count: w.count, shape, timeoutMs: timeoutMs * 4 });
    const synced = await Promise.all(workers.map((w) => w.next('synced', timeoutMs * 4 + 10_000)));
    const syncAt = synced.flatMap((s) => s.at).filter((t): t is number => t !== null);
    const cpu1 = cpuTreeUs(cp.pid);
    run.sync = {
      ms: syncAt.length === 0 ? undefined : Math.max(...syncAt) - t0,
      synced: syncAt.length,
      cpuS: cpu0 === undefined || cpu1 === undefined ? undefined : (cpu1 - cpu0) / 1e6,
      ...(errorsOf(synced).length > 0 ? { errors: errorsOf(synced) } : {}),
    };
    log(
      `bench:xds: ${clients} clients: ${syncAt.length} synced in ${Math.round(run.sync.ms ?? 0)} ms ` +
        `(control plane ${run.sync.cpuS?.toFixed(2)} s CPU)`,
    );
    if (syncAt.length < clients) throw new Error(`only ${syncAt.length} of ${clients} clients synced`);
    run.groups = await groupCount(debugPort);
    await sleep(1000);
    run.rssKiB.connected = rssTreeKiB(cp.pid);

    for (let round = 0; round < opts.rounds; round++) {
      const address = addedEndpoint(round);
      for (const w of workers) w.send({ op: 'watch', address, timeoutMs });
      await Promise.all(workers.map((w) => w.next('watching', 10_000)));
      const before = await scrape(debugPort);
      const stopRound = sampleRss(cp.pid, 50);
      const c0 = cpuTreeUs(cp.pid);
      const start = clock();
      addEndpoint(dir, shape, round);
      const reports = await Promise.all(workers.map((w) => w.next('converged', timeoutMs + 10_000)));
      const c1 = cpuTreeUs(cp.pid);
      const peak = stopRound();
      const after = await scrape(debugPort);
      const lat = reports
        .flatMap((r) => r.at)
        .filter((t): t is number => t !== null)
        .map((t) => t - start)
        .sort((a, b) => a - b);
      const dCount = after.convCount - before.convCount;
      const r: XdsRound = {
        converged: lat.length,
        clients,
        p50Ms: percentile(lat, 50),
        p99Ms: percentile(lat, 99),
        maxMs: lat.at(-1),
        minMs: lat[0],
        serverConvergenceMeanMs: dCount > 0 ? ((after.convSum - before.convSum) / dCount) * 1000 : undefined,
        edsPushes: after.eds - before.eds,
        cpuS: c0 === undefined || c1 === undefined ? undefined : (c1 - c0) / 1e6,
        peakRssKiB: peak,
        ...(errorsOf(reports).length > 0 ? { errors: errorsOf(reports) } : {}),
      };
      run.rounds.push(r);
      log(
        `[${round + 1}/${opts.rounds}] ${clients} clients: ${r.converged} converged, p50 ${Math.round(r.p50Ms ?? 0)} ms ` +
          `p99 ${Math.round(r.p99Ms ?? 0)} ms max ${Math.round(r.maxMs ?? 0)} ms, ${r.edsPushes} EDS pushes, ` +
          `control plane ${r.cpuS?.toFixed(2)} s CPU, ${Math.round((peak ?? 0) / 1024)} MB peak`,
      );
      if (opts.gapS > 0) await sleep(opts.gapS * 1000);
    }
    run.median = {
      p50Ms: median(run.rounds.map((r) => r.p50Ms)),
      p99Ms: median(run.rounds.map((r) => r.p99Ms)),
      maxMs: median(run.rounds.map((r) => r.maxMs)),
      cpuS: median(run.rounds.map((r) => r.cpuS)),
      serverConvergenceMeanMs: median(run.rounds.map((r) => r.serverConvergenceMeanMs)),
    };
    run.rssKiB.after = rssTreeKiB(cp.pid);
    if (opts.settleS > 0) {
      log(`bench:xds: idle ${opts.settleS}s before reading settled RSS`);
      await sleep(opts.settleS * 1000);
      run.rssKiB.settled = rssTreeKiB(cp.pid);
    }
  } catch (err) {
    run.status = 'failed';
    run.reason = (err as Error).message;
    log(`bench:xds: ${clients} clients: failed: ${run.reason}`);
  } finally {
    run.rssKiB.peak = stopPeak?.();
    for (const w of workers) w.stop();
    await cp.stop(10_000);
  }
  return run;
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2));
  if (opts === undefined) return 0;
  installCleanup();
  if (opts.pinned) pinProcess(process.pid, LOAD_CPU);
  const shape: MeshShape = {
    namespaces: opts.namespaces,
    services: opts.services,
    // Every simulated proxy is one listed endpoint: the largest run decides how many pods each service has.
    podsPerService: Math.ceil(Math.max(...opts.clients) / opts.services),
  };
  const root = mkdtempSync(join(tmpdir(), 'remora-bench-xds-'));
  process.on('exit', () => rmSync(root, { recursive: true, force: true }));
  const report: XdsReport = {
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    config: {
      rounds: opts.rounds,
      namespaces: shape.namespaces,
      services: shape.services,
      podsPerService: shape.podsPerService,
      filesDebounceMs: FILES_DEBOUNCE_MS,
      adsDebounceMs: ADS_DEBOUNCE_MS,
      timeoutS: opts.timeoutS,
      settleS: opts.settleS,
      pinned: opts.pinned,
    },
    runs: [],
  };
  try {
    for (const n of opts.clients) report.runs.push(await runOne(opts, shape, n, root));
  } finally {
    await stopAll();
  }
  report.finishedAt = new Date().toISOString();
  report.machine.loadAvg.after = loadavg()[0]!;
  process.stdout.write(`\n${renderXdsReport(report)}\n`);
  const file = writeXdsReport(report, join(repoRoot, 'bench', 'results'));
  process.stdout.write(`\nwrote ${file}\n`);
  return report.runs.every((r) => r.status === 'ok') ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench:xds: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);

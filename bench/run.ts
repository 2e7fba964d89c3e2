// Entry point of `npm run bench`: starts backends and targets, runs alternating rounds, prints and records medians.

import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chooseTool, httpLoad, type LoadResult, type LoadTool } from './load.js';
import {
  canPin,
  cpuTreeUs,
  installCleanup,
  pinProcess,
  repoRoot,
  rssTreeKiB,
  sampleRss,
  stopAll,
} from './proc.js';
import {
  type BenchReport,
  medianOf,
  renderReport,
  type Scenario,
  type TargetInfo,
  writeReport,
} from './report.js';
import { direct } from './targets/direct.js';
import { haproxy } from './targets/haproxy.js';
import { nginx } from './targets/nginx.js';
import { nodeHttpProxy } from './targets/node-http-proxy.js';
import { remora } from './targets/remora.js';
import type { BenchEnv, RunningTarget, Target } from './targets/target.js';
import { tcpBulkLoad, tcpEchoLoad } from './tcp-load.js';
import { chooseUpstream, startBackends } from './upstream.js';

/** Every target the harness knows, in table order. */
const ALL_TARGETS: readonly Target[] = [direct, remora, nodeHttpProxy, nginx, haproxy];

const USAGE = `usage: npm run bench -- [options]   (every option also reads an env var)
  --duration <s>          seconds per measurement            BENCH_DURATION (5)
  --rounds <n>            alternating rounds, median reported BENCH_ROUNDS (3)
  --warmup <s>            warm-up per target before round 1  BENCH_WARMUP (2)
  --settle <s>            idle wait before the settled RSS   BENCH_SETTLE (20; 0 = skip)
  --targets <a,b>         subset of ${ALL_TARGETS.map((t) => t.name).join(',')}   BENCH_TARGETS (all)
  --connections <n,m>     HTTP keep-alive connection counts  BENCH_CONNECTIONS (50,1)
  --tcp-connections <n,m> TCP echo connection counts         BENCH_TCP_CONNECTIONS (50,1)
  --no-bulk               skip the TCP bulk throughput test  BENCH_BULK=0
  --tool <wrk|autocannon> HTTP load generator                BENCH_TOOL (wrk if installed)
  --upstream <nginx|node> HTTP upstream implementation       BENCH_UPSTREAM (nginx if installed)
  --load-cpu <n>          core for load generator + backends BENCH_LOAD_CPU (0)
  --proxy-cpu <n>         core for the proxy under test      BENCH_PROXY_CPU (1)
  --no-pin                do not pin with taskset            BENCH_NO_PIN=1`;

interface Config {
  durationS: number;
  rounds: number;
  warmupS: number;
  /** Idle seconds after the last round before RSS is read again (V8 shrinks an idle heap after ~10 s). */
  settleS: number;
  targets: readonly Target[];
  httpConnections: number[];
  tcpConnections: number[];
  bulk: boolean;
  tool: LoadTool;
  upstream: string | undefined;
  pinned: boolean;
  loadCpu: number | undefined;
  proxyCpu: number | undefined;
}

function positive(name: string, raw: string, allowZero = false): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || (!allowZero && v === 0))
    throw new Error(`${name}: not a valid number: ${raw}`);
  return v;
}

function list(name: string, raw: string): number[] {
  return raw
    .split(',')
    .filter((s) => s.trim() !== '')
    .map((s) => Math.round(positive(name, s.trim())));
}

function parseConfig(argv: string[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      settle: { type: 'string' },
      targets: { type: 'string' },
      connections: { type: 'string' },
      'tcp-connections': { type: 'string' },
      'no-bulk': { type: 'boolean' },
      tool: { type: 'string' },
      upstream: { type: 'string' },
      'load-cpu': { type: 'string' },
      'proxy-cpu': { type: 'string' },
      'no-pin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return undefined;
  }
  const env = process.env;
  const opt = (flag: string | undefined, key: string, fallback: string): string =>
    flag ?? env[key] ?? fallback;
  const wanted = opt(values.targets, 'BENCH_TARGETS', '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const w of wanted) {
    if (!ALL_TARGETS.some((t) => t.name === w)) throw new Error(`unknown target ${w}`);
  }
  const pinRequested = !(values['no-pin'] || env.BENCH_NO_PIN === '1');
  const pinned = pinRequested && canPin && cpus().length >= 2;
  return {
    durationS: positive('duration', opt(values.duration, 'BENCH_DURATION', '5')),
    rounds: Math.round(positive('rounds', opt(values.rounds, 'BENCH_ROUNDS', '3'))),
    warmupS: positive('warmup', opt(values.warmup, 'BENCH_WARMUP', '2'), true),
    settleS: positive('settle', opt(values.settle, 'BENCH_SETTLE', '20'), true),
    targets: wanted.length === 0 ? ALL_TARGETS : ALL_TARGETS.filter((t) => wanted.includes(t.name)),
    httpConnections: list('connections', opt(values.connections, 'BENCH_CONNECTIONS', '50,1')),
    tcpConnections: list('tcp-connections', opt(values['tcp-connections'], 'BENCH_TCP_CONNECTIONS', '50,1')),
    bulk: !(values['no-bulk'] || env.BENCH_BULK === '0'),
    tool: chooseTool(values.tool ?? env.BENCH_TOOL),
    upstream: values.upstream ?? env.BENCH_UPSTREAM,
    pinned,
    loadCpu: pinned
      ? Math.round(positive('load-cpu', opt(values['load-cpu'], 'BENCH_LOAD_CPU', '0'), true))
      : undefined,
    proxyCpu: pinned
      ? Math.round(positive('proxy-cpu', opt(values['proxy-cpu'], 'BENCH_PROXY_CPU', '1'), true))
      : undefined,
  };
}

function scenariosOf(cfg: Config): Scenario[] {
  const out: Scenario[] = [];
  for (const c of cfg.httpConnections) {
    out.push({
      id: `http-c${c}`,
      kind: 'http',
      connections: c,
      unit: 'req/s',
      title: `HTTP/1.1 keep-alive GET, ${c} connection${c === 1 ? '' : 's'}`,
    });
  }
  for (const c of cfg.tcpConnections) {
    out.push({
      id: `tcp-rr-c${c}`,
      kind: 'tcp-rr',
      connections: c,
      unit: 'trips/s',
      title: `TCP echo, 64-byte request/response, ${c} connection${c === 1 ? '' : 's'}`,
    });
  }
  if (cfg.bulk) {
    out.push({
      id: 'tcp-bulk',
      kind: 'tcp-bulk',
      connections: 1,
      unit: 'MB/s',
      title: 'TCP echo bulk throughput, 1 connection',
    });
  }
  return out;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

function describe(r: LoadResult, unit: string): string {
  const rate = unit === 'MB/s' ? r.rate.toFixed(1) : Math.round(r.rate).toString();
  const lat = r.p50Us === undefined ? '' : ` p50 ${r.p50Us}us p99 ${r.p99Us}us`;
  return `${rate} ${unit}${lat}${r.errors ? ` (${r.errors} errors)` : ''}`;
}

async function measure(
  s: Scenario,
  t: RunningTarget,
  cfg: Config,
  tmpDir: string,
  durationS: number,
): Promise<LoadResult | undefined> {
  const { httpPort, tcpPort } = t.endpoints;
  switch (s.kind) {
    case 'http':
      if (httpPort === undefined) return undefined;
      return httpLoad(cfg.tool, {
        url: `http://127.0.0.1:${httpPort}/`,
        connections: s.connections,
        durationS,
        cpu: cfg.loadCpu,
        tmpDir,
      });
    case 'tcp-rr':
      if (tcpPort === undefined) return undefined;
      return tcpEchoLoad({ port: tcpPort, connections: s.connections, durationS });
    case 'tcp-bulk':
      if (tcpPort === undefined) return undefined;
      return tcpBulkLoad({ port: tcpPort, durationS });
  }
}

function supports(s: Scenario, t: RunningTarget): boolean {
  return s.kind === 'http' ? t.endpoints.httpPort !== undefined : t.endpoints.tcpPort !== undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const cfg = parseConfig(process.argv.slice(2));
  if (cfg === undefined) return 0;
  installCleanup();
  if (cfg.pinned) pinProcess(process.pid, cfg.loadCpu);

  const tmpDir = mkdtempSync(join(tmpdir(), 'remora-bench-'));
  // Also runs when SIGINT/SIGTERM end the run early.
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const scenarios = scenariosOf(cfg);
  const upstreamKind = chooseUpstream(cfg.upstream);
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      node: process.version,
      kernel: release(),
      loadAvg: { before: loadavg()[0]! },
    },
    config: {
      durationS: cfg.durationS,
      rounds: cfg.rounds,
      warmupS: cfg.warmupS,
      settleS: cfg.settleS,
      loadTool: cfg.tool,
      upstream: upstreamKind,
      loadCpu: cfg.loadCpu,
      proxyCpu: cfg.proxyCpu,
      pinned: cfg.pinned,
    },
    targets: {},
    scenarios,
    results: Object.fromEntries(scenarios.map((s) => [s.id, {}])),
  };

  log(
    `bench: upstream ${upstreamKind}, load ${cfg.tool}, ${cfg.pinned ? `pinned (load ${cfg.loadCpu}, proxy ${cfg.proxyCpu})` : 'not pinned'}`,
  );
  const backends = await startBackends(upstreamKind, tmpDir, cfg.loadCpu);
  const env: BenchEnv = {
    tmpDir,
    proxyCpu: cfg.proxyCpu,
    upstreamPort: backends.upstreamPort,
    echoPort: backends.echoPort,
  };

  const running = new Map<string, RunningTarget>();
  try {
    for (const t of cfg.targets) {
      const info: TargetInfo = { status: 'ok' };
      report.targets[t.name] = info;
      const missing = t.unavailable();
      if (missing !== undefined) {
        Object.assign(info, { status: 'skipped', reason: missing });
        log(`bench: ${t.name} skipped: ${missing}`);
        continue;
      }
      try {
        running.set(t.name, await t.start(env));
        log(`bench: ${t.name} started`);
      } catch (err) {
        Object.assign(info, { status: 'failed', reason: (err as Error).message });
        log(`bench: ${t.name} failed: ${(err as Error).message}`);
      }
    }

    await sleep(1000);
    for (const [name, t] of running) {
      if (t.pid !== undefined) report.targets[name]!.rssKiB = { idle: rssTreeKiB(t.pid) };
    }

    const markDead = (name: string, reason: string): void => {
      const t = running.get(name);
      const tail = t?.output?.().trimEnd().split('\n').slice(-10);
      if (tail !== undefined) log(`bench: last output of ${name}:\n  ${tail.join('\n  ')}`);
      void t?.stop();
      running.delete(name);
      Object.assign(report.targets[name]!, { status: 'failed', reason });
      log(`bench: ${name} failed: ${reason}`);
    };

    if (cfg.warmupS > 0) {
      for (const [name, t] of running) {
        // One run of the first HTTP and the first TCP round-trip scenario gets JITs and pools going.
        for (const s of [
          scenarios.find((x) => x.kind === 'http'),
          scenarios.find((x) => x.kind === 'tcp-rr'),
        ]) {
          if (s === undefined || !supports(s, t)) continue;
          try {
            await measure(s, t, cfg, tmpDir, cfg.warmupS);
          } catch {
            // warm-up failures show up again in the measured rounds
          }
        }
        const dead = t.health();
        if (dead !== undefined) markDead(name, dead);
      }
    }

    const names = cfg.targets.map((t) => t.name);
    for (let round = 0; round < cfg.rounds; round++) {
      for (const s of scenarios) {
        // Rotate the order each round so no target always runs first or last.
        const order = names.map((_, i) => names[(i + round) % names.length]!);
        for (const name of order) {
          const t = running.get(name);
          if (t === undefined || !supports(s, t)) continue;
          const cells = report.results[s.id]!;
          cells[name] ??= { rounds: [] };
          const cell = cells[name];
          const backendDead = backends.health();
          if (backendDead !== undefined) throw new Error(`backend died: ${backendDead}`);
          const dead = t.health();
          if (dead !== undefined) {
            markDead(name, dead);
            continue;
          }
          const stopSampling = t.pid !== undefined ? sampleRss(t.pid) : undefined;
          try {
            const cpu0 = t.pid !== undefined && s.kind !== 'tcp-bulk' ? cpuTreeUs(t.pid) : undefined;
            const r = await measure(s, t, cfg, tmpDir, cfg.durationS);
            const cpu1 = cpu0 !== undefined ? cpuTreeUs(t.pid!) : undefined;
            if (r !== undefined && cpu0 !== undefined && cpu1 !== undefined && r.count > 0) {
              r.cpuUsPerOp = (cpu1 - cpu0) / r.count;
            }
            if (r !== undefined) {
              cell.rounds.push(r);
              log(`[${round + 1}/${cfg.rounds}] ${s.id} ${name}: ${describe(r, s.unit)}`);
            }
          } catch (err) {
            cell.rounds.push({ error: (err as Error).message });
            log(`[${round + 1}/${cfg.rounds}] ${s.id} ${name}: failed: ${(err as Error).message}`);
          }
          const peak = stopSampling?.();
          const rss = report.targets[name]!.rssKiB;
          if (rss !== undefined && peak !== undefined) {
            rss.load = Math.max(rss.load ?? 0, peak);
            if (s.kind === 'http') rss.loadHttp = Math.max(rss.loadHttp ?? 0, peak);
          }
          const diedNow = t.health();
          if (diedNow !== undefined) markDead(name, diedNow);
        }
      }
    }

    for (const [name, t] of running) {
      const rss = report.targets[name]!.rssKiB;
      if (rss !== undefined && t.pid !== undefined) rss.after = rssTreeKiB(t.pid);
    }
    if (cfg.settleS > 0) {
      log(`bench: idle ${cfg.settleS}s before reading settled RSS`);
      await sleep(cfg.settleS * 1000);
      for (const [name, t] of running) {
        const rss = report.targets[name]!.rssKiB;
        if (rss !== undefined && t.pid !== undefined) rss.settled = rssTreeKiB(t.pid);
      }
    }
    for (const cells of Object.values(report.results)) {
      for (const cell of Object.values(cells)) {
        const m = medianOf(cell.rounds);
        if (m !== undefined) cell.median = m;
      }
    }
  } finally {
    await Promise.all([...running.values()].map((t) => t.stop()));
    await backends.stop();
    await stopAll();
  }

  report.finishedAt = new Date().toISOString();
  report.machine.loadAvg.after = loadavg()[0]!;
  process.stdout.write(`\n${renderReport(report)}\n`);
  const file = writeReport(report, join(repoRoot, 'bench', 'results'));
  process.stdout.write(`\nwrote ${file}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    process.exit(1);
  },
);

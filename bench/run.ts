// Entry point of `npm run bench`: starts backends and targets, runs alternating rounds, prints and records medians.

import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { grpcLoad } from './grpc-load.js';
import { h2Load } from './h2-load.js';
import { httpLoad, type LoadResult, type MeasureWindow } from './load.js';
import { type Config, parseConfig } from './options.js';
import { cpuTreeUs, installCleanup, pinProcess, repoRoot, rssTreeKiB, sampleRss, stopAll } from './proc.js';
import { rateLoad } from './rate-load.js';
import {
  type BenchReport,
  cpuPressure,
  machineInfo,
  medianOf,
  renderReport,
  type Scenario,
  type TargetInfo,
  writeReport,
} from './report.js';
import { direct } from './targets/direct.js';
import { haproxy } from './targets/haproxy.js';
import { envoyMesh, remoraMesh } from './targets/mesh.js';
import { nginx } from './targets/nginx.js';
import { nodeHttpProxy } from './targets/node-http-proxy.js';
import { nodeHttp2Proxy } from './targets/node-http2-proxy.js';
import { remora, remoraH2Up } from './targets/remora.js';
import type { BenchEnv, Protocol, RunningTarget, Target } from './targets/target.js';
import { tcpBulkLoad, tcpEchoLoad } from './tcp-load.js';
import { buildTcpTool, cTcpEchoLoad } from './tcp-tool.js';
import { chooseUpstream, startBackends } from './upstream.js';

/** Every target the harness knows, in table order. */
const ALL_TARGETS: readonly Target[] = [
  direct,
  remora,
  remoraH2Up,
  remoraMesh,
  envoyMesh,
  nodeHttpProxy,
  nodeHttp2Proxy,
  nginx,
  haproxy,
];

/**
 * Warm-up h2load and the gRPC client run on their connections before each measured window: connections
 * and HTTP/2 windows settle there, not in the count (the JIT warm-up is the harness's own, before round 1).
 */
const LOAD_WARMUP_S = 0.25;

const NO_WINDOW: MeasureWindow = { begin: () => {}, end: () => {} };

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
  /** The compiled C TCP tool, when there is one. */
  tcpTool: string | undefined,
  durationS: number,
  /** Undefined for the harness's own warm-up runs, which have no window and no warm-up of their own. */
  window: MeasureWindow | undefined,
): Promise<LoadResult | undefined> {
  const warmupS = window === undefined ? 0 : LOAD_WARMUP_S;
  window ??= NO_WINDOW;
  const { httpPort, tcpPort, h2Port, grpcPort, meshPort } = t.endpoints;
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
      return tcpTool === undefined
        ? tcpEchoLoad({ port: tcpPort, connections: s.connections, durationS })
        : cTcpEchoLoad(tcpTool, { port: tcpPort, connections: s.connections, durationS });
    case 'tcp-bulk':
      if (tcpPort === undefined) return undefined;
      return tcpBulkLoad({ port: tcpPort, durationS });
    case 'h2':
      if (h2Port === undefined) return undefined;
      return h2Load({
        url: `http://127.0.0.1:${h2Port}/`,
        connections: s.connections,
        streams: s.streams!,
        durationS,
        warmupS,
        cpu: cfg.loadCpu,
        tmpDir,
        window,
      });
    case 'grpc':
      if (grpcPort === undefined) return undefined;
      return grpcLoad({
        port: grpcPort,
        channels: s.connections,
        calls: s.streams!,
        durationS,
        warmupS,
        cpu: cfg.loadCpu,
        window,
      });
    case 'rate':
      if (meshPort === undefined) return undefined;
      return rateLoad({
        port: meshPort,
        path: '/',
        rate: s.rate!.perSecond,
        connections: s.connections,
        // The harness's own warm-up (no window) runs for its whole duration without a warm-up of its own.
        warmupS: window === NO_WINDOW ? 0 : s.rate!.warmupS,
        durationS: window === NO_WINDOW ? durationS : s.rate!.durationS,
        cpu: cfg.loadCpu,
        window,
      });
  }
}

const ENDPOINT = {
  http: 'httpPort',
  tcp: 'tcpPort',
  h2: 'h2Port',
  grpc: 'grpcPort',
  mesh: 'meshPort',
} as const;

/** The processes whose CPU and RSS count for a target (both sidecars of a pair); undefined for direct. */
const rootsOf = (t: RunningTarget): readonly number[] | undefined =>
  t.pids ?? (t.pid === undefined ? undefined : [t.pid]);

function supports(s: Scenario, t: RunningTarget): boolean {
  return t.endpoints[ENDPOINT[s.protocol]] !== undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<number> {
  const cfg = parseConfig(process.argv.slice(2), ALL_TARGETS);
  if (cfg === undefined) return 0;
  for (const [id, reason] of Object.entries(cfg.skipped)) log(`bench: scenario ${id} skipped: ${reason}`);
  const scenarios = cfg.scenarios;
  if (scenarios.length === 0) throw new Error('no scenario left to run');
  const protocols = new Set<Protocol>(scenarios.map((s) => s.protocol));
  // A target none of whose protocols a selected scenario uses is not started at all.
  const targets = cfg.targets.filter((t) => t.protocols.some((p) => protocols.has(p)));
  installCleanup();
  if (cfg.pinned) pinProcess(process.pid, cfg.loadCpu);

  const tmpDir = mkdtempSync(join(tmpdir(), 'remora-bench-'));
  // Also runs when SIGINT/SIGTERM end the run early.
  process.on('exit', () => rmSync(tmpDir, { recursive: true, force: true }));
  const upstreamKind = chooseUpstream(cfg.upstream);
  const built = protocols.has('tcp') ? buildTcpTool(tmpDir) : undefined;
  if (built !== undefined && 'reason' in built)
    log(`bench: the C TCP tool cannot be built (${built.reason}): TCP echo server and client run in node`);
  const tcpTool = built !== undefined && 'path' in built ? built.path : undefined;
  const report: BenchReport = {
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    config: {
      durationS: cfg.durationS,
      rounds: cfg.rounds,
      warmupS: cfg.warmupS,
      settleS: cfg.settleS,
      loadTool: cfg.tool,
      upstream: upstreamKind,
      ...(protocols.has('tcp') && { tcpTool: tcpTool === undefined ? 'node' : 'c' }),
      loadCpu: cfg.loadCpu,
      proxyCpu: cfg.proxyCpu,
      pinned: cfg.pinned,
    },
    targets: {},
    scenarios,
    ...(Object.keys(cfg.skipped).length === 0 ? {} : { skipped: cfg.skipped }),
    results: Object.fromEntries(scenarios.map((s) => [s.id, {}])),
  };

  log(
    `bench: upstream ${upstreamKind}, load ${cfg.tool}, ${cfg.pinned ? `pinned (load ${cfg.loadCpu}, proxy ${cfg.proxyCpu})` : 'not pinned'}`,
  );
  const backends = await startBackends(upstreamKind, tmpDir, cfg.loadCpu, protocols, tcpTool);
  if (backends.h2UpstreamKind !== undefined) report.config.h2Upstream = backends.h2UpstreamKind;
  const env: BenchEnv = {
    tmpDir,
    protocols,
    proxyCpu: cfg.proxyCpu,
    upstreamPort: backends.upstreamPort,
    echoPort: backends.echoPort,
    ...(backends.h2UpstreamPort === undefined ? {} : { h2UpstreamPort: backends.h2UpstreamPort }),
    ...(backends.grpcPort === undefined ? {} : { grpcPort: backends.grpcPort }),
  };

  const running = new Map<string, RunningTarget>();
  try {
    for (const t of targets) {
      const info: TargetInfo = { status: 'ok', protocols: [...t.protocols] };
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
      const roots = rootsOf(t);
      if (roots !== undefined) report.targets[name]!.rssKiB = { idle: rssTreeKiB(roots) };
    }
    // A sidecar spends its idle time in the state V8 settles into ~10 s after start (its memory reducer releases
    // the start-up garbage and shrinks the young generation), so that is read too, before any load.
    const readRss = (field: 'idleSettled' | 'after' | 'settled'): void => {
      for (const [name, t] of running) {
        const rss = report.targets[name]!.rssKiB;
        const roots = rootsOf(t);
        if (rss !== undefined && roots !== undefined) rss[field] = rssTreeKiB(roots);
      }
    };
    if (cfg.settleS > 0) {
      log(`bench: idle ${cfg.settleS}s before reading settled idle RSS`);
      await sleep(cfg.settleS * 1000);
      readRss('idleSettled');
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
        // One run of the first scenario of each request/response kind gets JITs and pools going.
        for (const kind of ['http', 'tcp-rr', 'h2', 'grpc', 'rate'] as const) {
          const s = scenarios.find((x) => x.kind === kind);
          if (s === undefined || !supports(s, t)) continue;
          try {
            await measure(s, t, cfg, tmpDir, tcpTool, cfg.warmupS, undefined);
          } catch {
            // warm-up failures show up again in the measured rounds
          }
        }
        const dead = t.health();
        if (dead !== undefined) markDead(name, dead);
      }
    }

    const names = targets.map((t) => t.name);
    // Every HTTP/1.1 and TCP request/response round runs first, then the bulk TCP stream, then HTTP/2: glibc keeps
    // the read buffers a bulk stream freed and a Node proxy's heap what HTTP/2 and gRPC grew, and the HTTP/1.1
    // memory figures must carry neither.
    const h1 = (s: Scenario): boolean =>
      s.kind !== 'tcp-bulk' && (s.protocol === 'http' || s.protocol === 'tcp' || s.protocol === 'mesh');
    const bulk = (s: Scenario): boolean => s.kind === 'tcp-bulk';
    const phases = [
      scenarios.filter(h1),
      scenarios.filter(bulk),
      scenarios.filter((s) => !h1(s) && !bulk(s)),
    ].filter((p) => p.length > 0);
    for (const phase of phases) {
      for (let round = 0; round < cfg.rounds; round++) {
        for (const s of phase) {
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
            const roots = rootsOf(t);
            const stopSampling = roots !== undefined ? sampleRss(roots) : undefined;
            try {
              // The CPU time read around the run, or around the measured window when the load tool reports one;
              // per root process, so a sidecar pair shows each sidecar's share.
              const pids = s.kind !== 'tcp-bulk' ? roots : undefined;
              const cpuNow = (): (number | undefined)[] | undefined => pids?.map((p) => cpuTreeUs(p));
              let cpu0: (number | undefined)[] | undefined;
              let cpu1: (number | undefined)[] | undefined;
              const window: MeasureWindow = {
                begin: () => {
                  cpu0 = cpuNow();
                  cpu1 = undefined;
                },
                end: () => {
                  cpu1 = cpuNow();
                },
              };
              window.begin();
              const r = await measure(s, t, cfg, tmpDir, tcpTool, cfg.durationS, window);
              if (cpu1 === undefined) window.end();
              const after = cpu1 as (number | undefined)[] | undefined;
              if (r !== undefined && r.count > 0 && cpu0 !== undefined && after !== undefined) {
                const each = cpu0.map((c0, i) => {
                  const c1 = after[i];
                  return c0 === undefined || c1 === undefined ? undefined : (c1 - c0) / r.count;
                });
                if (!each.includes(undefined)) {
                  r.cpuUsPerOp = (each as number[]).reduce((a, b) => a + b, 0);
                  if (each.length > 1) r.cpuUsPerOpEach = each as number[];
                }
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
              if (!h1(s) && !bulk(s)) rss.loadH2 = Math.max(rss.loadH2 ?? 0, peak);
            }
            const diedNow = t.health();
            if (diedNow !== undefined) markDead(name, diedNow);
          }
        }
      }
    }

    readRss('after');
    if (cfg.settleS > 0) {
      log(`bench: idle ${cfg.settleS}s before reading settled RSS`);
      await sleep(cfg.settleS * 1000);
      readRss('settled');
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
  const pressure = cpuPressure();
  if (report.machine.cpuPressure !== undefined && pressure !== undefined)
    report.machine.cpuPressure.after = pressure;
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

// Command line and env knobs of the benchmark, and the scenarios they select.

import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { grpcMissing } from './grpc-load.js';
import { h2loadMissing } from './h2-load.js';
import { chooseTool, type LoadTool } from './load.js';
import { canPin } from './proc.js';
import type { Scenario } from './report.js';
import type { Target } from './targets/target.js';

export interface Config {
  durationS: number;
  rounds: number;
  warmupS: number;
  /** Idle seconds before RSS is read again, after start and after the last round (V8 shrinks an idle heap after ~10 s). */
  settleS: number;
  targets: readonly Target[];
  scenarios: Scenario[];
  /** Selected scenarios that cannot run on this machine, with the reason. */
  skipped: Record<string, string>;
  tool: LoadTool;
  upstream: string | undefined;
  pinned: boolean;
  loadCpu: number | undefined;
  proxyCpu: number | undefined;
}

const DEFAULTS = {
  duration: '3',
  rounds: '3',
  warmup: '1',
  settle: '20',
  connections: '50,1',
  tcpConnections: '50,1',
  h2Connections: '10',
  h2Streams: '10',
  grpcChannels: '4',
  grpcCalls: '100',
  meshRate: '1000',
  meshConnections: '16',
  meshDuration: '10',
  meshWarmup: '2',
};

export function usage(targets: readonly Target[]): string {
  const d = DEFAULTS;
  return `usage: npm run bench -- [options]   (every option also reads an env var)
  --duration <s>          seconds per measurement            BENCH_DURATION (${d.duration})
  --rounds <n>            alternating rounds, median reported BENCH_ROUNDS (${d.rounds})
  --warmup <s>            warm-up per target before round 1  BENCH_WARMUP (${d.warmup})
  --settle <s>            idle wait before each settled RSS  BENCH_SETTLE (${d.settle}; 0 = skip)
  --targets <a,b>         subset of ${targets.map((t) => t.name).join(',')}   BENCH_TARGETS (all)
  --scenarios <a,b>       scenario ids or groups: http, tcp, h2c, grpc-unary, mesh, http-c50, tcp-bulk, ...
                                                             BENCH_SCENARIOS (all)
  --connections <n,m>     HTTP keep-alive connection counts  BENCH_CONNECTIONS (${d.connections})
  --tcp-connections <n,m> TCP echo connection counts         BENCH_TCP_CONNECTIONS (${d.tcpConnections})
  --no-bulk               skip the TCP bulk throughput test  BENCH_BULK=0
  --h2-connections <n>    h2load connections (-c)            BENCH_H2_CONNECTIONS (${d.h2Connections})
  --h2-streams <n>        h2load streams per connection (-m) BENCH_H2_STREAMS (${d.h2Streams})
  --grpc-channels <n>     gRPC client channels (connections) BENCH_GRPC_CHANNELS (${d.grpcChannels})
  --grpc-calls <n>        unary calls in flight, all channels BENCH_GRPC_CALLS (${d.grpcCalls})
  --mesh-rate <n>         mesh: fixed request rate (req/s)   BENCH_MESH_RATE (${d.meshRate})
  --mesh-connections <n>  mesh: client connections           BENCH_MESH_CONNECTIONS (${d.meshConnections})
  --mesh-duration <s>     mesh: seconds per measurement      BENCH_MESH_DURATION (${d.meshDuration})
  --mesh-warmup <s>       mesh: warm-up on the same connections BENCH_MESH_WARMUP (${d.meshWarmup})
  --tool <wrk|autocannon> HTTP/1.1 load generator            BENCH_TOOL (wrk if installed)
  --upstream <nginx|node> HTTP upstreams implementation      BENCH_UPSTREAM (nginx if installed)
  --load-cpu <n>          core for load generator + backends BENCH_LOAD_CPU (0)
  --proxy-cpu <n>         core for the proxy under test      BENCH_PROXY_CPU (1)
  --no-pin                do not pin with taskset            BENCH_NO_PIN=1`;
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

const names = (raw: string): string[] =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Every scenario the connection settings describe, in table order. */
function allScenarios(p: {
  http: number[];
  tcp: number[];
  bulk: boolean;
  h2: { connections: number; streams: number };
  grpc: { channels: number; calls: number };
  mesh: { rate: number; connections: number; durationS: number; warmupS: number };
}): Scenario[] {
  const out: Scenario[] = [];
  const plural = (c: number): string => `${c} connection${c === 1 ? '' : 's'}`;
  for (const c of p.http) {
    out.push({
      id: `http-c${c}`,
      kind: 'http',
      protocol: 'http',
      connections: c,
      unit: 'req/s',
      title: `HTTP/1.1 keep-alive GET, ${plural(c)}`,
    });
  }
  for (const c of p.tcp) {
    out.push({
      id: `tcp-rr-c${c}`,
      kind: 'tcp-rr',
      protocol: 'tcp',
      connections: c,
      unit: 'trips/s',
      title: `TCP echo, 64-byte request/response, ${plural(c)}`,
    });
  }
  if (p.bulk) {
    out.push({
      id: 'tcp-bulk',
      kind: 'tcp-bulk',
      protocol: 'tcp',
      connections: 1,
      unit: 'MB/s',
      title: 'TCP echo bulk throughput, 1 connection',
    });
  }
  out.push({
    id: 'h2c',
    kind: 'h2',
    protocol: 'h2',
    connections: p.h2.connections,
    streams: p.h2.streams,
    unit: 'req/s',
    title: `HTTP/2 (h2c) GET, ${plural(p.h2.connections)} x ${p.h2.streams} concurrent streams (h2load)`,
  });
  out.push({
    id: 'grpc-unary',
    kind: 'grpc',
    protocol: 'grpc',
    connections: p.grpc.channels,
    streams: p.grpc.calls,
    unit: 'calls/s',
    title: `gRPC unary calls, ${p.grpc.calls} in flight over ${p.grpc.channels} channel${p.grpc.channels === 1 ? '' : 's'} (grpc-js)`,
  });
  out.push({
    id: 'mesh',
    kind: 'rate',
    protocol: 'mesh',
    connections: p.mesh.connections,
    rate: { perSecond: p.mesh.rate, durationS: p.mesh.durationS, warmupS: p.mesh.warmupS },
    unit: 'req/s',
    title: `Mesh path: HTTP/1.1 GET at a fixed ${p.mesh.rate} req/s over ${plural(p.mesh.connections)}, open loop, through a sidecar pair with mutual TLS`,
  });
  return out;
}

/** Groups `--scenarios` accepts besides the ids themselves. */
const GROUPS: Record<string, (s: Scenario) => boolean> = {
  http: (s) => s.protocol === 'http',
  tcp: (s) => s.protocol === 'tcp',
  'tcp-rr': (s) => s.kind === 'tcp-rr',
  h2: (s) => s.kind === 'h2',
  grpc: (s) => s.kind === 'grpc',
};

function selectScenarios(all: Scenario[], wanted: string[]): Scenario[] {
  if (wanted.length === 0) return all;
  for (const w of wanted) {
    if (!all.some((s) => s.id === w) && GROUPS[w] === undefined) {
      const known = [...Object.keys(GROUPS), ...all.map((s) => s.id)].join(', ');
      throw new Error(`unknown scenario ${w} (known: ${known})`);
    }
  }
  return all.filter((s) => wanted.some((w) => s.id === w || GROUPS[w]?.(s) === true));
}

/** Reads argv and env; undefined after printing --help. */
export function parseConfig(argv: string[], allTargets: readonly Target[]): Config | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      settle: { type: 'string' },
      targets: { type: 'string' },
      scenarios: { type: 'string' },
      connections: { type: 'string' },
      'tcp-connections': { type: 'string' },
      'no-bulk': { type: 'boolean' },
      'h2-connections': { type: 'string' },
      'h2-streams': { type: 'string' },
      'grpc-channels': { type: 'string' },
      'grpc-calls': { type: 'string' },
      'mesh-rate': { type: 'string' },
      'mesh-connections': { type: 'string' },
      'mesh-duration': { type: 'string' },
      'mesh-warmup': { type: 'string' },
      tool: { type: 'string' },
      upstream: { type: 'string' },
      'load-cpu': { type: 'string' },
      'proxy-cpu': { type: 'string' },
      'no-pin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage(allTargets)}\n`);
    return undefined;
  }
  const env = process.env;
  const opt = (flag: string | undefined, key: string, fallback: string): string =>
    flag ?? env[key] ?? fallback;
  const int = (flag: string | undefined, key: string, fallback: string, name: string): number =>
    Math.round(positive(name, opt(flag, key, fallback)));
  const wanted = names(opt(values.targets, 'BENCH_TARGETS', ''));
  for (const w of wanted) {
    if (!allTargets.some((t) => t.name === w)) throw new Error(`unknown target ${w}`);
  }
  const d = DEFAULTS;
  const all = allScenarios({
    http: list('connections', opt(values.connections, 'BENCH_CONNECTIONS', d.connections)),
    tcp: list('tcp-connections', opt(values['tcp-connections'], 'BENCH_TCP_CONNECTIONS', d.tcpConnections)),
    bulk: !(values['no-bulk'] || env.BENCH_BULK === '0'),
    h2: {
      connections: int(values['h2-connections'], 'BENCH_H2_CONNECTIONS', d.h2Connections, 'h2-connections'),
      streams: int(values['h2-streams'], 'BENCH_H2_STREAMS', d.h2Streams, 'h2-streams'),
    },
    grpc: {
      channels: int(values['grpc-channels'], 'BENCH_GRPC_CHANNELS', d.grpcChannels, 'grpc-channels'),
      calls: int(values['grpc-calls'], 'BENCH_GRPC_CALLS', d.grpcCalls, 'grpc-calls'),
    },
    mesh: {
      rate: positive('mesh-rate', opt(values['mesh-rate'], 'BENCH_MESH_RATE', d.meshRate)),
      connections: int(
        values['mesh-connections'],
        'BENCH_MESH_CONNECTIONS',
        d.meshConnections,
        'mesh-connections',
      ),
      durationS: positive(
        'mesh-duration',
        opt(values['mesh-duration'], 'BENCH_MESH_DURATION', d.meshDuration),
      ),
      warmupS: positive('mesh-warmup', opt(values['mesh-warmup'], 'BENCH_MESH_WARMUP', d.meshWarmup), true),
    },
  });
  const selected = selectScenarios(all, names(opt(values.scenarios, 'BENCH_SCENARIOS', '')));
  const skipped: Record<string, string> = {};
  const missing = { h2: h2loadMissing(), grpc: grpcMissing() } as Partial<Record<Scenario['kind'], string>>;
  const scenarios = selected.filter((s) => {
    const reason = missing[s.kind];
    if (reason !== undefined) skipped[s.id] = reason;
    return reason === undefined;
  });
  const pinRequested = !(values['no-pin'] || env.BENCH_NO_PIN === '1');
  const pinned = pinRequested && canPin && cpus().length >= 2;
  return {
    durationS: positive('duration', opt(values.duration, 'BENCH_DURATION', d.duration)),
    rounds: int(values.rounds, 'BENCH_ROUNDS', d.rounds, 'rounds'),
    warmupS: positive('warmup', opt(values.warmup, 'BENCH_WARMUP', d.warmup), true),
    settleS: positive('settle', opt(values.settle, 'BENCH_SETTLE', d.settle), true),
    targets: wanted.length === 0 ? allTargets : allTargets.filter((t) => wanted.includes(t.name)),
    scenarios,
    skipped,
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

// Child-process plumbing for the benchmark: CPU pinning, free ports, readiness polling, RSS, cleanup.

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Root of the repository (this file runs from `dist/bench/`). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Directory holding the compiled benchmark modules (`dist/bench`). */
export const benchDistDir = dirname(fileURLToPath(import.meta.url));

/** Absolute path of an executable found on PATH or in the sbin directories, or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const tasksetPath = which('taskset');

/** Whether processes can be pinned to cores. */
export const canPin = tasksetPath !== undefined;

/** Pins every thread of an already running process (e.g. this harness) to `cpu`; false when impossible. */
export function pinProcess(pid: number, cpu: number | undefined): boolean {
  if (tasksetPath === undefined || cpu === undefined) return false;
  try {
    execFileSync(tasksetPath, ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A child process started by the harness; `stderr` keeps the last few KiB for failure reports. */
export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Output tail (stdout and stderr interleaved). */
  output(): string;
  /** Set once the process has exited. */
  exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Sends SIGTERM to the process group, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Managed>();

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

/**
 * Spawns `command args` in its own process group, pinned to `cpu` when taskset exists.
 * The process is registered for cleanup on exit and on SIGINT/SIGTERM.
 */
export function spawnManaged(
  name: string,
  command: string,
  args: readonly string[],
  cpu: number | undefined,
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Managed {
  const [cmd, argv] =
    tasksetPath !== undefined && cpu !== undefined
      ? [tasksetPath, ['-c', String(cpu), command, ...args]]
      : [command, [...args]];
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exitedPromise = new Promise<void>((done) => {
    child.once('exit', (code, signal) => {
      managed.exited = { code, signal };
      live.delete(managed);
      done();
    });
    child.once('error', (err) => {
      keep(Buffer.from(`${err.message}\n`));
      managed.exited = { code: null, signal: null };
      live.delete(managed);
      done();
    });
  });
  const managed: Managed = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => tail,
    exited: undefined,
    async stop(graceMs = 3000) {
      if (managed.exited !== undefined || child.pid === undefined) return;
      signalGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(child.pid!, 'SIGKILL'), graceMs);
      await exitedPromise;
      clearTimeout(timer);
    },
  };
  if (child.pid !== undefined) live.add(managed);
  return managed;
}

/** Stops every child still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((m) => m.stop()));
}

let cleanupInstalled = false;

/** Makes sure children do not outlive the harness (normal exit, SIGINT, SIGTERM). */
export function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.on('exit', () => {
    for (const m of live) signalGroup(m.pid, 'SIGTERM');
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, stopping children\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A TCP port that was free a moment ago (bound on port 0, then released). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const addr = server.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tryConnect(port: number, host: string): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ port, host });
    socket.setTimeout(500);
    const finish = (ok: boolean): void => {
      socket.destroy();
      done(ok);
    };
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    socket.once('timeout', () => finish(false));
  });
}

async function httpStatus(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(500) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}

/** What a target must reach before it counts as started. */
export interface Readiness {
  ports?: readonly number[];
  /** URL that must answer 200 (e.g. an admin `/ready`). */
  url?: string;
}

/**
 * Waits until every port accepts connections and `url` answers 200.
 * Throws with the child's output tail when it exits first or `timeoutMs` passes.
 */
export async function waitReady(
  proc: Managed | undefined,
  ready: Readiness,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(ready.ports ?? []);
  let urlOk = ready.url === undefined;
  while (Date.now() < deadline) {
    if (proc?.exited !== undefined) {
      const how = proc.exited.signal ?? `code ${proc.exited.code}`;
      throw new Error(`${proc.name} exited (${how}): ${lastLine(proc.output())}`);
    }
    for (const port of [...pending]) if (await tryConnect(port, '127.0.0.1')) pending.delete(port);
    if (!urlOk && ready.url !== undefined) urlOk = (await httpStatus(ready.url)) === 200;
    if (pending.size === 0 && urlOk) return;
    await sleep(50);
  }
  const what = [...[...pending].map((p) => `port ${p}`), ...(urlOk ? [] : [ready.url])].join(', ');
  throw new Error(`not ready after ${timeoutMs} ms (${what})${proc ? `: ${lastLine(proc.output())}` : ''}`);
}

/**
 * The last non-empty line of some output, shortened for a table cell; for a Node process that died of an
 * uncaught exception (output ending in `Node.js v20...`), the error's own line instead.
 */
export function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const nodeCrash = /^Node\.js v\d/.test(lines.at(-1) ?? '');
  const thrown = nodeCrash ? [...lines].reverse().find((l) => /^\w*Error\b.*:/.test(l)) : undefined;
  const line = thrown ?? lines.at(-1) ?? 'no output';
  return line.length > 160 ? `${line.slice(0, 157)}...` : line;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
        if (text !== '') out.push(...text.split(/\s+/).map(Number));
      } catch {
        // task ended
      }
    }
  } catch {
    // process ended
  }
  return out;
}

function vmRssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** `pid` (or several roots) and all descendants (nginx's master and worker, taskset's exec'd command). */
function processTree(pid: number | readonly number[]): number[] {
  const out: number[] = [];
  const stack = typeof pid === 'number' ? [pid] : [...pid];
  const seen = new Set<number>();
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    out.push(p);
    stack.push(...childPids(p));
  }
  return out;
}

/** CPU time (user + system) of `pid` (or several roots) and its descendants, in µs; undefined without /proc. */
export function cpuTreeUs(pid: number | readonly number[]): number | undefined {
  let ticks = 0;
  let any = false;
  for (const p of processTree(pid)) {
    try {
      // Fields after the parenthesized command name: utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]);
      any = true;
    } catch {
      // gone, or no /proc
    }
  }
  // Linux reports these in USER_HZ, 100 per second on every architecture Node runs on here.
  return any ? ticks * 10_000 : undefined;
}

/**
 * Resident set size in KiB of `pid` (or several roots) plus all of its descendants, read from
 * /proc/<pid>/status VmRSS. Undefined without /proc.
 */
export function rssTreeKiB(pid: number | readonly number[]): number | undefined {
  if (vmRssKiB(process.pid) === 0) return undefined;
  let total = 0;
  for (const p of processTree(pid)) total += vmRssKiB(p);
  return total;
}

/** Samples `rssTreeKiB(pid)` every `everyMs` until stopped; returns the peak. */
export function sampleRss(pid: number | readonly number[], everyMs = 250): () => number | undefined {
  let peak: number | undefined;
  const take = (): void => {
    const v = rssTreeKiB(pid);
    if (v !== undefined) peak = Math.max(peak ?? 0, v);
  };
  take();
  const timer = setInterval(take, everyMs);
  return () => {
    clearInterval(timer);
    take();
    return peak;
  };
}

/** What a load generator child prints when its measured window opens and closes. */
export interface WindowMarks {
  readonly begin: string;
  readonly end: string;
}

/**
 * Runs a load generator on `cpu` until it exits (killed past its duration, warm-up and 20 s), opening and closing
 * `window` as its output shows the marks, so the target's CPU time is read over the measured window only; returns
 * everything it printed on stdout, and the process for its last words.
 */
export async function runMeasured(
  name: string,
  command: string,
  args: readonly string[],
  opts: {
    cpu: number | undefined;
    window: { begin(): void; end(): void };
    marks: WindowMarks;
    durationS: number;
    warmupS: number;
  },
): Promise<{ out: string; proc: Managed }> {
  const proc = spawnManaged(name, command, [...args], opts.cpu);
  let out = '';
  let begun = false;
  let ended = false;
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (!begun && out.includes(opts.marks.begin)) {
      begun = true;
      opts.window.begin();
    }
    if (!ended && out.includes(opts.marks.end)) {
      ended = true;
      opts.window.end();
    }
  });
  const killer = setTimeout(() => void proc.stop(), (opts.durationS + opts.warmupS + 20) * 1000);
  await new Promise<void>((done) => {
    if (proc.exited !== undefined) done();
    else proc.child.once('exit', () => done());
  });
  clearTimeout(killer);
  return { out, proc };
}

/** The marks the Node load children (children/*.ts) print. */
export const CHILD_MARKS: WindowMarks = { begin: 'measure begin\n', end: 'measure end\n' };

/** The last JSON line a load child printed: its summary. */
export function lastJsonLine(name: string, out: string, proc: Managed): string {
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined)
    throw new Error(`${name}: ${proc.output().trim().split('\n').at(-1) ?? 'no output'}`);
  return line;
}

// Test support: network namespaces joined by veth pairs, and processes run inside them (needs root).

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { findTool } from '../../src/capture/exec.js';

export interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion; a non-zero exit is a result, not an error. */
export function run(
  file: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise<Run>((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 30_000 },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: unknown; killed?: boolean }) | null;
        if (e?.killed) return reject(new Error(`${file} ${args.join(' ')} did not finish: ${stderr}`));
        if (e && typeof e.code !== 'number') return reject(e);
        resolve({ code: e ? Number(e.code) : 0, stdout, stderr });
      },
    );
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input ?? '');
  });
}

/** Runs a command that must succeed; its stdout. */
export async function runOk(file: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(file, args, input === undefined ? {} : { input });
  assert.equal(r.code, 0, `${file} ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** The full path of a tool on PATH, or undefined: found as `remora iptables` finds its own tools. */
export const which = (tool: string): string | undefined => findTool(tool);

/**
 * Fails loudly unless the test can build network namespaces: root, and every tool it names (.ci/run installs
 * them). Such a test must never pass by skipping what it checks.
 */
export function requireRootAndTools(what: string, tools: readonly string[]): void {
  if (process.getuid?.() !== 0) {
    assert.fail(
      `${what} needs root: it builds network namespaces and installs iptables/nftables rules in them. Run the tests as root (CI does).`,
    );
  }
  const missing = tools.filter((t) => which(t) === undefined);
  if (missing.length > 0) {
    assert.fail(
      `${what} needs ${missing.join(', ')} (Debian packages iptables, nftables, iproute2, curl, util-linux; .ci/run installs them)`,
    );
  }
}

/** A short random suffix: namespace and interface names stay unique across concurrent test files. */
export function uniqueSuffix(): string {
  return randomBytes(3).toString('hex');
}

/** A network namespace made for a test; `close()` deletes it, with every process and rule in it. */
export class Netns {
  private constructor(readonly name: string) {}

  static async create(name: string): Promise<Netns> {
    await runOk('ip', ['netns', 'add', name]);
    const ns = new Netns(name);
    await ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n NAME ...` */
  ip(...args: string[]): Promise<string> {
    return runOk('ip', ['-n', this.name, ...args]);
  }

  /**
   * Runs a command in the namespace to completion. `ip` itself is found on this process's PATH, so `opts.env` may
   * give the command another PATH (or none).
   */
  exec(
    file: string,
    args: readonly string[],
    opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
  ): Promise<Run> {
    return run(which('ip') ?? 'ip', ['netns', 'exec', this.name, file, ...args], opts);
  }

  /** Runs a command in the namespace that must succeed; its stdout. */
  execOk(file: string, args: readonly string[], input?: string): Promise<string> {
    return runOk(which('ip') ?? 'ip', ['netns', 'exec', this.name, file, ...args], input);
  }

  /** Starts a long-running process in the namespace. */
  spawn(file: string, args: readonly string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  async close(): Promise<void> {
    await run('ip', ['netns', 'delete', this.name]);
  }
}

/** Joins two namespaces with a veth pair; each end gets its IPv4 and IPv6 address (no DAD, usable at once). */
export async function linkVeth(
  a: Netns,
  b: Netns,
  suffix: string,
  addrs: { a4: string; b4: string; a6: string; b6: string },
): Promise<void> {
  const ea = `rva${suffix}`;
  const eb = `rvb${suffix}`;
  await runOk('ip', [
    'link',
    'add',
    ea,
    'netns',
    a.name,
    'type',
    'veth',
    'peer',
    'name',
    eb,
    'netns',
    b.name,
  ]);
  await a.ip('addr', 'add', `${addrs.a4}/24`, 'dev', ea);
  await b.ip('addr', 'add', `${addrs.b4}/24`, 'dev', eb);
  await a.ip('-6', 'addr', 'add', `${addrs.a6}/64`, 'dev', ea, 'nodad');
  await b.ip('-6', 'addr', 'add', `${addrs.b6}/64`, 'dev', eb, 'nodad');
  await a.ip('link', 'set', ea, 'up');
  await b.ip('link', 'set', eb, 'up');
}

/** Resolves with the first line of `child`'s stdout (or stderr) that matches, or fails with what it printed. */
export function waitForLine(
  child: ChildProcess,
  pattern: RegExp,
  opts: { stream?: 'stdout' | 'stderr'; timeoutMs?: number } = {},
): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const watched = opts.stream === 'stderr' ? child.stderr : child.stdout;
  const other = opts.stream === 'stderr' ? child.stdout : child.stderr;
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => fail(`no line matching ${pattern} within ${timeoutMs} ms`), timeoutMs);
    const fail = (why: string) => {
      cleanup();
      reject(new Error(`${why}\n${opts.stream ?? 'stdout'}: ${out}\nother output: ${err}`));
    };
    const onWatched = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => pattern.test(l));
      if (line !== undefined) {
        cleanup();
        resolve(line);
      }
    };
    const onOther = (d: Buffer) => {
      err += d.toString();
    };
    const onExit = (code: number | null) => fail(`exited with ${code}`);
    const cleanup = () => {
      clearTimeout(timer);
      watched?.off('data', onWatched);
      other?.off('data', onOther);
      child.off('exit', onExit);
    };
    watched?.on('data', onWatched);
    other?.on('data', onOther);
    child.once('exit', onExit);
  });
}

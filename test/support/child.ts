// Test support: runs `remora proxy` as a child process on fresh ports and waits for its admin /ready.

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Json } from './proxy.js';
import { closedPort } from './upstream.js';

export const REMORA_BIN = fileURLToPath(new URL('../../../bin/remora', import.meta.url));

export interface ChildProxy {
  readonly process: ChildProcess;
  /** The port of the first listener. */
  readonly port: number;
  readonly adminUrl: string;
  /** Resolves with the exit code (null when ended by a signal). */
  readonly exited: Promise<number | null>;
  readonly stdout: () => string;
  /** stdout and stderr together, for assertion messages. */
  readonly output: () => string;
  /** SIGKILL unless it has already exited; resolves once it is gone. */
  kill(): Promise<void>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it is true; throws naming `what` after timeoutMs. */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A `remora control-plane` with its CA, started, and where it serves. */
export interface CaControlPlane {
  readonly proc: RemoraProcess;
  /** Its start line. */
  readonly line: string;
  /** The plaintext xDS port; undefined with --no-plaintext-xds. */
  readonly xdsPort: number | undefined;
  /** 127.0.0.1:<the CA's port>, where xDS over mTLS is served too. */
  readonly caAddress: string;
}

/**
 * Runs `remora control-plane --config-dir C --data-dir D --ca-port 0 --xds-port 0 --debug-port 0 ...more` until its
 * start line says where it serves; fails with its output if it exits first.
 */
export async function startCaControlPlane(
  configDir: string,
  dataDir: string,
  more: readonly string[] = [],
): Promise<CaControlPlane> {
  const proc = runRemora([
    'control-plane',
    '--config-dir',
    configDir,
    '--data-dir',
    dataDir,
    '--ca-port',
    '0',
    '--xds-port',
    '0',
    '--debug-port',
    '0',
    ...more,
  ]);
  let line = '';
  try {
    await until(
      'the control plane to start',
      () => {
        if (proc.process.exitCode !== null) throw new Error(`remora control-plane exited:\n${proc.output()}`);
        line = /remora control-plane: [^\n]*CA on [^\n]*\n/.exec(proc.output())?.[0] ?? '';
        return line !== '';
      },
      30_000,
    );
  } catch (err) {
    await proc.kill();
    throw err;
  }
  const xds = /xDS on [^\s]+:(\d+)/.exec(line)?.[1];
  const ca = /CA on [^\s]+:(\d+)/.exec(line)?.[1];
  return { proc, line, xdsPort: xds === undefined ? undefined : Number(xds), caAddress: `127.0.0.1:${ca}` };
}

/**
 * Polls a proxy's admin /ready until it answers 200; fails at once, with the proxy's output, if it exits, and
 * after `timeoutMs` with its output too.
 */
export async function untilReady(
  what: string,
  proxy: { readonly process: ChildProcess; readonly output: () => string },
  adminUrl: string,
  timeoutMs = 10_000,
): Promise<void> {
  await until(
    `${what} to become ready`,
    async () => {
      const code = proxy.process.exitCode;
      if (code !== null) throw new Error(`remora proxy exited with ${code}:\n${proxy.output()}`);
      try {
        const r = await fetch(`${adminUrl}/ready`);
        await r.text();
        return r.status === 200;
      } catch {
        return false;
      }
    },
    timeoutMs,
  ).catch((err: Error) => {
    if (err.message.startsWith('timed out'))
      throw new Error(`${err.message}; its output:\n${proxy.output()}`);
    throw err;
  });
}

/** A `bin/remora` child process with its output collected. */
export interface RemoraProcess {
  readonly process: ChildProcess;
  /** stdout and stderr together. */
  readonly output: () => string;
  /** Resolves with the exit code (null when ended by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGKILL (as a crash would) unless it has already exited; resolves once it is gone. */
  kill(): Promise<void>;
}

/** Runs `bin/remora ...args`. */
export function runRemora(args: readonly string[]): RemoraProcess {
  const p = spawn(process.execPath, [REMORA_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => {
    out += d.toString();
  };
  p.stdout?.on('data', collect);
  p.stderr?.on('data', collect);
  const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  return {
    process: p,
    output: () => out,
    exited,
    kill: async () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Gives the bootstrap's admin and first listener fresh ports (bound to 0 and released), writes it to `dir` and
 * runs `remora proxy -c FILE ...args` until GET /ready answers 200: with this node, or `asProgram`, as users run it
 * (bin/remora's #! line, which starts Node with Remora's flags); `env` replaces its environment.
 */
export async function spawnProxy(
  dir: string,
  config: Json,
  args: readonly string[] = [],
  opts: { readonly asProgram?: boolean; readonly env?: NodeJS.ProcessEnv } = {},
): Promise<ChildProxy> {
  const port = await closedPort();
  const adminPort = await closedPort();
  const cfg = structuredClone(config) as Json & { admin: Json; static_resources: { listeners: Json[] } };
  cfg.admin = { address: { socket_address: { address: '127.0.0.1', port_value: adminPort } } };
  cfg.static_resources.listeners[0]!.address = { socket_address: { address: '127.0.0.1', port_value: port } };
  const file = join(dir, `proxy-${port}.json`);
  writeFileSync(file, JSON.stringify(cfg));
  const argv = ['proxy', '-c', file, ...args];
  const spawnOpts = {
    stdio: ['ignore', 'pipe', 'pipe'] as ('ignore' | 'pipe')[],
    env: opts.env ?? process.env,
  };
  const proc = opts.asProgram
    ? spawn(REMORA_BIN, argv, spawnOpts)
    : spawn(process.execPath, [REMORA_BIN, ...argv], spawnOpts);
  let out = '';
  let stdout = '';
  proc.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const child: ChildProxy = {
    process: proc,
    port,
    adminUrl,
    exited,
    stdout: () => stdout,
    output: () => out,
    kill: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
  try {
    await untilReady('the proxy', { process: proc, output: () => out }, adminUrl);
  } catch (err) {
    await child.kill();
    throw err;
  }
  return child;
}

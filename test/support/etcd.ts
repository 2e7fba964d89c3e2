// Test support: a real etcd server (Debian's etcd-server) on free loopback ports in a temporary data directory.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './upstream.js';

const ETCD_BIN = process.env.REMORA_ETCD_BIN ?? 'etcd';

export interface EtcdServer {
  /** `http://127.0.0.1:PORT`, the client URL. */
  readonly url: string;
  readonly dataDir: string;
  /** Kills the server (SIGKILL: as a crash would) and waits until it is gone; the data directory stays. */
  kill(): Promise<void>;
  /** Starts it again on the same directory and ports and waits until it is healthy. */
  restart(): Promise<void>;
  /** Kills it and removes its data directory. */
  stop(): Promise<void>;
  /** What the server printed, for assertion messages. */
  output(): string;
}

/** Fails (does not skip) when the etcd binary is missing: these tests need a real etcd. */
function checkBinary(): void {
  const r = spawnSync(ETCD_BIN, ['--version'], { encoding: 'utf8' });
  if (r.error !== undefined || r.status !== 0)
    throw new Error(
      `these tests need etcd-server (the "etcd" binary, e.g. apt-get install etcd-server): ${r.error?.message ?? r.stderr}`,
    );
}

async function healthy(url: string, timeoutMs: number, proc: ChildProcess, out: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`etcd exited (${proc.exitCode ?? proc.signalCode}): ${out().slice(-2000)}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      const body = (await res.json()) as { health?: string };
      if (res.ok && body.health === 'true') return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`etcd at ${url} not healthy after ${timeoutMs} ms: ${out().slice(-2000)}`);
}

/** Starts etcd in a fresh temporary directory, on free ports, and waits until /health says true. */
export async function startEtcd(): Promise<EtcdServer> {
  checkBinary();
  const dataDir = mkdtempSync(join(tmpdir(), 'remora-etcd-'));
  const clientPort = await closedPort();
  const peerPort = await closedPort();
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const args = [
    '--data-dir',
    join(dataDir, 'data'),
    '--name',
    'default',
    '--listen-client-urls',
    url,
    '--advertise-client-urls',
    url,
    '--listen-peer-urls',
    peer,
    '--initial-advertise-peer-urls',
    peer,
    '--initial-cluster',
    `default=${peer}`,
    '--log-level',
    'warn',
  ];
  let out = '';
  let proc: ChildProcess | undefined;

  const launch = async () => {
    const p = spawn(ETCD_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc = p;
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    await healthy(url, 20_000, p, () => out);
  };

  const kill = async () => {
    const p = proc;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGKILL');
    await gone;
  };

  try {
    await launch();
  } catch (err) {
    await kill();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    dataDir,
    kill,
    restart: async () => {
      await kill();
      await launch();
    },
    stop: async () => {
      await kill();
      rmSync(dataDir, { recursive: true, force: true });
    },
    output: () => out,
  };
}

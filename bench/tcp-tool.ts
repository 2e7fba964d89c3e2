// The TCP scenarios' echo server and round-trip client in C (children/tcp-tool.c), compiled once per run with the
// system's C compiler. Where there is none, the Node echo server and client run instead, and the report says so.

import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { LoadResult } from './load.js';
import { repoRoot } from './proc.js';

const SOURCE = join(repoRoot, 'bench', 'children', 'tcp-tool.c');

/** The compiled tool's path, or why there is none. */
export function buildTcpTool(tmpDir: string): { readonly path: string } | { readonly reason: string } {
  const path = join(tmpDir, 'tcp-tool');
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', path, SOURCE], { encoding: 'utf8' });
  if (r.error !== undefined) return { reason: `${cc}: ${r.error.message}` };
  if (r.status !== 0)
    return { reason: `${cc} exited with ${r.status}: ${r.stderr.trim().split('\n').at(-1)}` };
  return { path };
}

/** Round trips of `messageBytes` over `connections` for `durationS`, by the C client (on this process's core). */
export function cTcpEchoLoad(
  tool: string,
  opts: { port: number; connections: number; durationS: number; messageBytes?: number },
): Promise<LoadResult> {
  const args = ['load', opts.port, opts.connections, opts.durationS, opts.messageBytes ?? 64].map(String);
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) {
        reject(new Error(`tcp-tool load exited with ${code}: ${err.trim() || out.trim()}`));
        return;
      }
      const r = JSON.parse(line) as {
        count: number;
        seconds: number;
        p50Us: number;
        p99Us: number;
        errors: number;
      };
      if (r.count === 0) {
        reject(new Error(`no echo received in ${opts.durationS}s (${r.errors} connection errors)`));
        return;
      }
      resolve({
        rate: r.count / r.seconds,
        p50Us: r.p50Us,
        p99Us: r.p99Us,
        count: r.count,
        errors: r.errors,
      });
    });
  });
}

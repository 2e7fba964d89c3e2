// gRPC unary load: runs the grpc-js load client (children/grpc-load.ts) in a child process on the load core.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { LoadResult, MeasureWindow } from './load.js';
import { benchDistDir, spawnManaged } from './proc.js';

/** Why the gRPC scenario cannot run here, or undefined. */
export function grpcMissing(): string | undefined {
  try {
    createRequire(import.meta.url).resolve('@grpc/grpc-js');
    return undefined;
  } catch {
    return '@grpc/grpc-js not installed (npm install)';
  }
}

export interface GrpcLoadOptions {
  port: number;
  /** Client channels, each with its own HTTP/2 connection. */
  channels: number;
  /** Unary calls kept in flight, spread over the channels. */
  calls: number;
  durationS: number;
  /** Calls before the measured window, on the same channels (not counted). */
  warmupS: number;
  cpu: number | undefined;
  window: MeasureWindow;
}

/** The summary line the child prints last. */
interface GrpcSummary {
  calls: number;
  seconds: number;
  p50Us?: number;
  p99Us?: number;
  errors: number;
  firstError?: string;
}

export async function grpcLoad(opts: GrpcLoadOptions): Promise<LoadResult> {
  const args = [
    join(benchDistDir, 'children', 'grpc-load.js'),
    String(opts.port),
    String(opts.channels),
    String(opts.calls),
    String(opts.durationS),
    String(opts.warmupS),
  ];
  const proc = spawnManaged('grpc-load', process.execPath, args, opts.cpu);
  let out = '';
  let begun = false;
  let ended = false;
  proc.child.stdout?.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (!begun && out.includes('measure begin\n')) {
      begun = true;
      opts.window.begin();
    }
    if (!ended && out.includes('measure end\n')) {
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
  const line = out
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('{'));
  if (line === undefined)
    throw new Error(`grpc-load: ${proc.output().trim().split('\n').at(-1) ?? 'no output'}`);
  const s = JSON.parse(line) as GrpcSummary;
  if (s.calls === 0) throw new Error(`no successful call (${s.errors} errors: ${s.firstError ?? 'none'})`);
  return {
    rate: s.calls / s.seconds,
    ...(s.p50Us === undefined ? {} : { p50Us: s.p50Us }),
    ...(s.p99Us === undefined ? {} : { p99Us: s.p99Us }),
    count: s.calls,
    errors: s.errors,
  };
}

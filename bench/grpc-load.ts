// gRPC unary load: runs the grpc-js load client (children/grpc-load.ts) in a child process on the load core.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { LoadResult, MeasureWindow } from './load.js';
import { benchDistDir, CHILD_MARKS, lastJsonLine, runMeasured } from './proc.js';

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
  const { out, proc } = await runMeasured('grpc-load', process.execPath, args, {
    ...opts,
    marks: CHILD_MARKS,
  });
  const s = JSON.parse(lastJsonLine('grpc-load', out, proc)) as GrpcSummary;
  if (s.calls === 0) throw new Error(`no successful call (${s.errors} errors: ${s.firstError ?? 'none'})`);
  return {
    rate: s.calls / s.seconds,
    ...(s.p50Us === undefined ? {} : { p50Us: s.p50Us }),
    ...(s.p99Us === undefined ? {} : { p99Us: s.p99Us }),
    count: s.calls,
    errors: s.errors,
  };
}

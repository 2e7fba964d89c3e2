// Runs the system tools the capture rules are loaded with (iptables-restore, nft, ip), feeding scripts on stdin.

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CaptureError } from './errors.js';

/** The Debian package each tool comes from, named in the error when one is missing. */
export function debianPackage(tool: string): string {
  if (tool === 'nft') return 'nftables';
  if (tool === 'ip') return 'iproute2';
  return 'iptables';
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** The full path of `tool` on PATH, or undefined: only PATH is searched, as a shell would. */
export function findTool(tool: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function missing(tool: string): CaptureError {
  return new CaptureError(
    'REMORA_ERR_CAPTURE_TOOL_MISSING',
    `${tool} was not found on PATH: install the Debian package "${debianPackage(tool)}"`,
  );
}

/** Fails with REMORA_ERR_CAPTURE_TOOL_MISSING naming the first tool that is not on PATH. */
export function requireTools(tools: readonly string[]): void {
  for (const tool of tools) if (findTool(tool) === undefined) throw missing(tool);
}

/** Runs `tool args...` with `input` on stdin; resolves with its exit code and output (a non-zero code included). */
export function runTool(tool: string, args: readonly string[], input = ''): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(tool, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? missing(tool) : err);
    });
    // A tool that exits before reading all of stdin makes the write fail with EPIPE: its exit code tells why.
    child.stdin.on('error', () => {});
    child.on('close', (code, signal) => {
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.end(input);
  });
}

/** Like runTool, but a non-zero exit is a REMORA_ERR_CAPTURE_LOAD error carrying the tool's stderr. */
export async function runToolOrFail(
  tool: string,
  args: readonly string[],
  input = '',
  what = `${tool} ${args.join(' ')}`,
): Promise<string> {
  const r = await runTool(tool, args, input);
  if (r.code !== 0) {
    const detail = (r.stderr.trim() || r.stdout.trim() || 'no output').replace(/\n+/g, '\n  ');
    throw new CaptureError('REMORA_ERR_CAPTURE_LOAD', `${what} failed (exit ${r.code}):\n  ${detail}`);
  }
  return r.stdout;
}

// Test support: real clients — curl through execFile, openssl s_client, and a raw socket for exact bytes on the wire.

import { execFile, spawn } from 'node:child_process';
import { connect } from 'node:net';

export interface CurlResult {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Runs curl (required: the tests say so loudly when it is missing) and parses status, headers and body. */
export function curl(args: readonly string[]): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      ['-s', '-S', '-i', '--max-time', '20', ...args],
      { maxBuffer: 64 * 1024 * 1024, encoding: 'latin1' },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          return reject(new Error('curl is required by the integration tests: apt-get install curl'));
        }
        if (err) return reject(new Error(`curl ${args.join(' ')} failed: ${stderr || err.message}`));
        resolve(parseResponse(stdout));
      },
    );
  });
}

/**
 * Runs openssl s_client to 127.0.0.1:`port` with SNI localhost and `args`; resolves with its stdout and stderr
 * once the handshake is done and stdin closed.
 */
export function sClient(port: number, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', [
      's_client',
      '-connect',
      `127.0.0.1:${port}`,
      '-servername',
      'localhost',
      ...args,
    ]);
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
    child.stdin.end();
  });
}

export function parseResponse(raw: string): CurlResult {
  // Skip interim 1xx responses (e.g. 100 Continue) that curl -i prints before the final one.
  let rest = raw;
  for (;;) {
    const end = rest.indexOf('\r\n\r\n');
    const head = end < 0 ? rest : rest.slice(0, end);
    const status = Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head)?.[1] ?? 0);
    if (status >= 100 && status < 200 && end >= 0) {
      rest = rest.slice(end + 4);
      continue;
    }
    const headers: Record<string, string> = {};
    for (const line of head.split('\r\n').slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) {
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
    }
    return { status, headers, body: end < 0 ? '' : rest.slice(end + 4) };
  }
}

/** Sends raw bytes and collects everything the server sends until it closes (or timeoutMs passes). */
export function rawExchange(port: number, data: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1', () => s.write(data));
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('close', done);
    s.on('error', done);
  });
}

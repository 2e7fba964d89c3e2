// The admin HTTP server (Envoy's admin interface): routing, method rules, responses, and its own access log.

import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { SocketAddress } from '../../config/model.js';
import { AccessLogger } from '../observe/access_log.js';
import { formatAddress, newStreamInfo, type StreamInfo } from '../observe/stream_info.js';
import {
  type AdminResponse,
  type ContentKind,
  ENDPOINTS,
  type Endpoint,
  helpText,
  text,
} from './endpoints.js';
import type { AdminTarget } from './target.js';

export interface AdminServerOptions {
  /** Envoy's admin access_log_path: one line per admin request in the default format. "/dev/null" disables. */
  readonly accessLogPath?: string | undefined;
  /** Overrides the version shown by /server_info (default "remora/<package.json version>"). */
  readonly version?: string | undefined;
}

const CONTENT_TYPES: Readonly<Record<ContentKind, string>> = {
  text: 'text/plain; charset=UTF-8',
  json: 'application/json',
  html: 'text/html; charset=UTF-8',
  prometheus: 'text/plain; version=0.0.4; charset=UTF-8',
};

const BY_PATH: ReadonlyMap<string, Endpoint> = new Map(ENDPOINTS.map((e) => [e.path, e]));

export class AdminServer {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly accessLog: AccessLogger | undefined,
    /** The bound address (the real port when 0 was asked for). */
    readonly address: { readonly address: string; readonly port: number },
  ) {}

  /** Binds and starts serving; rejects when the address cannot be bound. */
  static async start(
    address: SocketAddress,
    target: AdminTarget,
    opts: AdminServerOptions = {},
  ): Promise<AdminServer> {
    const version = opts.version ?? `remora/${await packageVersion()}`;
    const accessLog =
      opts.accessLogPath && opts.accessLogPath !== '/dev/null'
        ? new AccessLogger({
            name: 'admin',
            sink: { kind: 'file', path: opts.accessLogPath },
            format: { kind: 'text', template: '' },
          })
        : undefined;
    const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
    server.on('request', (req, res) => handle(req, res, target, version, accessLog));
    server.on('clientError', (_err, socket: Socket) => {
      if (socket.writable && !socket.writableEnded) {
        socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      }
      socket.destroy();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, address.address, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await accessLog?.close();
      throw new Error(
        `admin: cannot listen on ${formatAddress(address.address, address.port)}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    // After listening, a server error (rare: e.g. EMFILE on accept) must not crash the process.
    server.on('error', () => {});
    const bound = server.address() as AddressInfo;
    return new AdminServer(server, accessLog, { address: bound.address, port: bound.port });
  }

  /** Stops listening, closes open connections, and flushes the admin access log. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
      await this.accessLog?.close();
    })();
    return this.closing;
  }
}

function handle(
  req: IncomingMessage,
  res: ServerResponse,
  target: AdminTarget,
  version: string,
  accessLog: AccessLogger | undefined,
): void {
  req.on('error', () => {});
  res.on('error', () => {});
  // The admin API takes no request bodies: discard any.
  req.resume();
  const info = accessLog ? startInfo(req) : undefined;
  const { path, query } = splitUrl(req.url ?? '/');
  let response: AdminResponse;
  try {
    response = route(req.method ?? 'GET', path, query, target, version);
  } catch (err) {
    response = text(`internal error on ${path}: ${(err as Error).message}\n`, 500);
  }
  send(res, req.method === 'HEAD', response);
  if (response.afterResponse) {
    const after = response.afterResponse;
    res.once('close', () => process.nextTick(after));
  }
  if (info && accessLog) {
    res.once('close', () => {
      info.durationMs = performance.now() - info.startMonotonic;
      info.responseCode = res.statusCode;
      info.bytesSent = Number(res.getHeader('content-length') ?? 0);
      accessLog.log(info);
    });
  }
}

function route(
  method: string,
  path: string,
  query: URLSearchParams,
  target: AdminTarget,
  version: string,
): AdminResponse {
  const endpoint = BY_PATH.get(path);
  if (!endpoint) return text(`invalid path. ${helpText()}`, 404);
  const mutates = endpoint.mutates(query);
  if (mutates && method !== 'POST') {
    return {
      ...text(`method ${method} not allowed for ${path}: it changes state, use POST\n`, 405),
      allow: 'POST',
    };
  }
  if (!mutates && method !== 'GET' && method !== 'HEAD' && method !== 'POST') {
    return { ...text(`method ${method} not allowed for ${path}: use GET\n`, 405), allow: 'GET, HEAD, POST' };
  }
  return endpoint.handle({ target, query, version });
}

function send(res: ServerResponse, head: boolean, response: AdminResponse): void {
  const body = Buffer.from(response.body, 'utf8');
  res.statusCode = response.status;
  res.setHeader('content-type', CONTENT_TYPES[response.kind]);
  res.setHeader('content-length', body.length);
  res.setHeader('cache-control', 'no-cache, max-age=0');
  res.setHeader('x-content-type-options', 'nosniff');
  if (response.allow) res.setHeader('allow', response.allow);
  res.end(head ? undefined : body);
}

/** Splits the request target without URL parsing rules that could move the path (e.g. "//host/x"). */
export function splitUrl(url: string): { path: string; query: URLSearchParams } {
  let target = url;
  const absolute = /^https?:\/\/[^/?#]*/i.exec(target);
  if (absolute) target = target.slice(absolute[0].length) || '/';
  const hash = target.indexOf('#');
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  // URLSearchParams never throws: malformed escapes are kept or replaced, not rejected.
  const query = new URLSearchParams(q < 0 ? '' : target.slice(q + 1));
  return { path, query };
}

function startInfo(req: IncomingMessage): StreamInfo {
  const s = req.socket;
  const info = newStreamInfo(
    `HTTP/${req.httpVersion}`,
    formatAddress(s.remoteAddress, s.remotePort),
    formatAddress(s.localAddress, s.localPort),
  );
  info.method = req.method;
  info.path = req.url;
  info.authority = req.headers.host;
  info.requestHeaders = req.headers;
  info.responseCodeDetails = 'admin_filter_response';
  return info;
}

let cachedVersion: Promise<string> | undefined;

/** The version of the nearest package.json named "remora" above this module. */
function packageVersion(): Promise<string> {
  cachedVersion ??= (async () => {
    let dir = dirname(fileURLToPath(import.meta.url));
    for (let i = 0; i < 8; i++) {
      try {
        const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'remora' && pkg.version) return pkg.version;
      } catch {
        // not here; keep walking up
      }
      const parent = dirname(dir);
      if (parent === dir) break;
      dir = parent;
    }
    return 'unknown';
  })();
  return cachedVersion;
}

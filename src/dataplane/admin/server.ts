// The admin HTTP server (Envoy's admin interface): routing, method rules, responses, and its own access log.
// Like Envoy's, it is served by the proxy's own HTTP/1.1 codec (limits, timeouts, smuggling defences included),
// which also spares a sidecar node:http (~1 MiB of its memory).

import { readFile } from 'node:fs/promises';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SocketAddress } from '../../config/model.js';
import { monotonicMs } from '../clock.js';
import { Http1ServerConnection, type ServerCodecOptions } from '../http/h1/server_connection.js';
import { headersRecord } from '../http/header_list.js';
import type { DownstreamStream } from '../http/stream.js';
import { listenOn } from '../network/listen.js';
import { AccessLogger } from '../observe/access_log.js';
import { formatAddress, newStreamInfo, plainIp, type StreamInfo } from '../observe/stream_info.js';
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

/**
 * The admin connections' HTTP/1.1 limits: Envoy's default header limits (60 KiB, 100 headers); a request head
 * within 10 s, a whole exchange idle for at most 30 s, a kept-alive connection idle for at most 5 s.
 */
const CODEC: ServerCodecOptions = {
  maxHeaderBytes: 60 * 1024,
  maxHeaders: 100,
  idleTimeoutMs: 5_000,
  headersTimeoutMs: 10_000,
  streamIdleTimeoutMs: 30_000,
  delayedCloseTimeoutMs: 1_000,
};

/** The admin API takes no request bodies: what a client sends is read and dropped. */
const DISCARD = { onData: () => undefined, onEnd: () => undefined, onError: () => undefined };

export class AdminServer {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
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
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      const conn = new Http1ServerConnection(socket, CODEC, {
        onRequest: (stream) => handle(stream, target, version, accessLog),
        // The codec answers what it cannot parse (400, 431, 408) and closes; nothing else to count here.
        onProtocolError: () => undefined,
      });
      conn.remoteIp = plainIp(socket.remoteAddress ?? '');
      conn.remoteAddress = formatAddress(socket.remoteAddress, socket.remotePort);
      conn.localAddress = formatAddress(socket.localAddress, socket.localPort);
      conn.start();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        listenOn(server, { host: address.address, port: address.port }, () => {
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
    return new AdminServer(server, sockets, accessLog, { address: bound.address, port: bound.port });
  }

  /** Stops listening, closes open connections, and flushes the admin access log. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        for (const socket of this.sockets) socket.destroy();
      });
      await this.accessLog?.close();
    })();
    return this.closing;
  }
}

function handle(
  stream: DownstreamStream,
  target: AdminTarget,
  version: string,
  accessLog: AccessLogger | undefined,
): void {
  stream.setBodySink(DISCARD);
  const info = accessLog ? startInfo(stream) : undefined;
  const { path, query } = splitUrl(stream.url);
  let response: AdminResponse;
  try {
    response = route(stream.method, path, query, target, version);
  } catch (err) {
    response = text(`internal error on ${path}: ${(err as Error).message}\n`, 500);
  }
  const bodyBytes = send(stream, response);
  const after = response.afterResponse;
  stream.onDone(() => {
    if (info && accessLog) {
      info.durationMs = monotonicMs() - info.startMonotonic;
      info.responseCode = stream.statusCode;
      info.bytesSent = stream.method === 'HEAD' ? 0 : bodyBytes;
      accessLog.log(info);
    }
    if (after) process.nextTick(after);
  });
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

/** Writes the response; returns the body's length in bytes. */
function send(stream: DownstreamStream, response: AdminResponse): number {
  const body = Buffer.from(response.body, 'utf8');
  const headers = [
    'content-type',
    CONTENT_TYPES[response.kind],
    'content-length',
    String(body.length),
    'cache-control',
    'no-cache, max-age=0',
    'x-content-type-options',
    'nosniff',
  ];
  if (response.allow) headers.push('allow', response.allow);
  stream.writeHead(response.status, headers);
  // A HEAD response keeps the content-length of the GET; the codec sends no body for it.
  stream.end(body);
  return body.length;
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

function startInfo(stream: DownstreamStream): StreamInfo {
  const c = stream.connection;
  const info = newStreamInfo(stream.protocol, c.remoteAddress, c.localAddress);
  info.method = stream.method;
  info.path = stream.url;
  info.authority = stream.authority || undefined;
  info.requestHeaders = headersRecord(stream.headers);
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

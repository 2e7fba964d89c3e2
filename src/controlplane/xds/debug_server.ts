// The control plane's debug HTTP port: /debug/syncz (every proxy's sync state as JSON) and /metrics (Prometheus).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AdsServer } from './ads_server.js';
import type { SnapshotCache } from './cache.js';

export interface DebugServerOptions {
  readonly ads: AdsServer;
  readonly cache: SnapshotCache;
  /** Default 127.0.0.1: the port tells what every proxy runs. */
  readonly host?: string;
  /** Default 15014 (Istio's control-plane monitoring port); 0 picks a free port. */
  readonly port?: number;
  /** More metrics for /metrics (the CA's), in Prometheus text format. */
  readonly moreMetrics?: () => string;
}

export class DebugServer {
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async listen(opts: DebugServerOptions): Promise<DebugServer> {
    const server = createServer((req, res) => handle(opts, req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 15014, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    return new DebugServer(server, typeof address === 'object' && address !== null ? address.port : 0);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

function handle(opts: DebugServerOptions, req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain', 'only GET is served here\n');
    return;
  }
  switch (path) {
    case '/debug/syncz': {
      const proxies = opts.ads.status().map((p) => {
        const r = opts.cache.rejection(p.nodeKey);
        // The last snapshot refused as inconsistent for this proxy (it keeps the one before).
        const rejectedSnapshot = r && { errors: r.errors, at: new Date(r.at).toISOString() };
        return { ...p, rejectedSnapshot };
      });
      send(res, 200, 'application/json', `${JSON.stringify(proxies, null, 2)}\n`);
      return;
    }
    case '/metrics':
      send(
        res,
        200,
        'text/plain; version=0.0.4; charset=utf-8',
        opts.ads.metrics.render() + (opts.moreMetrics?.() ?? ''),
      );
      return;
    default:
      send(res, 404, 'text/plain', 'not found: try /debug/syncz or /metrics\n');
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

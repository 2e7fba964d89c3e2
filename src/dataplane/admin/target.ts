// What the admin server may see and do in the running proxy: the contract between admin/ and the server.

import type { Bootstrap } from '../../config/model.js';
import type { StatsStore } from '../observe/stats.js';
import type { ContextCertificates } from '../tls/reloading_context.js';
import type { DynamicDump } from '../xds/dynamic_config.js';

export type ServerState = 'PRE_INITIALIZING' | 'INITIALIZING' | 'LIVE' | 'DRAINING';

export interface HostStatus {
  /** "10.0.0.1:8080" */
  readonly address: string;
  readonly weight: number;
  readonly priority: number;
  /** e.g. "healthy", or "/failed_active_hc" style flags joined. */
  readonly healthFlags: string;
  readonly healthy: boolean;
  readonly activeRequests: number;
  readonly activeConnections: number;
  readonly totalRequests: number;
  readonly errorRequests: number;
  readonly successRequests: number;
  readonly connectFailures: number;
}

export interface ClusterStatus {
  readonly name: string;
  readonly type: string;
  readonly lbPolicy: string;
  readonly circuitBreakers: {
    readonly maxConnections: number;
    readonly maxPendingRequests: number;
    readonly maxRequests: number;
    readonly maxRetries: number;
  };
  readonly hosts: readonly HostStatus[];
}

export interface ListenerStatus {
  readonly name: string;
  /** "127.0.0.1:10000" — the bound address, with the real port when configured as 0. */
  readonly address: string;
}

export interface AdminTarget {
  readonly stats: StatsStore;
  readonly startTime: number;
  state(): ServerState;
  /** The bootstrap the proxy runs, for /config_dump and /server_info. */
  bootstrap(): Bootstrap;
  /** The raw bootstrap as the user wrote it (parsed YAML/JSON), for /config_dump. */
  rawBootstrap(): unknown;
  /** The resources from xDS (with their versions and update times), when the proxy has dynamic_resources. */
  dynamicResources?(): DynamicDump | undefined;
  /** The certificates of every live TLS context, for /certs. */
  certificates?(): readonly ContextCertificates[];
  clusters(): readonly ClusterStatus[];
  listeners(): readonly ListenerStatus[];
  /** Stops accepting on listeners; graceful = let in-flight finish while answering with connection: close. */
  drainListeners(opts: { graceful: boolean; inboundOnly: boolean }): void;
  /** Makes /ready and health answer 503 (Envoy's /healthcheck/fail) or back. */
  setHealthcheckFailed(failed: boolean): void;
  healthcheckFailed(): boolean;
  /** Sets the log level ("trace" .. "critical", "off"); returns false when unknown. */
  setLogLevel(level: string): boolean;
  logLevel(): string;
  /** Begins graceful shutdown, as SIGTERM does. */
  quit(): void;
}

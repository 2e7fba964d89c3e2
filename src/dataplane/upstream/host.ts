// One upstream endpoint of a cluster: its address, weight, health, counters and its connection pool.

import type { FilterMetadata } from '../../config/model.js';
import type { UpstreamTls } from '../tls/upstream.js';
import type { LbHost } from './lb/types.js';

/** Per-host counters as /clusters prints them (Envoy's host stats). */
export interface HostCounters {
  cxTotal: number;
  cxActive: number;
  cxConnectFail: number;
  rqTotal: number;
  rqError: number;
  rqSuccess: number;
  rqTimeout: number;
}

export class Host implements LbHost {
  readonly key: string;
  activeRequests = 0;
  /** HEALTHY or UNKNOWN; DEGRADED hosts are `degraded`, UNHEALTHY (DRAINING, TIMEOUT) ones neither. */
  healthy = true;
  degraded = false;
  /** Its LbEndpoint's metadata, and its locality's (from EDS or the load assignment); undefined when none. */
  metadata: FilterMetadata | undefined = undefined;
  localityMetadata: FilterMetadata | undefined = undefined;
  /**
   * Its transport socket: TLS, or plaintext when undefined. The cluster chooses it from the metadata
   * (transport_socket_matches) and changes it when EDS changes the metadata; new connections take the current one.
   */
  tls: UpstreamTls | undefined = undefined;
  readonly counters: HostCounters = {
    cxTotal: 0,
    cxActive: 0,
    cxConnectFail: 0,
    rqTotal: 0,
    rqError: 0,
    rqSuccess: 0,
    rqTimeout: 0,
  };

  constructor(
    readonly address: string,
    readonly port: number,
    readonly weight: number,
    readonly priority: number,
    readonly hostname: string | undefined,
  ) {
    this.key = hostKey(address, port);
  }
}

export function hostKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

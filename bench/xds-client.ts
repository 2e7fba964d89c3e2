// A simulated sidecar for `npm run bench:xds`: one state-of-the-world ADS stream on its own connection that
// subscribes as Envoy does (CDS and LDS wildcard, then EDS and RDS for the names they carry) and ACKs every response.

import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { XDS_TYPE_URLS, xdsProtos } from '../src/xds/protos.js';
import type { ProxyNode } from './xds-mesh.js';

const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

interface RawAny {
  type_url: string;
  value: Uint8Array;
}

interface Response {
  version_info: string;
  resources: RawAny[];
  type_url: string;
  nonce: string;
}

/** Decoders shared by every client of a process; responses are decoded by protobufjs only, as bytes come. */
class Codec {
  readonly service: grpc.ServiceDefinition;
  readonly cluster: protobuf.Type;
  readonly listener: protobuf.Type;
  readonly hcm: protobuf.Type;
  readonly assignment: protobuf.Type;
  readonly route: protobuf.Type;

  constructor() {
    const protos = xdsProtos();
    const root = protos.root;
    const response = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    const sotw = protos.adsService.StreamAggregatedResources!;
    this.service = {
      StreamAggregatedResources: {
        ...sotw,
        responseDeserialize: (bytes: Buffer) => response.decode(bytes) as unknown as Response,
      },
    };
    this.cluster = root.lookupType('envoy.config.cluster.v3.Cluster');
    this.listener = root.lookupType('envoy.config.listener.v3.Listener');
    this.hcm = root.lookupType(
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    );
    this.assignment = root.lookupType('envoy.config.endpoint.v3.ClusterLoadAssignment');
    this.route = root.lookupType('envoy.config.route.v3.RouteConfiguration');
  }
}

let codec: Codec | undefined;
let Client: grpc.ServiceClientConstructor | undefined;

/** Loads the protos and builds the decoders now rather than on the first client. */
export function warmUp(): void {
  codec ??= new Codec();
}

/** EDS cluster names of a CDS response: the `service_name` of each EDS cluster, else its name. */
function edsNames(c: Codec, resources: readonly RawAny[]): Set<string> {
  const out = new Set<string>();
  for (const r of resources) {
    const cl = c.cluster.decode(r.value) as unknown as {
      name: string;
      type?: number;
      eds_cluster_config?: { service_name?: string };
    };
    if (cl.type === 3) out.add(cl.eds_cluster_config?.service_name || cl.name);
  }
  return out;
}

/** RDS names of an LDS response: each HTTP connection manager's `rds.route_config_name`. */
function rdsNames(c: Codec, resources: readonly RawAny[]): Set<string> {
  const out = new Set<string>();
  const fromHcm = (any: RawAny | undefined): void => {
    if (any?.type_url !== HCM_TYPE) return;
    const hcm = c.hcm.decode(any.value) as unknown as { rds?: { route_config_name?: string } };
    if (hcm.rds?.route_config_name) out.add(hcm.rds.route_config_name);
  };
  type Chain = { filters?: { typed_config?: RawAny }[] };
  for (const r of resources) {
    const l = c.listener.decode(r.value) as unknown as {
      filter_chains?: Chain[];
      default_filter_chain?: Chain;
      api_listener?: { api_listener?: RawAny };
    };
    for (const chain of [
      ...(l.filter_chains ?? []),
      ...(l.default_filter_chain ? [l.default_filter_chain] : []),
    ])
      for (const f of chain.filters ?? []) fromHcm(f.typed_config);
    fromHcm(l.api_listener?.api_listener);
  }
  return out;
}

type Cla = {
  cluster_name: string;
  endpoints?: { lb_endpoints?: { endpoint?: { address?: { socket_address?: { address?: string } } } }[] }[];
};

/** Whether a ClusterLoadAssignment lists `address`. */
function listsAddress(cla: Cla, address: string): boolean {
  for (const group of cla.endpoints ?? [])
    for (const lb of group.lb_endpoints ?? [])
      if (lb.endpoint?.address?.socket_address?.address === address) return true;
  return false;
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable between processes of one machine. */
export const clock = (): number => performance.timeOrigin + performance.now();

interface TypeState {
  names: Set<string>;
  /** The nonce of the last response received: what the next request must carry. */
  nonce: string;
  version: string;
  received: Set<string>;
  acked: boolean;
}

export class SimulatedProxy {
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, Response>;
  private readonly types = new Map<string, TypeState>();
  private nodeSent = false;
  private watch: { address: string; done: (at: number) => void } | undefined;
  private syncedResolve: (() => void) | undefined;
  /** Resolves once every type is ACKed and every subscribed EDS and RDS name has arrived. */
  readonly synced: Promise<void>;
  error: Error | undefined;
  responses = 0;

  constructor(
    port: number,
    private readonly node: ProxyNode,
  ) {
    codec ??= new Codec();
    Client ??= grpc.makeGenericClientConstructor(codec.service, 'AggregatedDiscoveryService');
    // A connection of its own, as every sidecar has: grpc-js would otherwise share one subchannel among clients.
    this.client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
    });
    const method = (this.client as unknown as Record<string, () => grpc.ClientDuplexStream<object, Response>>)
      .StreamAggregatedResources!;
    this.call = method.call(this.client);
    this.synced = new Promise((resolve) => {
      this.syncedResolve = resolve;
    });
    this.call.on('data', (r: Response) => this.onResponse(r));
    this.call.on('error', (err) => {
      this.error ??= err;
    });
    this.call.on('end', () => {
      this.error ??= new Error('stream ended');
    });
    this.subscribe(XDS_TYPE_URLS.cluster, new Set());
    this.subscribe(XDS_TYPE_URLS.listener, new Set());
  }

  /** Calls `done` with the time of the ACK of the first EDS response that lists `address`. */
  expect(address: string, done: (at: number) => void): void {
    this.watch = { address, done };
  }

  close(): void {
    this.call.cancel();
    this.client.close();
  }

  private state(typeUrl: string): TypeState {
    let s = this.types.get(typeUrl);
    if (s === undefined) {
      s = { names: new Set(), nonce: '', version: '', received: new Set(), acked: false };
      this.types.set(typeUrl, s);
    }
    return s;
  }

  private send(typeUrl: string, s: TypeState, errorDetail?: string): void {
    const req: Record<string, unknown> = {
      version_info: s.version,
      resource_names: [...s.names],
      type_url: typeUrl,
      response_nonce: s.nonce,
    };
    if (errorDetail !== undefined) req.error_detail = { code: 3, message: errorDetail };
    // Like Envoy with set_node_on_first_message_only: the node goes on the first request of the stream.
    if (!this.nodeSent) {
      req.node = this.node;
      this.nodeSent = true;
    }
    this.call.write(req);
  }

  private subscribe(typeUrl: string, names: Set<string>): void {
    const s = this.state(typeUrl);
    s.names = names;
    this.send(typeUrl, s);
  }

  private onResponse(r: Response): void {
    this.responses++;
    const c = codec!;
    const s = this.state(r.type_url);
    s.nonce = r.nonce;
    s.version = r.version_info;
    let follow: [string, Set<string>] | undefined;
    let seen = false;
    try {
      if (r.type_url === XDS_TYPE_URLS.cluster) follow = [XDS_TYPE_URLS.endpoint, edsNames(c, r.resources)];
      else if (r.type_url === XDS_TYPE_URLS.listener)
        follow = [XDS_TYPE_URLS.route, rdsNames(c, r.resources)];
      else if (r.type_url === XDS_TYPE_URLS.endpoint) {
        for (const res of r.resources) {
          const cla = c.assignment.decode(res.value) as unknown as Cla;
          s.received.add(cla.cluster_name);
          if (this.watch !== undefined && listsAddress(cla, this.watch.address)) seen = true;
        }
      } else if (r.type_url === XDS_TYPE_URLS.route) {
        for (const res of r.resources)
          s.received.add((c.route.decode(res.value) as unknown as { name: string }).name);
      }
    } catch (err) {
      this.send(r.type_url, s, (err as Error).message);
      return;
    }
    // ACK first, as a proxy that applied the update would; then widen the EDS/RDS subscription it implies.
    this.send(r.type_url, s);
    s.acked = true;
    if (seen) {
      const w = this.watch!;
      this.watch = undefined;
      w.done(clock());
    }
    if (follow !== undefined) {
      const [typeUrl, names] = follow;
      const cur = this.state(typeUrl);
      if (names.size !== cur.names.size || [...names].some((n) => !cur.names.has(n)))
        this.subscribe(typeUrl, names);
    }
    this.checkSynced();
  }

  private checkSynced(): void {
    if (this.syncedResolve === undefined) return;
    for (const t of [XDS_TYPE_URLS.cluster, XDS_TYPE_URLS.listener]) if (!this.types.get(t)?.acked) return;
    for (const t of [XDS_TYPE_URLS.endpoint, XDS_TYPE_URLS.route]) {
      const s = this.types.get(t);
      if (s === undefined || s.names.size === 0) continue;
      if (!s.acked) return;
      for (const n of s.names) if (!s.received.has(n)) return;
    }
    this.syncedResolve();
    this.syncedResolve = undefined;
  }
}

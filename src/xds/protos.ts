// Envoy's xDS protos, loaded at run time from @grpc/grpc-js-xds's deps: the ADS service definition for grpc-js,
// and resources converted between Envoy's proto3 JSON and google.protobuf.Any.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { ConfigError, ValidationResult } from '../config/result.js';
import { ProtoJson, ProtoJsonError, type RawAny } from './proto_json.js';

export type { RawAny as Any } from './proto_json.js';

const PREFIX = 'type.googleapis.com/';

/** The xDS resource types, by their type URLs. */
export const XDS_TYPE_URLS = {
  listener: `${PREFIX}envoy.config.listener.v3.Listener`,
  route: `${PREFIX}envoy.config.route.v3.RouteConfiguration`,
  cluster: `${PREFIX}envoy.config.cluster.v3.Cluster`,
  endpoint: `${PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  secret: `${PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
} as const;

/** The entry points; their imports bring in everything else (core, wrappers, Struct, google.rpc.Status). */
const PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'stats/config.proto', // Istio's istio.stats filter config, from Remora's own proto/ directory
  'istio/envoy/config/filter/http/alpn/v2alpha1/config.proto', // Istio's istio.alpn filter config, from proto/
];

/**
 * The include roots: the four trees under @grpc/grpc-js-xds/deps, protobufjs's own google/protobuf, then Remora's
 * proto/ (the extensions Envoy's API does not have).
 */
export function protoIncludeDirs(): string[] {
  // Resolved from this module (or the bundle) so the files are found wherever node_modules is.
  const require = createRequire(import.meta.url);
  const xds = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const pbjs = dirname(require.resolve('protobufjs/package.json'));
  // From the bundle (dist/remora.mjs, or a chunk of it in dist/chunks/) or from dist/src/xds/protos.js.
  const own = ['../proto', '../../proto', '../../../proto']
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .filter((dir) => existsSync(dir));
  return [
    ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(xds, 'deps', d)),
    pbjs,
    ...own.slice(0, 1),
  ];
}

/** A node as proxies send it (canonical JSON: metadata is plain JSON). */
export interface NodeJson {
  readonly id?: string;
  readonly cluster?: string;
  readonly metadata?: Record<string, unknown>;
  readonly locality?: Record<string, unknown>;
  readonly user_agent_name?: string;
  readonly user_agent_version?: string;
  readonly client_features?: readonly string[];
  readonly [field: string]: unknown;
}

export interface ErrorDetail {
  readonly code?: number;
  readonly message?: string;
}

export interface DiscoveryRequest {
  readonly version_info?: string;
  readonly node?: NodeJson;
  readonly resource_names?: readonly string[];
  readonly type_url?: string;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

export interface DiscoveryResponse {
  readonly version_info?: string;
  readonly resources?: readonly RawAny[];
  readonly type_url?: string;
  readonly nonce?: string;
}

export interface DeltaDiscoveryRequest {
  readonly node?: NodeJson;
  readonly type_url?: string;
  readonly resource_names_subscribe?: readonly string[];
  readonly resource_names_unsubscribe?: readonly string[];
  readonly initial_resource_versions?: Readonly<Record<string, string>>;
  readonly response_nonce?: string;
  readonly error_detail?: ErrorDetail;
}

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  readonly resource?: RawAny;
}

export interface DeltaDiscoveryResponse {
  readonly system_version_info?: string;
  readonly resources?: readonly DeltaResource[];
  readonly type_url?: string;
  readonly removed_resources?: readonly string[];
  readonly nonce?: string;
}

const ADS = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** The loaded protos and the conversions built on them. Load once per process with `xdsProtos()`. */
export class XdsProtos {
  readonly json: ProtoJson;
  /** The ADS service for grpc-js servers and clients (messages as the interfaces above). */
  readonly adsService: ServiceDefinition;

  constructor(readonly root: protobuf.Root) {
    this.json = new ProtoJson(root);
    const method = (name: string, req: string, res: string): MethodDefinition<object, object> => ({
      path: `/${ADS}/${name}`,
      requestStream: true,
      responseStream: true,
      originalName: name,
      requestSerialize: this.serializer(req),
      requestDeserialize: this.deserializer(req),
      responseSerialize: this.serializer(res),
      responseDeserialize: this.deserializer(res),
    });
    const v3 = 'envoy.service.discovery.v3';
    this.adsService = {
      StreamAggregatedResources: method(
        'StreamAggregatedResources',
        `${v3}.DiscoveryRequest`,
        `${v3}.DiscoveryResponse`,
      ),
      DeltaAggregatedResources: method(
        'DeltaAggregatedResources',
        `${v3}.DeltaDiscoveryRequest`,
        `${v3}.DeltaDiscoveryResponse`,
      ),
    };
  }

  /**
   * A resource given as proto3 JSON (snake_case or lowerCamelCase names; nested `typed_config` with `@type`)
   * packed into an Any of `typeUrl`. A `@type` in the object itself must name the same type. Every field that the
   * proto does not have, and every malformed value, is an error with its path.
   */
  encodeResource(typeUrl: string, json: unknown): ValidationResult<RawAny> {
    const type = this.json.typeOfUrl(typeUrl);
    if (type === undefined || !typeUrl.includes('/')) {
      return { ok: false, errors: [{ path: '', message: `unknown type URL ${JSON.stringify(typeUrl)}` }] };
    }
    const errors: ConfigError[] = [];
    let body = json;
    if (typeof json === 'object' && json !== null && '@type' in json) {
      const { '@type': given, ...rest } = json as Record<string, unknown>;
      if (given !== typeUrl) errors.push({ path: '@type', message: `expected ${JSON.stringify(typeUrl)}` });
      body = rest;
    }
    const message = this.json.fromJson(type, body, '', errors);
    if (errors.length > 0) return { ok: false, errors };
    return { ok: true, value: { type_url: typeUrl, value: type.encode(message).finish() } };
  }

  /**
   * An Any as canonical proto3 JSON with snake_case names, without its own `@type` (nested Anys keep theirs):
   * what the config translators (translateListener, translateCluster, ...) read.
   */
  decodeAny(any: RawAny): ValidationResult<Record<string, unknown>> {
    const type = this.json.typeOfUrl(any.type_url);
    if (type === undefined) {
      return {
        ok: false,
        errors: [{ path: '', message: `unknown type URL ${JSON.stringify(any.type_url)}` }],
      };
    }
    try {
      const message = type.decode(any.value);
      return {
        ok: true,
        value: this.json.toJson(type, message, { expandAny: true }) as Record<string, unknown>,
      };
    } catch (err) {
      if (err instanceof ProtoJsonError)
        return { ok: false, errors: [{ path: err.path, message: err.detail }] };
      const message = `malformed ${type.fullName.slice(1)}: ${(err as Error).message}`;
      return { ok: false, errors: [{ path: '', message }] };
    }
  }

  /** Stream messages: plain objects as the interfaces above, Anys kept as bytes. */
  private serializer(name: string): (value: object) => Buffer {
    const type = this.root.lookupType(name);
    return (value) => {
      const errors: ConfigError[] = [];
      const message = this.json.fromJson(type, value, '', errors);
      if (errors.length > 0) {
        const detail = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
        throw new ProtoJsonError('', `cannot encode ${name}: ${detail}`);
      }
      return Buffer.from(type.encode(message).finish());
    };
  }

  private deserializer(name: string): (bytes: Buffer) => object {
    const type = this.root.lookupType(name);
    return (bytes) => this.json.toJson(type, type.decode(bytes), { expandAny: false }) as object;
  }
}

let loaded: XdsProtos | undefined;

/** The protos, loaded on first use (a few hundred milliseconds) and shared by the whole process. */
export function xdsProtos(): XdsProtos {
  if (loaded === undefined) loaded = new XdsProtos(loadRoot(protoIncludeDirs()));
  return loaded;
}

function loadRoot(includeDirs: readonly string[]): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const file = join(dir, target);
      if (existsSync(file)) return file;
    }
    // Not on disk: protobufjs may still hold it (google/protobuf/*.proto are bundled in it).
    return target;
  };
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  return root;
}

/** `xdsProtos().encodeResource(...)`. */
export function encodeResource(typeUrl: string, json: unknown): ValidationResult<RawAny> {
  return xdsProtos().encodeResource(typeUrl, json);
}

/** `xdsProtos().decodeAny(...)`. */
export function decodeAny(any: RawAny): ValidationResult<Record<string, unknown>> {
  return xdsProtos().decodeAny(any);
}

// A Consul service's health entries turned into mesh objects: a Service, and a WorkloadEntry per healthy instance.

import { createHash } from 'node:crypto';
import type { ManifestError, ParseResult } from '../manifests/parse.js';
import { validateObject } from '../manifests/parse.js';

/** The label that ties a Consul service's WorkloadEntries to its Service (the Service's selector). */
export const CONSUL_SERVICE_LABEL = 'consul.remora.io/service';

/** Instance `Meta.protocol` values that name the service port (and so its mesh protocol); others are detected. */
const PROTOCOLS = new Set(['http', 'http2', 'grpc', 'tcp', 'tls', 'https']);

export interface ConsulInstance {
  readonly node: string;
  readonly id: string;
  /** The service's address, else its node's (Consul's rule). */
  readonly address: string;
  readonly port: number;
  readonly meta: Readonly<Record<string, string>>;
  readonly weight: number | undefined;
  /** Every check of the instance and of its node is `passing`. */
  readonly passing: boolean;
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

/**
 * The instances of a `/v1/health/service/<name>` answer; throws when it is not the shape Consul sends (an entry
 * without a node or a service, a port that is not a number), since then nothing in it can be trusted.
 */
export function instancesOf(body: unknown): ConsulInstance[] {
  if (!Array.isArray(body)) throw new Error('expected a JSON list of health entries');
  return body.map((entry, i) => {
    const e = record(entry);
    const node = record(e?.Node);
    const svc = record(e?.Service);
    if (node === undefined || svc === undefined) throw new Error(`entry ${i}: no Node or Service`);
    const port = svc.Port;
    if (typeof port !== 'number' || !Number.isInteger(port))
      throw new Error(`entry ${i}: Service.Port is not an integer`);
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(record(svc.Meta) ?? {})) if (typeof v === 'string') meta[k] = v;
    const checks = Array.isArray(e?.Checks) ? e.Checks : [];
    const passing = checks.every((c) => record(c)?.Status === 'passing');
    const weights = record(svc.Weights);
    const address =
      typeof svc.Address === 'string' && svc.Address !== '' ? svc.Address : String(node.Address ?? '');
    return {
      node: String(node.Node ?? ''),
      id: String(svc.ID ?? ''),
      address,
      port,
      meta,
      weight: typeof weights?.Passing === 'number' ? weights.Passing : undefined,
      passing,
    };
  });
}

/** Meta entries that are valid Kubernetes labels become the instance's labels; the rest cannot be selected on. */
function labelsOf(meta: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  const name = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
  for (const [k, v] of Object.entries(meta)) {
    if (k.length > 63 || !name.test(k) || v.length > 63 || (v !== '' && !name.test(v))) continue;
    out[k] = v;
  }
  return out;
}

/** A DNS-subdomain name for an instance: readable, and unique through a digest of node and service ID. */
function instanceName(service: string, i: ConsulInstance): string {
  const id = i.id
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 40);
  const digest = createHash('sha256').update(`${i.node}/${i.id}`).digest('hex').slice(0, 8);
  return [service.toLowerCase().slice(0, 60), id, digest].filter((p) => p !== '').join('-');
}

export interface ConsulObjectsOptions {
  /** The mesh namespace of Consul's services. */
  readonly namespace: string;
  readonly source: string;
  /** Names the origin in messages: `consul service "web"`. */
  readonly key: string;
}

/**
 * The Service `<name>` (in `namespace`) with one port, and a WorkloadEntry for each instance whose checks all
 * pass. The port's number is the instances' port (the lowest when they differ: each instance then serves it on
 * its own port); its name is the instances' `Meta.protocol` when that is a protocol the mesh knows (`http`,
 * `grpc`, ...), else `port` (left to protocol detection). Instances' `Meta` entries that are valid labels become
 * labels, so DestinationRule subsets can select them; `Weights.Passing` is the endpoint's weight. Every object
 * goes through the manifest validators: what they reject (a service name that is not a DNS label, an address
 * that is not an IP) is reported with its field path.
 */
export function consulObjects(
  service: string,
  instances: readonly ConsulInstance[],
  o: ConsulObjectsOptions,
): ParseResult {
  const ports = instances.map((i) => i.port).filter((p) => p >= 1 && p <= 65535);
  const protocol = [...instances]
    .sort((a, b) => (a.id < b.id ? -1 : 1))
    .map((i) => i.meta.protocol?.toLowerCase())
    .find((p) => p !== undefined && PROTOCOLS.has(p));
  const portName = protocol ?? 'port';
  const selector = { [CONSUL_SERVICE_LABEL]: service };
  const manifests: unknown[] = [
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: service, namespace: o.namespace },
      spec: {
        selector,
        ports: ports.length === 0 ? [] : [{ name: portName, port: Math.min(...ports), targetPort: portName }],
      },
    },
  ];
  for (const i of instances) {
    if (!i.passing) continue;
    manifests.push({
      apiVersion: 'networking.istio.io/v1',
      kind: 'WorkloadEntry',
      metadata: { name: instanceName(service, i), namespace: o.namespace },
      spec: {
        address: i.address,
        ports: { [portName]: i.port },
        labels: { ...labelsOf(i.meta), ...selector },
        ...(i.weight !== undefined && i.weight >= 1 ? { weight: i.weight } : {}),
      },
    });
  }
  const out: ParseResult = { objects: [], errors: [] };
  for (const [n, m] of manifests.entries()) {
    const r = validateObject(m, { source: o.source, file: o.key });
    if (r.object !== undefined) out.objects.push(r.object);
    for (const e of r.errors)
      out.errors.push({
        file: o.key,
        where: `object ${n + 1}`,
        object: r.describe,
        path: e.path,
        message: e.message,
        code: 'RA0102',
      } satisfies ManifestError);
    // Without its Service (a name that is not a DNS label), the instances would be workloads of nothing.
    if (n === 0 && r.object === undefined) break;
  }
  return out;
}

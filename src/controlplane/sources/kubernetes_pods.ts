// Pods as the Kubernetes source needs them: workloads of the snapshot, and labels and service account for slice
// endpoints, found by name or IP.

import { isIP } from 'node:net';
import type {
  ContainerPort,
  EndpointSliceObject,
  PodObject,
  PortProtocol,
  SliceEndpoint,
} from '../model/objects.js';

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

const PROTOCOLS: ReadonlySet<string> = new Set<PortProtocol>(['TCP', 'UDP', 'SCTP']);

/**
 * The named ports of the containers, then of the sidecar containers (init containers that keep running,
 * `restartPolicy: Always`): the order in which Kubernetes resolves a Service's named `targetPort`.
 */
function namedPorts(spec: Record<string, unknown> | undefined): ContainerPort[] {
  const containers = [
    ...list(spec?.containers),
    ...list(spec?.initContainers).filter((c) => record(c)?.restartPolicy === 'Always'),
  ];
  const out: ContainerPort[] = [];
  for (const c of containers) {
    for (const p of list(record(c)?.ports)) {
      const port = record(p);
      const name = str(port?.name);
      const number = port?.containerPort;
      const protocol = port?.protocol ?? 'TCP';
      if (name === undefined || !Number.isInteger(number) || typeof protocol !== 'string') continue;
      if ((number as number) < 1 || (number as number) > 65535 || !PROTOCOLS.has(protocol)) continue;
      out.push({ name, port: number as number, protocol: protocol as PortProtocol });
    }
  }
  return out;
}

/**
 * The Pod as the mesh sees it, from an API object (read leniently: the API server has validated it, and a field
 * Remora cannot use is left out rather than refused); undefined when it has no name. Only these fields are read:
 * a change elsewhere (conditions, container statuses, annotations) is no change to the mesh.
 */
export function podObjectOf(pod: unknown, source: string): PodObject | undefined {
  const p = record(pod);
  const md = record(p?.metadata);
  const spec = record(p?.spec);
  const status = record(p?.status);
  const name = str(md?.name);
  if (name === undefined) return undefined;
  const namespace = str(md?.namespace) ?? 'default';
  const labels: Record<string, string> = {};
  const raw = record(md?.labels) ?? {};
  for (const k of Object.keys(raw).sort()) {
    const v = raw[k];
    if (typeof v === 'string') labels[k] = v;
  }
  const hostNetwork = spec?.hostNetwork === true;
  // The primary IP (`podIP`) first, then the others of `podIPs` (a dual-stack Pod's second family).
  const ips = new Set<string>();
  if (!hostNetwork) {
    for (const ip of [status?.podIP, ...list(status?.podIPs).map((i) => record(i)?.ip)]) {
      const s = str(ip);
      if (s !== undefined && isIP(s) !== 0) ips.add(s);
    }
  }
  return {
    kind: 'Pod',
    meta: { name, namespace, labels },
    origin: { source, file: `/api/v1/namespaces/${namespace}/pods/${name}` },
    addresses: [...ips],
    hostNetwork,
    // `serviceAccount` is the deprecated spelling older clients still write.
    serviceAccount: str(spec?.serviceAccountName) ?? str(spec?.serviceAccount),
    ports: namedPorts(spec),
  };
}

/** Succeeded or Failed: its containers will not run again, and its IP may already be another Pod's. */
function finished(pod: unknown): boolean {
  const phase = record(record(pod)?.status)?.phase;
  return phase === 'Succeeded' || phase === 'Failed';
}

function same(a: PodObject, b: PodObject): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The Pods of the cluster that have not finished, indexed by `namespace/name` and by `namespace|ip`. An IP held by
 * two Pods at once (one terminating, one starting) names neither: endpoints are then joined by their targetRef
 * only. A terminating Pod (`deletionTimestamp` set) stays until it is deleted or finishes: its sidecar is still
 * draining, and its inbound ports must not change under it.
 */
export class PodIndex {
  private readonly byName = new Map<string, PodObject>();
  private readonly byIp = new Map<string, Set<string>>();

  /** `source` names the objects' origin. */
  constructor(private readonly source: string) {}

  /** Returns whether anything the mesh uses changed (most Pod updates are status changes it ignores). */
  set(pod: unknown): boolean {
    if (finished(pod)) return this.delete(pod);
    const o = podObjectOf(pod, this.source);
    if (o === undefined) return false;
    const key = `${o.meta.namespace}/${o.meta.name}`;
    const had = this.byName.get(key);
    if (had !== undefined && same(had, o)) return false;
    if (had !== undefined) this.unindex(key, had);
    this.byName.set(key, o);
    for (const ip of o.addresses) {
      const k = `${o.meta.namespace}|${ip}`;
      const s = this.byIp.get(k) ?? new Set<string>();
      s.add(key);
      this.byIp.set(k, s);
    }
    return true;
  }

  delete(pod: unknown): boolean {
    const md = record(record(pod)?.metadata);
    const name = str(md?.name);
    if (name === undefined) return false;
    const key = `${str(md?.namespace) ?? 'default'}/${name}`;
    const had = this.byName.get(key);
    if (had === undefined) return false;
    this.unindex(key, had);
    this.byName.delete(key);
    return true;
  }

  /** Every Pod, sorted by namespace and name: the workloads the source delivers. */
  objects(): PodObject[] {
    return [...this.byName.keys()].sort().map((k) => this.byName.get(k)!);
  }

  /** The slice with each endpoint's Pod labels and service account, found by targetRef, else by address. */
  join(slice: EndpointSliceObject): EndpointSliceObject {
    let changed = false;
    const endpoints = slice.endpoints.map((e): SliceEndpoint => {
      const pod = this.podOf(slice.meta.namespace, e);
      if (pod === undefined) return e;
      changed = true;
      return { ...e, labels: pod.meta.labels, serviceAccount: pod.serviceAccount };
    });
    return changed ? { ...slice, endpoints } : slice;
  }

  private podOf(namespace: string, e: SliceEndpoint): PodObject | undefined {
    if (e.targetRef !== undefined) {
      const [kind, ns, ...rest] = e.targetRef.split('/');
      if (kind !== 'Pod') return undefined;
      return this.byName.get(`${ns === '' ? namespace : ns}/${rest.join('/')}`);
    }
    const owners = this.byIp.get(`${namespace}|${e.address}`);
    if (owners === undefined || owners.size !== 1) return undefined;
    return this.byName.get([...owners][0]!);
  }

  private unindex(key: string, o: PodObject): void {
    for (const ip of o.addresses) {
      const k = `${o.meta.namespace}|${ip}`;
      const s = this.byIp.get(k);
      s?.delete(key);
      if (s?.size === 0) this.byIp.delete(k);
    }
  }
}

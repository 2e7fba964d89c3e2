// Pods as the Kubernetes source needs them: labels and service account, found by name or IP for slice endpoints.

import { isIP } from 'node:net';
import type { EndpointSliceObject, Labels, SliceEndpoint } from '../model/objects.js';

interface PodInfo {
  readonly namespace: string;
  readonly name: string;
  readonly labels: Labels;
  readonly serviceAccount: string | undefined;
  /** Pod IPs; empty for host-network Pods, whose IP (the node's) says nothing about which Pod it is. */
  readonly ips: readonly string[];
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** The fields of a Pod the mesh uses, from an API object; undefined when it lacks a name. */
export function podInfoOf(pod: unknown): PodInfo | undefined {
  const p = record(pod);
  const md = record(p?.metadata);
  const spec = record(p?.spec);
  const status = record(p?.status);
  const name = str(md?.name);
  if (name === undefined) return undefined;
  const labels: Record<string, string> = {};
  const raw = record(md?.labels) ?? {};
  for (const k of Object.keys(raw).sort()) {
    const v = raw[k];
    if (typeof v === 'string') labels[k] = v;
  }
  const ips = new Set<string>();
  if (spec?.hostNetwork !== true) {
    const one = str(status?.podIP);
    if (one !== undefined && isIP(one) !== 0) ips.add(one);
    for (const item of Array.isArray(status?.podIPs) ? status.podIPs : []) {
      const ip = str(record(item)?.ip);
      if (ip !== undefined && isIP(ip) !== 0) ips.add(ip);
    }
  }
  return {
    namespace: str(md?.namespace) ?? 'default',
    name,
    labels,
    // `serviceAccount` is the deprecated spelling older clients still write.
    serviceAccount: str(spec?.serviceAccountName) ?? str(spec?.serviceAccount),
    ips: [...ips].sort(),
  };
}

function same(a: PodInfo, b: PodInfo): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The Pods of the cluster, indexed by `namespace/name` and by `namespace|ip`. An IP held by two Pods at once (one
 * terminating, one starting) names neither: endpoints are then joined by their targetRef only.
 */
export class PodIndex {
  private readonly byName = new Map<string, PodInfo>();
  private readonly byIp = new Map<string, Set<string>>();

  /** Returns whether anything the mesh uses changed (most Pod updates are status changes it ignores). */
  set(pod: unknown): boolean {
    const info = podInfoOf(pod);
    if (info === undefined) return false;
    const key = `${info.namespace}/${info.name}`;
    const had = this.byName.get(key);
    if (had !== undefined && same(had, info)) return false;
    if (had !== undefined) this.unindex(key, had);
    this.byName.set(key, info);
    for (const ip of info.ips) {
      const k = `${info.namespace}|${ip}`;
      const s = this.byIp.get(k) ?? new Set<string>();
      s.add(key);
      this.byIp.set(k, s);
    }
    return true;
  }

  delete(pod: unknown): boolean {
    const info = podInfoOf(pod);
    if (info === undefined) return false;
    const key = `${info.namespace}/${info.name}`;
    const had = this.byName.get(key);
    if (had === undefined) return false;
    this.unindex(key, had);
    this.byName.delete(key);
    return true;
  }

  /** The slice with each endpoint's Pod labels and service account, found by targetRef, else by address. */
  join(slice: EndpointSliceObject): EndpointSliceObject {
    let changed = false;
    const endpoints = slice.endpoints.map((e): SliceEndpoint => {
      const pod = this.podOf(slice.meta.namespace, e);
      if (pod === undefined) return e;
      changed = true;
      return { ...e, labels: pod.labels, serviceAccount: pod.serviceAccount };
    });
    return changed ? { ...slice, endpoints } : slice;
  }

  private podOf(namespace: string, e: SliceEndpoint): PodInfo | undefined {
    if (e.targetRef !== undefined) {
      const [kind, ns, ...rest] = e.targetRef.split('/');
      if (kind !== 'Pod') return undefined;
      return this.byName.get(`${ns === '' ? namespace : ns}/${rest.join('/')}`);
    }
    const owners = this.byIp.get(`${namespace}|${e.address}`);
    if (owners === undefined || owners.size !== 1) return undefined;
    return this.byName.get([...owners][0]!);
  }

  private unindex(key: string, info: PodInfo): void {
    for (const ip of info.ips) {
      const k = `${info.namespace}|${ip}`;
      const s = this.byIp.get(k);
      s?.delete(key);
      if (s?.size === 0) this.byIp.delete(k);
    }
  }
}

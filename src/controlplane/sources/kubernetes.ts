// The Kubernetes source: Services, EndpointSlices, Pods (and Istio's kinds) from an API server, by list+watch.

import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { isPlainObject } from '../../config/reader.js';
import { type ManifestError, type ParseResult, validateObject } from '../manifests/parse.js';
import type { MeshObject } from '../model/objects.js';
import type { BackoffOptions } from './backoff.js';
import { KeyedManifests } from './keyed_manifests.js';
import { CollectionInformer, type CollectionSpec } from './kubernetes_informer.js';
import { PodIndex } from './kubernetes_pods.js';
import { Coalesced, settlesWithin } from './lifecycle.js';
import type { Source, SourceListener, SourceProblem } from './source.js';

export interface KubernetesSourceOptions {
  /** A kubeconfig file; without it, client-node's default (`KUBECONFIG`, `~/.kube/config`, or in-cluster). */
  readonly kubeconfig?: string;
  /** A context of the kubeconfig other than its current one. */
  readonly context?: string;
  /** Also read Istio's VirtualService, DestinationRule, Sidecar and WorkloadEntry (their CRDs must exist). */
  readonly istio?: boolean;
  readonly name?: string;
  /** Waits between attempts after a list or watch fails. */
  readonly backoff?: BackoffOptions;
  /** How long start() waits for every collection's first list before it fails. */
  readonly startTimeoutMs?: number;
}

const ISTIO_KINDS = ['VirtualService', 'DestinationRule', 'Sidecar', 'WorkloadEntry'] as const;

type List = KubernetesListObject<KubernetesObject>;

/**
 * Follows the cluster's Services and EndpointSlices (validated like manifests, so the same fields are supported and
 * rejected), and its Pods. A Pod is delivered as a workload (its IPs, labels, service account and named container
 * ports, so that a sidecar's inbound ports resolve a Service's named `targetPort`), never as an endpoint: a
 * Service's endpoints are its EndpointSlices', onto which the Pods' labels and service account are joined (by
 * `targetRef`, else by IP in the slice's namespace), so DestinationRule subsets select Pods as in Istio. A Pod
 * update that changes none of what the mesh reads (status churn) delivers nothing. With `istio`, also Istio's policy
 * kinds and WorkloadEntries. Objects are read in all namespaces.
 *
 * An invalid object is reported with its API path and field path; the last good version of that object keeps
 * serving until it is fixed or deleted. When a list or watch fails, the last objects keep serving, a problem says
 * so (RA0402), and the informer retries with back-off, resuming its watch (or listing again after a 410 Gone).
 */
export class KubernetesSource implements Source {
  readonly name: string;
  private readonly server: string;
  private readonly informers: CollectionInformer[] = [];
  private readonly manifests: KeyedManifests;
  private readonly pods: PodIndex;
  /** Collections whose last list or watch failed, by kind. */
  private readonly failures = new Map<string, { reason: string; problem: SourceProblem }>();
  private readonly startTimeoutMs: number;
  private listener: SourceListener | undefined;
  /** Changes that arrive together (a relist, a burst of watch events) make one update. */
  private readonly updates = new Coalesced(() => this.emit());
  private closed = false;

  constructor(options: KubernetesSourceOptions = {}) {
    this.name = options.name ?? 'kubernetes';
    this.manifests = new KeyedManifests(this.name);
    this.pods = new PodIndex(this.name);
    this.startTimeoutMs = options.startTimeoutMs ?? 30_000;
    const kc = new KubeConfig();
    if (options.kubeconfig !== undefined) kc.loadFromFile(options.kubeconfig);
    else kc.loadFromDefault();
    if (options.context !== undefined) kc.setCurrentContext(options.context);
    const cluster = kc.getCurrentCluster();
    if (cluster === null)
      throw new Error(
        `source "kubernetes": no current cluster in ${options.kubeconfig ?? 'the default kubeconfig'}`,
      );
    this.server = cluster.server;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const specs: CollectionSpec[] = [
      {
        kind: 'Service',
        apiVersion: 'v1',
        path: '/api/v1/services',
        list: () => core.listServiceForAllNamespaces(),
      },
      {
        kind: 'EndpointSlice',
        apiVersion: 'discovery.k8s.io/v1',
        path: '/apis/discovery.k8s.io/v1/endpointslices',
        list: () => discovery.listEndpointSliceForAllNamespaces(),
      },
      { kind: 'Pod', apiVersion: 'v1', path: '/api/v1/pods', list: () => core.listPodForAllNamespaces() },
    ];
    if (options.istio) {
      for (const kind of ISTIO_KINDS) {
        const plural = `${kind.toLowerCase()}s`;
        specs.push({
          kind,
          apiVersion: 'networking.istio.io/v1',
          path: `/apis/networking.istio.io/v1/${plural}`,
          list: () =>
            custom.listClusterCustomObject({
              group: 'networking.istio.io',
              version: 'v1',
              plural,
            }) as Promise<List>,
        });
      }
    }
    for (const spec of specs) {
      this.informers.push(
        new CollectionInformer(
          kc,
          spec,
          {
            upsert: (o) => this.upsert(spec, o),
            remove: (o) => this.remove(spec, o),
            failed: (err) => this.failed(spec, err),
            healthy: () => this.healthy(spec),
          },
          { initialMs: 200, maxMs: 10_000, ...options.backoff },
        ),
      );
    }
  }

  /** Resolves once every collection has been listed; fails if one cannot be within `startTimeoutMs`. */
  async start(listener: SourceListener): Promise<void> {
    this.listener = listener;
    for (const i of this.informers) void i.start();
    const all = Promise.all(this.informers.map((i) => i.synced));
    const inTime = await settlesWithin(all, this.startTimeoutMs);
    if (this.closed) return;
    if (!inTime) {
      const missing = this.informers.filter((i) => !i.isSynced).map((i) => i.spec.kind);
      const why = [...this.failures].map(([kind, f]) => `${kind}: ${f.reason}`).join('; ');
      await this.close();
      throw new Error(`kubernetes ${this.server}: cannot list ${missing.join(', ')}${why ? `: ${why}` : ''}`);
    }
    this.updates.open();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.updates.close();
    await Promise.all(this.informers.map((i) => i.close()));
  }

  private upsert(spec: CollectionSpec, o: KubernetesObject): void {
    if (spec.kind === 'Pod') {
      if (this.pods.set(o)) this.updates.schedule();
      return;
    }
    // Listed objects arrive as client-node's model classes, watched ones as parsed JSON: read both as JSON.
    const raw = (isPlainObject(o) ? { ...o } : JSON.parse(JSON.stringify(o))) as Record<string, unknown>;
    // Items of a list of built-in kinds carry no apiVersion and kind.
    raw.apiVersion ??= spec.apiVersion;
    raw.kind ??= spec.kind;
    const key = this.keyOf(spec, o);
    if (key === undefined) return;
    const rv = o.metadata?.resourceVersion;
    if (this.manifests.setParsed(key, this.validate(raw, key), rv)) this.updates.schedule();
  }

  private remove(spec: CollectionSpec, o: KubernetesObject): void {
    const changed =
      spec.kind === 'Pod' ? this.pods.delete(o) : this.manifests.delete(this.keyOf(spec, o) ?? '');
    if (changed) this.updates.schedule();
  }

  /** The object's API path (`/api/v1/namespaces/shop/services/reviews`): where a user finds it, in messages. */
  private keyOf(spec: CollectionSpec, o: KubernetesObject): string | undefined {
    const name = o.metadata?.name;
    if (name === undefined) return undefined;
    const slash = spec.path.lastIndexOf('/');
    return `${spec.path.slice(0, slash)}/namespaces/${o.metadata?.namespace ?? 'default'}${spec.path.slice(slash)}/${name}`;
  }

  private validate(raw: Record<string, unknown>, key: string): ParseResult {
    const r = validateObject(raw, { source: this.name, file: key });
    const errors = r.errors.map(
      (e): ManifestError => ({
        file: key,
        where: 'object',
        object: r.describe,
        path: e.path,
        message: e.message,
        code: e.path === 'kind' || e.path === 'apiVersion' ? 'RA0103' : 'RA0102',
      }),
    );
    return { objects: r.object === undefined ? [] : [r.object], errors };
  }

  private failed(spec: CollectionSpec, err: unknown): void {
    const reason = describeError(err);
    if (this.failures.get(spec.kind)?.reason === reason) return;
    const message = `kubernetes ${this.server}: list/watch of ${spec.kind} (${spec.path}) failed (${reason}); serving the last objects read until it is back`;
    this.failures.set(spec.kind, { reason, problem: { code: 'RA0402', message } });
    this.updates.schedule();
  }

  private healthy(spec: CollectionSpec): void {
    if (this.failures.delete(spec.kind)) this.updates.schedule();
  }

  private emit(): void {
    if (this.closed || this.listener === undefined) return;
    const { objects, problems } = this.manifests.current();
    const joined: MeshObject[] = objects.map((o) => (o.kind === 'EndpointSlice' ? this.pods.join(o) : o));
    const failures = [...this.failures.values()].map((f) => f.problem);
    this.listener({
      kind: 'full',
      objects: [...joined, ...this.pods.objects()],
      problems: [...failures, ...problems],
    });
  }
}

/**
 * One line for a failed call: client-node's API errors carry the HTTP code and the server's Status (whose
 * `message` says what went wrong) in a multi-line message with every response header; watch errors carry
 * `statusCode`; network errors their `code`.
 */
function describeError(err: unknown): string {
  const e = err as { message?: string; code?: unknown; statusCode?: number; body?: unknown };
  if (typeof e.code === 'number') {
    const body = e.body as { message?: unknown; reason?: unknown } | string | undefined;
    const detail =
      typeof body === 'object' && body !== null && typeof body.message === 'string'
        ? body.message
        : typeof body === 'string' && body !== ''
          ? body.slice(0, 200)
          : (/\nMessage: ([^\n]*)/.exec(e.message ?? '')?.[1] ?? '');
    return `HTTP ${e.code}${detail ? `: ${detail}` : ''}`;
  }
  if (typeof e.statusCode === 'number') return `HTTP ${e.statusCode}: ${e.message ?? ''}`;
  const text = (e.message ?? String(err)).split('\n')[0] ?? '';
  return typeof e.code === 'string' && !text.includes(e.code) ? `${e.code} ${text}` : text;
}

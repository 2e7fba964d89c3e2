// The control plane: sources merged into a mesh snapshot, configuration generated per group of connected
// proxies, served over ADS, with the debug port beside it.

import { formatErrors } from '../config/result.js';
import { DEFAULT_TRUST_DOMAIN } from '../identity/spiffe.js';
import type { NodeJson } from '../xds/protos.js';
import { CaServer, type CaServerOptions, renderCaMetrics } from './ca/server.js';
import { encodeConfig, ResourceEncoder } from './generator/encode.js';
import { generateEndpoints, type ProxyPlan, planProxy } from './generator/generate.js';
import { groupKey, type ProxyGroup, proxyGroup, proxyIdentity } from './generator/identity.js';
import { identitiesDigest } from './generator/mtls.js';
import type { MeshSnapshot } from './model/snapshot.js';
import { type MeshState, type RegistryProblem, SourceRegistry } from './sources/registry.js';
import type { Source } from './sources/source.js';
import { AdsServer } from './xds/ads_server.js';
import { Snapshot, SnapshotCache } from './xds/cache.js';
import { DebugServer } from './xds/debug_server.js';
import type { XdsResource } from './xds/resource.js';
import { renderGuardMetrics, WorkloadGuard } from './xds/workload_guard.js';

export type ControlPlaneLog = (level: 'info' | 'warning' | 'error', message: string) => void;

export interface ControlPlaneOptions {
  /** Added to the registry in this order: on a conflict the first wins. */
  readonly sources: readonly Source[];
  /** ADS (gRPC, plaintext); default 0.0.0.0:15010. */
  readonly xdsHost?: string;
  readonly xdsPort?: number;
  /**
   * Default true. False serves no plaintext port: ADS is then served only beside the CA, over mTLS (which needs
   * `ca`).
   */
  readonly plaintextXds?: boolean;
  /** /debug/syncz and /metrics; default 127.0.0.1:15014. */
  readonly debugHost?: string;
  readonly debugPort?: number;
  readonly debounceMs?: number;
  readonly maxDebounceMs?: number;
  readonly log?: ControlPlaneLog;
  /**
   * The certificate authority's service (gRPC over TLS), started beside ADS and stopped with it. Its port serves
   * ADS too, to workloads with a certificate of the mesh, each only its own identity's configuration.
   */
  readonly ca?: Omit<CaServerOptions, 'log' | 'alsoServe'>;
  /** Of the identities sidecars verify each other by (default cluster.local). */
  readonly trustDomain?: string;
}

/** The proxies of one node key: what they are, and what was last generated for them. */
interface Group {
  readonly proxy: ProxyGroup;
  /** The snapshot parts the plan was made from; endpoints are not among them. */
  configKey: string | undefined;
  plan: ProxyPlan | undefined;
  /** The plan's listeners, routes and clusters, encoded. */
  config: readonly XdsResource[];
}

/**
 * What a group's plan is made of: the services and policies, of the workloads only those its proxies may be, and
 * of the others the identities each service runs as (mTLS peers are verified by them), so Pods coming and going
 * elsewhere in the mesh plan no group again.
 */
function configKeyOf(mesh: MeshSnapshot, proxy: ProxyGroup): string {
  const v = mesh.versions;
  const own = JSON.stringify(mesh.workloadsWithLabels(proxy.namespace, proxy.labels));
  return `${v.services}|${v.policies}|${own}|${identitiesDigest(mesh)}`;
}

/** The node key of a proxy: its group; a node that cannot be read is refused with every problem. */
function nodeKeyOf(node: NodeJson): string {
  const id = proxyIdentity(node);
  if (!id.ok)
    throw new Error(`remora: cannot configure this proxy: ${formatErrors(id.errors).replace(/\n/g, '; ')}`);
  return groupKey(id.value);
}

/**
 * Runs the three stages: sources -> snapshot (SourceRegistry), snapshot x group -> resources (the generator, for
 * the groups that have a connected proxy only), resources -> proxies (SnapshotCache and AdsServer, which debounce
 * and push what changed). A change of services or policies plans each group again (of workloads, the groups whose
 * proxies they may be); an endpoint-only
 * change only regenerates the ClusterLoadAssignments, so only EDS is pushed.
 */
export class ControlPlane {
  private readonly cache = new SnapshotCache({ nodeKey: nodeKeyOf });
  private readonly encoder = new ResourceEncoder();
  private readonly groups = new Map<string, Group>();
  private ads: AdsServer | undefined;
  private debug: DebugServer | undefined;
  private ca: CaServer | undefined;
  private guard: WorkloadGuard | undefined;
  private unsubscribe: (() => void) | undefined;
  private problems: readonly RegistryProblem[] = [];
  private closing: Promise<void> | undefined;
  private trustDomain = DEFAULT_TRUST_DOMAIN;

  private constructor(
    private readonly registry: SourceRegistry,
    private snapshot: MeshSnapshot,
    private readonly log: ControlPlaneLog,
  ) {}

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const log = opts.log ?? (() => undefined);
    const plaintext = opts.plaintextXds ?? true;
    if (!plaintext && opts.ca === undefined)
      throw new Error('without the plaintext xDS port, xDS is served only beside the CA: the CA must run');
    const registry = new SourceRegistry();
    for (const s of opts.sources) registry.add(s);
    const state = await registry.start();
    const cp = new ControlPlane(registry, state.snapshot, log);
    cp.trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    cp.reportProblems(state.problems);
    cp.unsubscribe = registry.subscribe((s) => cp.onState(s));
    try {
      const adsOptions = {
        cache: cp.cache,
        debounceMs: opts.debounceMs,
        maxDebounceMs: opts.maxDebounceMs,
        proxies: {
          opened: (key: string, node: NodeJson) => cp.opened(key, node),
          closed: (key: string) => cp.closed(key),
        },
      };
      const ads = plaintext
        ? await AdsServer.listen({ ...adsOptions, host: opts.xdsHost, port: opts.xdsPort })
        : AdsServer.create(adsOptions);
      cp.ads = ads;
      cp.debug = await DebugServer.listen({
        ads,
        cache: cp.cache,
        host: opts.debugHost,
        port: opts.debugPort,
        moreMetrics: () =>
          (cp.ca === undefined ? '' : renderCaMetrics(cp.ca.stats())) +
          (cp.guard === undefined ? '' : renderGuardMetrics(cp.guard.stats())),
      });
      if (opts.ca !== undefined) {
        const authority = opts.ca.authority;
        const guard = new WorkloadGuard(
          {
            trustDomain: authority.trustDomain,
            intermediates: authority.issuerChain(),
            roots: authority.roots,
          },
          log,
        );
        cp.guard = guard;
        cp.ca = await CaServer.listen({ ...opts.ca, log, alsoServe: (server) => ads.serveOn(server, guard) });
      }
    } catch (err) {
      await cp.close();
      throw err;
    }
    return cp;
  }

  /** The plaintext xDS port; 0 when it is off. */
  get xdsPort(): number {
    return this.ads?.port ?? 0;
  }

  get debugPort(): number {
    return this.debug?.port ?? 0;
  }

  /** The CA service's port, which serves ADS over mTLS too; 0 when it does not run. */
  get caPort(): number {
    return this.ca?.port ?? 0;
  }

  /** The snapshot being served. */
  get mesh(): MeshSnapshot {
    return this.snapshot;
  }

  /** Groups with a connected proxy. */
  groupKeys(): string[] {
    return [...this.groups.keys()];
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.unsubscribe?.();
      await Promise.allSettled([this.ads?.close(), this.debug?.close(), this.ca?.close()]);
      await this.registry.close();
    })();
    return this.closing;
  }

  private onState(state: MeshState): void {
    this.reportProblems(state.problems);
    if (!state.changed || state.snapshot === this.snapshot) return;
    this.snapshot = state.snapshot;
    for (const key of this.groups.keys()) this.rebuild(key);
    // Resources no group used in this round and the one before are forgotten.
    this.encoder.nextRound();
  }

  private opened(key: string, node: NodeJson): void {
    const id = proxyIdentity(node);
    if (!id.ok) return;
    const proxy = proxyGroup({ ...id.value, trustDomain: this.trustDomain });
    this.groups.set(key, { proxy, configKey: undefined, plan: undefined, config: [] });
    this.log('info', `proxy group ${key} connected (first node ${JSON.stringify(id.value.id)})`);
    this.rebuild(key);
  }

  private closed(key: string): void {
    this.groups.delete(key);
    this.cache.delete(key);
    this.log('info', `proxy group ${key}: no proxy left`);
  }

  /** Generates the group's snapshot from the current mesh and hands it to the cache, which pushes what changed. */
  private rebuild(key: string): void {
    const g = this.groups.get(key);
    if (g === undefined) return;
    const mesh = this.snapshot;
    try {
      const configKey = configKeyOf(mesh, g.proxy);
      if (g.plan === undefined || g.configKey !== configKey) {
        const plan = planProxy(mesh, g.proxy);
        const encoded = encodeConfig(plan, this.encoder);
        if (!encoded.ok) return this.failed(key, formatErrors(encoded.errors));
        g.plan = plan;
        g.config = encoded.value;
        g.configKey = configKey;
      }
      const eds = encodeConfig({ endpoints: generateEndpoints(mesh, g.plan.targets) }, this.encoder);
      if (!eds.ok) return this.failed(key, formatErrors(eds.errors));
      const snapshot = Snapshot.of([...g.config, ...eds.value]);
      if (!snapshot.ok) return this.failed(key, formatErrors(snapshot.errors));
      const set = this.cache.set(key, snapshot.value);
      if (!set.ok) this.failed(key, formatErrors(set.errors));
    } catch (err) {
      this.failed(key, (err as Error).stack ?? String(err));
    }
  }

  /** A generator bug: the group keeps its last good snapshot; the error is logged, never thrown at a stream. */
  private failed(key: string, detail: string): void {
    this.log(
      'error',
      `proxy group ${key}: configuration not updated (mesh ${this.snapshot.version}): ${detail}`,
    );
  }

  /**
   * Logs each problem of the sources once when it appears, and once when it is gone. A problem replaced by one of
   * the same source and code (an unreachable store, now for another reason) has not gone: the new one is logged.
   */
  private reportProblems(problems: readonly RegistryProblem[]): void {
    const id = (p: RegistryProblem) => `${p.source}\0${p.message}`;
    const kind = (p: RegistryProblem) => `${p.source}\0${p.code}`;
    const before = new Set(this.problems.map(id));
    const now = new Set(problems.map(id));
    const replaced = new Map<string, number>();
    for (const p of problems) {
      if (before.has(id(p))) continue;
      this.log('warning', `${p.message} [${p.code}]`);
      replaced.set(kind(p), (replaced.get(kind(p)) ?? 0) + 1);
    }
    for (const p of this.problems) {
      if (now.has(id(p))) continue;
      const n = replaced.get(kind(p)) ?? 0;
      if (n > 0) replaced.set(kind(p), n - 1);
      else this.log('info', `resolved: ${p.message} [${p.code}]`);
    }
    this.problems = problems;
  }
}

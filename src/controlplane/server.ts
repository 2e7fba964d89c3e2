// The control plane: sources merged into a mesh snapshot, configuration generated per group of connected
// proxies, served over ADS, with the debug port beside it.

import { formatErrors } from '../config/result.js';
import type { NodeJson } from '../xds/protos.js';
import { encodeConfig, ResourceEncoder } from './generator/encode.js';
import { generateEndpoints, type ProxyPlan, planProxy } from './generator/generate.js';
import { groupKey, type ProxyGroup, proxyGroup, proxyIdentity } from './generator/identity.js';
import type { MeshSnapshot } from './model/snapshot.js';
import { type MeshState, type RegistryProblem, SourceRegistry } from './sources/registry.js';
import type { Source } from './sources/source.js';
import { AdsServer } from './xds/ads_server.js';
import { Snapshot, SnapshotCache } from './xds/cache.js';
import { DebugServer } from './xds/debug_server.js';
import type { XdsResource } from './xds/resource.js';

export type ControlPlaneLog = (level: 'info' | 'warning' | 'error', message: string) => void;

export interface ControlPlaneOptions {
  /** Added to the registry in this order: on a conflict the first wins. */
  readonly sources: readonly Source[];
  /** ADS (gRPC, plaintext); default 0.0.0.0:15010. */
  readonly xdsHost?: string;
  readonly xdsPort?: number;
  /** /debug/syncz and /metrics; default 127.0.0.1:15014. */
  readonly debugHost?: string;
  readonly debugPort?: number;
  readonly debounceMs?: number;
  readonly maxDebounceMs?: number;
  readonly log?: ControlPlaneLog;
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
 * and push what changed). A change of services, workloads or policies plans each group again; an endpoint-only
 * change only regenerates the ClusterLoadAssignments, so only EDS is pushed.
 */
export class ControlPlane {
  private readonly cache = new SnapshotCache({ nodeKey: nodeKeyOf });
  private readonly encoder = new ResourceEncoder();
  private readonly groups = new Map<string, Group>();
  private ads: AdsServer | undefined;
  private debug: DebugServer | undefined;
  private unsubscribe: (() => void) | undefined;
  private problems: readonly RegistryProblem[] = [];
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly registry: SourceRegistry,
    private snapshot: MeshSnapshot,
    private readonly log: ControlPlaneLog,
  ) {}

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const log = opts.log ?? (() => undefined);
    const registry = new SourceRegistry();
    for (const s of opts.sources) registry.add(s);
    const state = await registry.start();
    const cp = new ControlPlane(registry, state.snapshot, log);
    cp.reportProblems(state.problems);
    cp.unsubscribe = registry.subscribe((s) => cp.onState(s));
    try {
      cp.ads = await AdsServer.listen({
        cache: cp.cache,
        host: opts.xdsHost,
        port: opts.xdsPort,
        debounceMs: opts.debounceMs,
        maxDebounceMs: opts.maxDebounceMs,
        proxies: { opened: (key, node) => cp.opened(key, node), closed: (key) => cp.closed(key) },
      });
      cp.debug = await DebugServer.listen({
        ads: cp.ads,
        cache: cp.cache,
        host: opts.debugHost,
        port: opts.debugPort,
      });
    } catch (err) {
      await cp.close();
      throw err;
    }
    return cp;
  }

  get xdsPort(): number {
    return this.ads?.port ?? 0;
  }

  get debugPort(): number {
    return this.debug?.port ?? 0;
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
      await Promise.allSettled([this.ads?.close(), this.debug?.close()]);
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
    this.groups.set(key, { proxy: proxyGroup(id.value), configKey: undefined, plan: undefined, config: [] });
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
      const v = mesh.versions;
      const configKey = `${v.services}|${v.workloads}|${v.policies}`;
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

  /** Logs each problem of the sources once, when it appears. */
  private reportProblems(problems: readonly RegistryProblem[]): void {
    const before = new Set(this.problems.map((p) => `${p.source}\0${p.message}`));
    for (const p of problems)
      if (!before.has(`${p.source}\0${p.message}`)) this.log('warning', `${p.message} [${p.code}]`);
    this.problems = problems;
  }
}

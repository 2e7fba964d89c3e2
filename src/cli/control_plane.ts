// `remora control-plane`: builds the sources the flags ask for, serves ADS and the debug port until SIGTERM/SIGINT.

import { ControlPlane } from '../controlplane/server.js';
import { CachedSource } from '../controlplane/sources/cached_source.js';
import { builtinSourceKinds } from '../controlplane/sources/kinds.js';
import type { Source } from '../controlplane/sources/source.js';
import { SourceStateFile } from '../controlplane/sources/source_store.js';
import { DataDir } from '../controlplane/state/data_dir.js';

export interface ControlPlaneFlags {
  readonly configDir?: string;
  readonly xdsPort: number;
  readonly debugPort: number;
  /** Comma-separated etcd client URLs. */
  readonly etcd?: string;
  readonly kubeconfig?: string;
  readonly consul?: string;
  readonly dataDir?: string;
}

interface Output {
  write(text: string): unknown;
}

/**
 * The sources whose state a data directory keeps: the remote ones, which a restart may find unreachable. Not `files`
 * (its directory is already on the local disk, and a copy would only serve files their owner has deleted) nor `dns`
 * (derived from the other sources' ServiceEntries, and resolved again at start).
 */
const KEPT_KINDS: ReadonlySet<string> = new Set(['etcd', 'kubernetes', 'consul']);

/**
 * The sources the flags ask for, in registry order (the first wins a conflict): files, etcd, Kubernetes, Consul,
 * then DNS, which resolves the ServiceEntries of all of them. Each is built by its registered kind; the etcd,
 * Kubernetes and Consul clients load when their source starts. With a data directory, the remote sources keep
 * their last state in it.
 */
function sourcesOf(
  flags: ControlPlaneFlags,
  dataDir: DataDir | undefined,
): { sources: Source[]; described: string[]; kept: string[] } {
  const kinds = builtinSourceKinds();
  const sources: Source[] = [];
  const described: string[] = [];
  const kept: string[] = [];
  const add = (kind: string, options: Record<string, unknown>, what: string) => {
    const create = () => kinds.create(kind, options);
    if (dataDir !== undefined && KEPT_KINDS.has(kind)) {
      const s = new CachedSource({
        create,
        stateFile: (name) => new SourceStateFile(dataDir.sourceStateFile(name), name),
      });
      sources.push(s);
      kept.push(s.name);
    } else sources.push(create());
    described.push(what);
  };
  if (flags.configDir !== undefined) add('files', { dir: flags.configDir }, `files (${flags.configDir})`);
  if (flags.etcd !== undefined) add('etcd', { endpoints: flags.etcd }, `etcd (${flags.etcd})`);
  if (flags.kubeconfig !== undefined)
    add('kubernetes', { kubeconfig: flags.kubeconfig }, `kubernetes (${flags.kubeconfig})`);
  if (flags.consul !== undefined) add('consul', { address: flags.consul }, `consul (${flags.consul})`);
  add('dns', {}, 'dns');
  return { sources, described, kept };
}

export async function runControlPlane(
  flags: ControlPlaneFlags,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  const log = (level: string, message: string) =>
    err.write(`[${new Date().toISOString()}][${level}] ${message}\n`);
  if ([flags.configDir, flags.etcd, flags.kubeconfig, flags.consul].every((f) => f === undefined)) {
    err.write(
      'remora control-plane: give at least one source: --config-dir, --etcd, --kubeconfig or --consul\n',
    );
    return 2;
  }
  let dataDir: DataDir | undefined;
  if (flags.dataDir !== undefined) {
    try {
      dataDir = await DataDir.open(flags.dataDir);
    } catch (e) {
      err.write(`remora control-plane: --data-dir ${flags.dataDir}: ${(e as Error).message}\n`);
      return 2;
    }
  }
  let built: ReturnType<typeof sourcesOf>;
  try {
    built = sourcesOf(flags, dataDir);
  } catch (e) {
    err.write(`remora control-plane: ${(e as Error).message}\n`);
    return 2;
  }
  let cp: ControlPlane;
  try {
    cp = await ControlPlane.start({
      sources: built.sources,
      xdsPort: flags.xdsPort,
      debugPort: flags.debugPort,
      log,
    });
  } catch (e) {
    await Promise.allSettled(built.sources.map((s) => s.close()));
    err.write(`remora control-plane: cannot start: ${(e as Error).message}\n`);
    return 1;
  }
  const mesh = cp.mesh;
  const kept =
    dataDir === undefined
      ? ''
      : `; data dir ${dataDir.root} (keeps ${built.kept.length === 0 ? 'no source' : built.kept.join(', ')})`;
  out.write(
    `remora control-plane: xDS on 0.0.0.0:${cp.xdsPort}, debug on 127.0.0.1:${cp.debugPort}; ` +
      `sources: ${built.described.join(', ')}${kept}; mesh ${mesh.version}: ${mesh.services.length} services\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log('info', `received ${sig}: stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await cp.close();
  return 0;
}

// `remora control-plane`: builds the sources the flags ask for, serves ADS, the CA and the debug port until
// SIGTERM/SIGINT.

import { Authenticator } from '../controlplane/ca/authenticate.js';
import {
  type CertificateAuthority,
  DEFAULT_CERT_TTL_MS,
  MIN_CERT_TTL_MS,
  serverNames,
} from '../controlplane/ca/authority.js';
import { KubeTokenReviewer } from '../controlplane/ca/kube_review.js';
import { NoCaHomeError, openAuthority } from '../controlplane/ca/load.js';
import { type CaServerOptions, DEFAULT_CA_PORT } from '../controlplane/ca/server.js';
import { JoinTokenStore } from '../controlplane/ca/tokens.js';
import { formatLifetime } from '../controlplane/ca/ttl.js';
import { ControlPlane } from '../controlplane/server.js';
import { CachedSource } from '../controlplane/sources/cached_source.js';
import { builtinSourceKinds } from '../controlplane/sources/kinds.js';
import type { Source } from '../controlplane/sources/source.js';
import { SourceStateFile } from '../controlplane/sources/source_store.js';
import { DataDir } from '../controlplane/state/data_dir.js';
import { DEFAULT_TRUST_DOMAIN, trustDomainProblem } from '../identity/spiffe.js';

export interface ControlPlaneFlags {
  readonly configDir?: string;
  readonly xdsPort: number;
  /** False (`--no-plaintext-xds`): no plaintext xDS port; xDS only over mTLS on the CA's port. */
  readonly plaintextXds?: boolean;
  readonly debugPort: number;
  /** Comma-separated etcd client URLs. */
  readonly etcd?: string;
  readonly kubeconfig?: string;
  readonly consul?: string;
  readonly dataDir?: string;
  /** The CA's port; default 15012. Given, the CA must be able to run (see caSetup). */
  readonly caPort?: number;
  /** Default `cluster.local`. */
  readonly trustDomain?: string;
  /** The longest workload certificate lifetime, in milliseconds; default 24 h. */
  readonly certTtl?: number;
  readonly caCert?: string;
  readonly caKey?: string;
  readonly caChain?: string;
  /** More names (DNS or IP) for the CA service's certificate. */
  readonly caSan?: readonly string[];
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

type Log = (level: 'info' | 'warning' | 'error', message: string) => void;

/**
 * The CA the flags ask for: on whenever it has a home for its root (`--data-dir`, or `--ca-cert`/`--ca-key`).
 * Without one, the control plane runs without a CA (saying so) unless a CA flag was given, which is then an error:
 * a root that vanished on restart would strand every certificate it signed. Returns the message of a usage error.
 */
async function caSetup(
  flags: ControlPlaneFlags,
  dataDir: DataDir | undefined,
  log: Log,
): Promise<{ options: Omit<CaServerOptions, 'log'>; authority: CertificateAuthority } | undefined | string> {
  const trustDomain = flags.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  const problem = trustDomainProblem(trustDomain);
  if (problem !== undefined) return `--trust-domain: ${problem}`;
  const maxTtlMs = flags.certTtl ?? DEFAULT_CERT_TTL_MS;
  if (maxTtlMs < MIN_CERT_TTL_MS) return `--cert-ttl must be at least ${formatLifetime(MIN_CERT_TTL_MS)}`;
  let authority: CertificateAuthority;
  try {
    authority = await openAuthority({
      dataDir,
      caCert: flags.caCert,
      caKey: flags.caKey,
      caChain: flags.caChain,
      trustDomain,
      maxTtlMs,
      log,
    });
  } catch (e) {
    if (!(e instanceof NoCaHomeError)) return `CA: ${(e as Error).message}`;
    const asked = [
      flags.caPort !== undefined && '--ca-port',
      flags.certTtl !== undefined && '--cert-ttl',
      (flags.caSan?.length ?? 0) > 0 && '--ca-san',
      flags.caChain !== undefined && '--ca-chain',
    ].filter((f) => f !== false);
    if (asked.length > 0) return `${asked.join(', ')} given, but ${e.message}`;
    log('info', `CA not started: ${e.message}`);
    return undefined;
  }
  const tokens = dataDir === undefined ? undefined : new JoinTokenStore(dataDir.tokensDir);
  const pruned = (await tokens?.prune()) ?? 0;
  if (pruned > 0) log('info', `CA: removed ${pruned} expired join token(s)`);
  const authenticator = new Authenticator({
    trustDomain,
    tokens,
    kube: flags.kubeconfig === undefined ? undefined : new KubeTokenReviewer(flags.kubeconfig),
    intermediates: authority.issuerChain(),
    roots: authority.roots,
  });
  return {
    authority,
    options: {
      authority,
      authenticator,
      names: serverNames(flags.caSan ?? []),
      port: flags.caPort ?? DEFAULT_CA_PORT,
    },
  };
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
  const ca = await caSetup(flags, dataDir, log);
  if (typeof ca === 'string') {
    err.write(`remora control-plane: ${ca}\n`);
    return 2;
  }
  const plaintext = flags.plaintextXds ?? true;
  if (!plaintext && ca === undefined) {
    err.write(
      'remora control-plane: --no-plaintext-xds leaves xDS only on the CA port (mTLS), but the CA does not run: ' +
        'give --data-dir or --ca-cert/--ca-key\n',
    );
    return 2;
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
      plaintextXds: plaintext,
      debugPort: flags.debugPort,
      log,
      ca: ca?.options,
      trustDomain: flags.trustDomain,
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
  const caLine =
    ca === undefined
      ? ''
      : `, CA on 0.0.0.0:${cp.caPort} (trust domain ${ca.authority.trustDomain}, root ${ca.authority.rootPin}, ` +
        `certificates up to ${formatLifetime(ca.authority.maxTtlMs)}; xDS over mTLS too)`;
  const xdsLine = plaintext ? `xDS on 0.0.0.0:${cp.xdsPort}` : 'plaintext xDS off';
  // The handlers come first: whoever reads the start line may stop the control plane at once, and a SIGTERM
  // before them would kill it without closing anything (stdout to a pipe is written synchronously).
  const stopped = new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log('info', `received ${sig}: stopping`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  out.write(
    `remora control-plane: ${xdsLine}, debug on 127.0.0.1:${cp.debugPort}${caLine}; ` +
      `sources: ${built.described.join(', ')}${kept}; mesh ${mesh.version}: ${mesh.services.length} services\n`,
  );
  await stopped;
  await cp.close();
  return 0;
}

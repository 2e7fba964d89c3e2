// `remora proxy -c FILE` (or `--xds-address`): validates the bootstrap, runs the sidecar, drains gracefully on SIGTERM/SIGINT.

import { readFileSync } from 'node:fs';
import { loadBootstrapFile, translateBootstrap } from '../config/bootstrap.js';
import type { Bootstrap } from '../config/model.js';
import { formatErrors, type ValidationResult } from '../config/result.js';
import type { DnsProxy } from '../dataplane/dns/dns_proxy.js';
import { type Resolver, systemResolvers } from '../dataplane/dns/upstream_resolvers.js';
import { WORKLOAD_SECRET_NAMES } from '../dataplane/identity/secret_names.js';
import type { WorkloadIdentityConfig } from '../dataplane/identity/workload_identity.js';
import { Logger } from '../dataplane/observe/log.js';
import { ProxyServer } from '../dataplane/server.js';
import { defaultCacheBase } from '../dataplane/xds/disk_cache.js';
import { dropPrivileges } from './privileges.js';

export interface ProxyFlags {
  /** The bootstrap file; or, instead, `xdsAddress` (a bootstrap made from flags). */
  readonly config?: string;
  /** The control plane's ADS (`host:port`): over mTLS with --ca-address (port 15012), else plaintext (15010). */
  readonly xdsAddress?: string;
  /** With xdsAddress: the node id (default `<hostname>.<namespace>`), admin port, labels, delta xDS. */
  readonly nodeId?: string;
  readonly adminPort?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly deltaXds?: boolean;
  readonly drainTimeS: number;
  /** Quiet seconds before memory is given back again; 0: never (not at start either). */
  readonly releaseMemoryIdleS: number;
  readonly logLevel: string;
  /** Run as this user and group (the capture rules exclude the proxy's own traffic by them). */
  readonly uid?: number;
  readonly gid?: number;
  /** Serve DNS on this port (15053 with `remora iptables --capture-dns`), forwarding to `dnsResolvers`. */
  readonly dnsPort?: number;
  /** Default: the nameservers of /etc/resolv.conf. */
  readonly dnsResolvers?: readonly Resolver[];
  /** xDS: where the last good config is cached (a directory per node id below it). */
  readonly xdsCacheDir?: string;
  /** The control plane's CA (`host:port`): the sidecar gets its workload certificate there. */
  readonly caAddress?: string;
  /** The credential for it: a join token, a file holding one, or a Kubernetes service-account token file. */
  readonly joinToken?: string;
  readonly joinTokenFile?: string;
  readonly serviceAccountTokenFile?: string;
  /** The CA's roots (PEM), needed without a join token's pin. */
  readonly caRootFile?: string;
  /** The identity to ask for; default: the one the credential names. */
  readonly namespace?: string;
  readonly serviceAccount?: string;
}

/** The workload identity the flags ask for, undefined without --ca-address, or why the flags cannot be used. */
export function identityFromFlags(flags: ProxyFlags): WorkloadIdentityConfig | undefined | string {
  const credentials = [
    flags.joinToken !== undefined && '--join-token',
    flags.joinTokenFile !== undefined && '--join-token-file',
    flags.serviceAccountTokenFile !== undefined && '--service-account-token-file',
  ].filter((f) => f !== false);
  const others = [
    ...credentials,
    flags.caRootFile !== undefined && '--ca-root-file',
    flags.namespace !== undefined && '--namespace',
    flags.serviceAccount !== undefined && '--service-account',
  ].filter((f) => f !== false);
  if (flags.caAddress === undefined)
    return others.length === 0 ? undefined : `${others.join(', ')} need --ca-address`;
  if (credentials.length !== 1)
    return `--ca-address needs one credential: --join-token, --join-token-file or --service-account-token-file${credentials.length > 1 ? ` (not ${credentials.join(' and ')})` : ''}`;
  if (flags.serviceAccountTokenFile !== undefined && flags.caRootFile === undefined)
    return '--service-account-token-file needs --ca-root-file: only a join token carries the pin to trust the CA by';
  if ((flags.namespace === undefined) !== (flags.serviceAccount === undefined))
    return '--namespace and --service-account go together';
  let caRootsPem: string | undefined;
  if (flags.caRootFile !== undefined) {
    try {
      caRootsPem = readFileSync(flags.caRootFile, 'utf8');
    } catch (err) {
      return `--ca-root-file: cannot read ${flags.caRootFile}: ${(err as Error).message}`;
    }
    if (!caRootsPem.includes('-----BEGIN CERTIFICATE-----'))
      return `--ca-root-file: ${flags.caRootFile} holds no PEM certificate`;
  }
  // Files are read at each use: kubelet rewrites a projected token before it expires.
  const file = flags.joinTokenFile ?? flags.serviceAccountTokenFile;
  const flag = flags.joinTokenFile !== undefined ? '--join-token-file' : '--service-account-token-file';
  const readToken = (): string => {
    let text: string;
    try {
      text = readFileSync(file!, 'utf8').trim();
    } catch (err) {
      throw new Error(
        `${flag}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (text === '') throw new Error(`${flag}: ${file} is empty`);
    return text;
  };
  if (file !== undefined) {
    try {
      readToken();
    } catch (err) {
      return (err as Error).message;
    }
  }
  const token = flags.joinToken?.trim();
  return {
    caAddress: flags.caAddress,
    credential: token !== undefined ? () => token : readToken,
    ...(caRootsPem !== undefined && { caRootsPem }),
    ...(flags.namespace !== undefined &&
      flags.serviceAccount !== undefined && {
        identity: { namespace: flags.namespace, serviceAccount: flags.serviceAccount },
      }),
  };
}

/** The bootstrap: the file, or one made from --xds-address (exactly one of them). */
async function bootstrapOf(
  flags: ProxyFlags,
  identity: WorkloadIdentityConfig | undefined,
): Promise<{ raw: unknown; result: ValidationResult<Bootstrap> } | string> {
  const opts = { localSecrets: identity === undefined ? [] : WORKLOAD_SECRET_NAMES };
  const generatedOnly = [
    flags.nodeId !== undefined && '--node-id',
    flags.adminPort !== undefined && '--admin-port',
    flags.labels !== undefined && '--labels',
    flags.deltaXds === true && '--delta-xds',
  ].filter((f) => f !== false);
  if (flags.config !== undefined) {
    if (flags.xdsAddress !== undefined)
      return '-c and --xds-address do not go together: the file says where ADS is';
    if (generatedOnly.length > 0) return `${generatedOnly.join(', ')} go with --xds-address, not -c`;
    return loadBootstrapFile(flags.config, opts);
  }
  if (flags.xdsAddress === undefined)
    return 'give a bootstrap (-c FILE) or a control plane (--xds-address host:port)';
  // Loaded on use, as its credential parsing belongs to the CA client: a proxy run from a file does without.
  const { generatedBootstrap } = await import('./proxy_bootstrap.js');
  const raw = generatedBootstrap({ ...flags, xdsAddress: flags.xdsAddress, delta: flags.deltaXds }, identity);
  if (typeof raw === 'string') return raw;
  return { raw, result: translateBootstrap(raw, opts) };
}

export async function runProxy(flags: ProxyFlags): Promise<number> {
  const logger = new Logger();
  if (!logger.setLevel(flags.logLevel)) {
    process.stderr.write(`--log-level: unknown level "${flags.logLevel}"\n`);
    return 1;
  }
  // Before anything is read: the proxy reads its config and certificates as the user it runs as.
  const denied = dropPrivileges(flags.uid, flags.gid);
  if (denied !== undefined) {
    process.stderr.write(`remora: ${denied}\n`);
    return 1;
  }
  const identity = identityFromFlags(flags);
  if (typeof identity === 'string') {
    process.stderr.write(`remora: ${identity}\n`);
    return 1;
  }
  const loaded = await bootstrapOf(flags, identity);
  if (typeof loaded === 'string') {
    process.stderr.write(`remora: ${loaded}\n`);
    return 1;
  }
  const { raw, result } = loaded;
  if (!result.ok) {
    process.stderr.write(`${formatErrors(result.errors)}\n`);
    const what = flags.config ?? 'the bootstrap made from the flags';
    process.stderr.write(`remora: refusing to start: ${what} has ${result.errors.length} error(s)\n`);
    return 1;
  }
  let server: ProxyServer;
  try {
    server = await ProxyServer.start(result.value, {
      drainTimeMs: flags.drainTimeS * 1000,
      logger,
      ...(flags.releaseMemoryIdleS > 0 && { memoryRelease: { idleMs: flags.releaseMemoryIdleS * 1000 } }),
      rawBootstrap: raw,
      // Only a sidecar with ADS caches config (its temp directory is the default).
      xdsCacheDir: flags.xdsCacheDir ?? (result.value.dynamicResources?.ads ? defaultCacheBase() : undefined),
      ...(identity !== undefined && { workloadIdentity: identity }),
    });
  } catch (err) {
    process.stderr.write(`remora: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  let dns: DnsProxy | undefined;
  if (flags.dnsPort !== undefined) {
    try {
      const resolvers = flags.dnsResolvers ?? systemResolvers();
      const { DnsProxy } = await import('../dataplane/dns/dns_proxy.js');
      dns = await DnsProxy.start({ port: flags.dnsPort, resolvers }, server.stats);
      logger.info('DNS proxy listening', {
        port: dns.udpPort,
        resolvers: resolvers.map((r) => `${r.address}:${r.port}`),
      });
    } catch (err) {
      process.stderr.write(
        `remora: cannot start the DNS proxy on port ${flags.dnsPort}: ${(err as Error).message}\n`,
      );
      await server.close();
      return 1;
    }
  }
  const onSignal = (sig: string) => {
    logger.info(`received ${sig}: draining`);
    void dns?.close();
    void server.shutdown();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await server.exited;
  logger.info('exited');
  return 0;
}

// `remora proxy -c FILE`: validates the bootstrap, runs the sidecar, drains gracefully on SIGTERM/SIGINT.

import { loadBootstrapFile } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';
import { DnsProxy } from '../dataplane/dns/dns_proxy.js';
import { type Resolver, systemResolvers } from '../dataplane/dns/upstream_resolvers.js';
import { Logger } from '../dataplane/observe/log.js';
import { ProxyServer } from '../dataplane/server.js';
import { defaultCacheBase } from '../dataplane/xds/disk_cache.js';
import { dropPrivileges } from './privileges.js';

export interface ProxyFlags {
  readonly config: string;
  readonly drainTimeS: number;
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
  const { raw, result } = await loadBootstrapFile(flags.config);
  if (!result.ok) {
    process.stderr.write(`${formatErrors(result.errors)}\n`);
    process.stderr.write(`remora: refusing to start: ${flags.config} has ${result.errors.length} error(s)\n`);
    return 1;
  }
  let server: ProxyServer;
  try {
    server = await ProxyServer.start(result.value, {
      drainTimeMs: flags.drainTimeS * 1000,
      logger,
      rawBootstrap: raw,
      xdsCacheDir: flags.xdsCacheDir ?? defaultCacheBase(),
    });
  } catch (err) {
    process.stderr.write(`remora: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  let dns: DnsProxy | undefined;
  if (flags.dnsPort !== undefined) {
    try {
      const resolvers = flags.dnsResolvers ?? systemResolvers();
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

// `remora proxy -c FILE`: validates the bootstrap, runs the sidecar, drains gracefully on SIGTERM/SIGINT.

import { loadBootstrapFile } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';
import { Logger } from '../dataplane/observe/log.js';
import { ProxyServer } from '../dataplane/server.js';
import { dropPrivileges } from './privileges.js';

export interface ProxyFlags {
  readonly config: string;
  readonly drainTimeS: number;
  readonly logLevel: string;
  /** Run as this user and group (the capture rules exclude the proxy's own traffic by them). */
  readonly uid?: number;
  readonly gid?: number;
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
    });
  } catch (err) {
    process.stderr.write(`remora: cannot start: ${(err as Error).message}\n`);
    return 1;
  }
  const onSignal = (sig: string) => {
    logger.info(`received ${sig}: draining`);
    void server.shutdown();
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await server.exited;
  logger.info('exited');
  return 0;
}

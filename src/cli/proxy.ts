// `remora proxy -c FILE`: validates the bootstrap, runs the sidecar, drains gracefully on SIGTERM/SIGINT.

import { loadBootstrapFile } from '../config/bootstrap.js';
import { formatErrors } from '../config/result.js';
import { Logger } from '../dataplane/observe/log.js';
import { ProxyServer } from '../dataplane/server.js';

export interface ProxyFlags {
  readonly config: string;
  readonly drainTimeS: number;
  readonly logLevel: string;
}

export async function runProxy(flags: ProxyFlags): Promise<number> {
  const logger = new Logger();
  if (!logger.setLevel(flags.logLevel)) {
    process.stderr.write(`--log-level: unknown level "${flags.logLevel}"\n`);
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

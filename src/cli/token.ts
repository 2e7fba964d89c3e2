// `remora token create`: makes a join token in a control plane's data directory and prints it.

import { stat } from 'node:fs/promises';
import { readCaInfo } from '../controlplane/ca/load.js';
import { JoinTokenStore } from '../controlplane/ca/tokens.js';
import { formatLifetime } from '../controlplane/ca/ttl.js';
import { DataDir } from '../controlplane/state/data_dir.js';
import { namespaceProblem, serviceAccountProblem, spiffeId } from '../identity/spiffe.js';

export interface TokenCreateFlags {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly dataDir: string;
  /** Milliseconds; default 1 h. */
  readonly ttl?: number;
  /** Default 1. */
  readonly uses?: number;
}

interface Output {
  write(text: string): unknown;
}

export const DEFAULT_TOKEN_TTL_MS = 3600 * 1000;
/** Join tokens are for a workload's first certificate, not a standing credential: a day at most. */
export const MAX_TOKEN_TTL_MS = 24 * 3600 * 1000;
export const MAX_TOKEN_USES = 1000;

/**
 * Prints the token alone on stdout (for `$(remora token create ...)`), and what it is for on stderr. The control
 * plane need not be stopped: the token store is shared safely (see controlplane/ca/tokens.ts), but it must have run
 * once with this data directory, for its trust domain and root pin.
 */
export async function runTokenCreate(
  flags: TokenCreateFlags,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  const fail = (message: string, code = 2) => {
    err.write(`remora token create: ${message}\n`);
    return code;
  };
  const problem = namespaceProblem(flags.namespace) ?? serviceAccountProblem(flags.serviceAccount);
  if (problem !== undefined) return fail(problem);
  const ttl = flags.ttl ?? DEFAULT_TOKEN_TTL_MS;
  if (ttl <= 0 || ttl > MAX_TOKEN_TTL_MS)
    return fail(`--ttl must be more than 0 and at most ${formatLifetime(MAX_TOKEN_TTL_MS)}`);
  const uses = flags.uses ?? 1;
  if (!Number.isInteger(uses) || uses < 1 || uses > MAX_TOKEN_USES)
    return fail(`--uses must be a whole number from 1 to ${MAX_TOKEN_USES}`);
  let dataDir: DataDir;
  try {
    // Never made here: a mistyped path must not become an empty data directory.
    if (!(await stat(flags.dataDir).catch(() => undefined))?.isDirectory())
      return fail(`--data-dir ${flags.dataDir}: no such directory (the control plane's --data-dir)`);
    dataDir = await DataDir.open(flags.dataDir);
  } catch (e) {
    return fail(`--data-dir ${flags.dataDir}: ${(e as Error).message}`);
  }
  try {
    const info = await readCaInfo(dataDir);
    const store = new JoinTokenStore(dataDir.tokensDir);
    await store.prune();
    const identity = {
      trustDomain: info.trustDomain,
      namespace: flags.namespace,
      serviceAccount: flags.serviceAccount,
    };
    const { token, record } = await store.create({ identity, ttlMs: ttl, uses, caPin: info.rootPin });
    out.write(`${token}\n`);
    err.write(
      `remora token create: join token ${record.id} for ${spiffeId(info.trustDomain, identity)}, ` +
        `${uses} use${uses === 1 ? '' : 's'}, expires ${record.expiresAt}; pins the CA root ${info.rootPin}\n`,
    );
    return 0;
  } catch (e) {
    return fail((e as Error).message, 1);
  }
}

// The join-token store: one directory per token under DIR/ca/tokens, shared by `remora token create` and the
// running control plane, each a separate process, without locks.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { formatJoinToken, parseJoinToken } from '../../identity/join_token.js';
import { type ParsedSpiffeId, spiffeId } from '../../identity/spiffe.js';
import { writeFileAtomic } from '../state/data_dir.js';
import { Refusals, refuse } from './errors.js';

/** What is kept of a token: never its secret, only the secret's SHA-256. */
export interface TokenRecord {
  readonly format: 1;
  readonly id: string;
  readonly spiffeId: string;
  readonly secretSha256: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly maxUses: number;
}

export interface CreateTokenOptions {
  readonly identity: ParsedSpiffeId;
  readonly ttlMs: number;
  readonly uses: number;
  /** The CA root's pin, carried by the token so that the workload can trust the CA on first contact. */
  readonly caPin: string;
}

const RECORD = 'token.json';
const USE = 'use.';
/** Partly written token directories older than this were left by a crash: removed by prune(). */
const STALE_TMP_MS = 3600 * 1000;

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * The layout makes every step atomic on a local file system:
 * - create: the record is written into a fresh hidden directory, which is renamed to `<id>`: a token exists
 *   complete or not at all;
 * - use: use N of a token is the exclusive creation (O_EXCL) of `<id>/use.N`, for the first N up to its
 *   maximum that is still free: two control planes (or two requests) can never both take the last use;
 * - prune: expired token directories are removed, by either process; a token that vanishes that way is refused
 *   as unknown, which it would be anyway.
 * The control plane reads the store on every request, so a token made while it runs works at once.
 */
export class JoinTokenStore {
  constructor(
    readonly dir: string,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Makes a token; returns the string to give the workload (shown once: only its hash is kept). */
  async create(opts: CreateTokenOptions): Promise<{ token: string; record: TokenRecord }> {
    if (!(opts.ttlMs > 0)) throw new Error('a token needs a positive lifetime');
    if (!Number.isInteger(opts.uses) || opts.uses < 1) throw new Error('a token needs at least one use');
    const secret = randomBytes(32).toString('base64url');
    for (;;) {
      const id = randomBytes(8).toString('hex');
      const now = this.now();
      const record: TokenRecord = {
        format: 1,
        id,
        spiffeId: spiffeId(opts.identity.trustDomain, opts.identity),
        secretSha256: sha256(secret).toString('hex'),
        createdAt: now.toISOString(),
        expiresAt: new Date(now.getTime() + opts.ttlMs).toISOString(),
        maxUses: opts.uses,
      };
      const tmp = join(this.dir, `.new-${randomBytes(6).toString('hex')}`);
      await mkdir(tmp, { mode: 0o700 });
      try {
        await writeFileAtomic(join(tmp, RECORD), `${JSON.stringify(record, null, 2)}\n`, 0o600);
        await rename(tmp, join(this.dir, id));
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST' || code === 'ENOTEMPTY') continue; // an id taken already: draw another
        throw err;
      }
      return { token: formatJoinToken({ id, secret, caPin: opts.caPin, identity: opts.identity }), record };
    }
  }

  /**
   * Checks a presented token without using it: its shape, that it exists, its secret, its identity, its expiry,
   * and that a use is left. Refuses (CaRefusal) otherwise.
   */
  async check(token: string): Promise<TokenRecord> {
    const parsed = parseJoinToken(token);
    if (parsed === undefined) refuse(Refusals.badCredential, 'malformed join token');
    const record = await this.read(parsed.id);
    const presented = sha256(parsed.secret);
    if (!timingSafeEqual(presented, Buffer.from(record.secretSha256, 'hex')))
      refuse(Refusals.badCredential, `join token ${parsed.id}: wrong secret`);
    const claimed = spiffeId(parsed.identity.trustDomain, parsed.identity);
    if (claimed !== record.spiffeId)
      refuse(
        Refusals.badCredential,
        `join token ${parsed.id}: it names ${claimed}, its record ${record.spiffeId}`,
      );
    if (Date.parse(record.expiresAt) <= this.now().getTime())
      refuse(Refusals.tokenExpired, `join token ${parsed.id} expired at ${record.expiresAt}`);
    if ((await this.usesTaken(record)) >= record.maxUses)
      refuse(
        Refusals.tokenUsedUp,
        `join token ${parsed.id} has been used ${record.maxUses} time(s), all it may be`,
      );
    return record;
  }

  /** Takes one use of a checked token; refuses when another request took the last one meanwhile. Returns N. */
  async use(record: TokenRecord): Promise<number> {
    if (Date.parse(record.expiresAt) <= this.now().getTime())
      refuse(Refusals.tokenExpired, `join token ${record.id} expired at ${record.expiresAt}`);
    for (let n = 1; n <= record.maxUses; n++) {
      try {
        const h = await open(join(this.dir, record.id, `${USE}${n}`), 'wx', 0o600);
        try {
          await h.writeFile(`${this.now().toISOString()}\n`);
        } finally {
          await h.close();
        }
        return n;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') continue;
        if (code === 'ENOENT') refuse(Refusals.badCredential, `join token ${record.id} no longer exists`);
        refuse(Refusals.unavailable, `join token store: ${(err as Error).message}`);
      }
    }
    refuse(
      Refusals.tokenUsedUp,
      `join token ${record.id} has been used ${record.maxUses} time(s), all it may be`,
    );
  }

  /** Removes expired tokens and abandoned partial ones; returns how many tokens were removed. */
  async prune(): Promise<number> {
    const now = this.now().getTime();
    let removed = 0;
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      const path = join(this.dir, name);
      if (name.startsWith('.new-')) {
        const s = await stat(path).catch(() => undefined);
        if (s !== undefined && now - s.mtimeMs > STALE_TMP_MS)
          await rm(path, { recursive: true, force: true });
        continue;
      }
      const record = await this.read(name).catch(() => undefined);
      if (record !== undefined && Date.parse(record.expiresAt) <= now) {
        await rm(path, { recursive: true, force: true });
        removed++;
      }
    }
    return removed;
  }

  private async read(id: string): Promise<TokenRecord> {
    let text: string;
    try {
      text = await readFile(join(this.dir, id, RECORD), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        refuse(Refusals.badCredential, `unknown join token ${id} (never made here, or expired and removed)`);
      refuse(Refusals.unavailable, `join token store: ${(err as Error).message}`);
    }
    try {
      const r = JSON.parse(text) as TokenRecord;
      if (r.format === 1 && r.id === id && typeof r.secretSha256 === 'string' && r.secretSha256.length === 64)
        return r;
    } catch {
      // reported below
    }
    refuse(Refusals.unavailable, `join token store: ${id}/${RECORD} is not a token record`);
  }

  private async usesTaken(record: TokenRecord): Promise<number> {
    const names = await readdir(join(this.dir, record.id)).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(USE)).length;
  }
}

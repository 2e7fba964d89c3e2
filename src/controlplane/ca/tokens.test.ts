// Join tokens: only a hash of the secret is stored; a token is refused when expired, used up, of a wrong secret or
// of an edited identity; uses are counted exactly under concurrent requests; expired tokens are pruned.

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { formatJoinToken, parseJoinToken } from '../../identity/join_token.js';
import { DataDir } from '../state/data_dir.js';
import { CaRefusal, type RefusalKind, Refusals } from './errors.js';
import { JoinTokenStore } from './tokens.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const PIN = `sha256:${'ab'.repeat(32)}`;
const WEB = { trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' };

async function store(now?: () => Date): Promise<JoinTokenStore> {
  const d = mkdtempSync(join(tmpdir(), 'remora-ca-tokens-'));
  dirs.push(d);
  return new JoinTokenStore((await DataDir.open(d)).tokensDir, now);
}

async function refused(p: Promise<unknown>, kind: RefusalKind): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CaRefusal, String(err));
    assert.equal(err.kind, kind, err.message);
    return err.message;
  }
  assert.fail('accepted');
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

test('a token carries its identity and pin; the store keeps only the hash of its secret', async () => {
  const s = await store();
  const { token, record } = await s.create({ identity: WEB, ttlMs: 3600_000, uses: 1, caPin: PIN });
  const parsed = parseJoinToken(token);
  assert.ok(parsed !== undefined);
  assert.deepEqual(parsed.identity, WEB);
  assert.equal(parsed.caPin, PIN);
  assert.equal(record.spiffeId, 'spiffe://cluster.local/ns/shop/sa/web');
  for (const f of filesUnder(s.dir)) {
    const text = readFileSync(f, 'utf8');
    assert.ok(!text.includes(parsed.secret), `${f} holds the secret`);
    assert.equal(statSync(f).mode & 0o777, 0o600);
  }
  assert.equal(statSync(join(s.dir, record.id)).mode & 0o777, 0o700);
  assert.equal((await s.check(token)).id, record.id);
});

test('single use: the second use is refused, and so is a check after it', async () => {
  const s = await store();
  const { token } = await s.create({ identity: WEB, ttlMs: 3600_000, uses: 1, caPin: PIN });
  const record = await s.check(token);
  assert.equal(await s.use(record), 1);
  await refused(s.use(record), Refusals.tokenUsedUp);
  assert.match(await refused(s.check(token), Refusals.tokenUsedUp), /used 1 time/);
});

test('a bounded token gives exactly its uses to concurrent requests', async () => {
  const s = await store();
  const { token } = await s.create({ identity: WEB, ttlMs: 3600_000, uses: 3, caPin: PIN });
  const record = await s.check(token);
  const results = await Promise.allSettled(Array.from({ length: 8 }, () => s.use(record)));
  const won = results
    .filter((r) => r.status === 'fulfilled')
    .map((r) => (r as PromiseFulfilledResult<number>).value);
  assert.deepEqual(won.sort(), [1, 2, 3]);
  await refused(s.check(token), Refusals.tokenUsedUp);
});

test('an expired token is refused, and pruned', async () => {
  let now = new Date('2030-01-01T00:00:00Z');
  const s = await store(() => now);
  const { token, record } = await s.create({ identity: WEB, ttlMs: 600_000, uses: 1, caPin: PIN });
  now = new Date('2030-01-01T00:10:01Z');
  assert.match(await refused(s.check(token), Refusals.tokenExpired), /expired at 2030-01-01T00:10:00/);
  await refused(s.use(record), Refusals.tokenExpired);
  assert.equal(await s.prune(), 1);
  assert.deepEqual(readdirSync(s.dir), []);
  await refused(s.check(token), Refusals.badCredential);
});

test('a wrong secret, an edited identity, an unknown id or garbage is a bad credential', async () => {
  const s = await store();
  const { token } = await s.create({ identity: WEB, ttlMs: 3600_000, uses: 1, caPin: PIN });
  const t = parseJoinToken(token)!;
  const wrongSecret = formatJoinToken({ ...t, secret: 'A'.repeat(43) });
  assert.match(await refused(s.check(wrongSecret), Refusals.badCredential), /wrong secret/);
  const otherSa = formatJoinToken({ ...t, identity: { ...WEB, serviceAccount: 'admin' } });
  assert.match(
    await refused(s.check(otherSa), Refusals.badCredential),
    /names spiffe:\/\/cluster\.local\/ns\/shop\/sa\/admin/,
  );
  const unknown = formatJoinToken({ ...t, id: '0123456789abcdef' });
  assert.match(await refused(s.check(unknown), Refusals.badCredential), /unknown join token/);
  await refused(s.check('rjt1.nonsense'), Refusals.badCredential);
  // None of these spent the real token.
  await s.check(token);
});

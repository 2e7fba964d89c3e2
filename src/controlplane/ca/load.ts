// Where the CA's signing key comes from: the operator's files (a root, or an intermediate under an external root),
// or the root generated in the data directory; and the trust bundle it distributes, written back for the tools.

import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyChain } from '../../identity/chain.js';
import { isSelfSigned, parseCertificates } from '../../identity/pem.js';
import * as x509 from '../../identity/x509.js';
import { type DataDir, writeFileAtomic } from '../state/data_dir.js';
import { CertificateAuthority } from './authority.js';
import type { Issuer } from './issue.js';
import { importSigningKey } from './keys.js';
import { type CaLog, loadOrCreateRoot } from './root_store.js';

export interface AuthoritySource {
  /** Keeps the generated root, the extra roots of a rotation, the published bundle and the join tokens. */
  readonly dataDir?: DataDir;
  /** `--ca-cert`, `--ca-key`, `--ca-chain`: files; cert and key go together. */
  readonly caCert?: string;
  readonly caKey?: string;
  readonly caChain?: string;
  readonly trustDomain: string;
  readonly maxTtlMs: number;
  readonly log: CaLog;
  readonly now?: () => Date;
}

/** `DIR/ca/extra-roots.pem`: roots the operator adds to the bundle, for a rotation (docs/security.md). */
export const EXTRA_ROOTS_FILE = 'extra-roots.pem';
/** `DIR/ca/roots.pem`: the bundle the running CA distributes. */
export const ROOTS_FILE = 'roots.pem';
/** `DIR/ca/ca.json`: what `remora token create` needs: the trust domain and the root pin. */
export const CA_INFO_FILE = 'ca.json';

export interface CaInfo {
  readonly format: 1;
  readonly trustDomain: string;
  readonly rootPin: string;
  readonly maxCertTtlSeconds: number;
  readonly writtenAt: string;
}

/** No place to keep a root: neither `--data-dir` nor `--ca-cert`/`--ca-key`. */
export class NoCaHomeError extends Error {}

/**
 * Opens the CA the flags describe: the operator's files when given, else the data directory's root (made on first
 * start). Refuses without either: a root made in memory would vanish on restart, and every sidecar would then hold
 * certificates nobody can verify. With a data directory, the extra roots are added to the bundle, and the bundle
 * and `ca.json` are written back.
 */
export async function openAuthority(src: AuthoritySource): Promise<CertificateAuthority> {
  const now = src.now?.() ?? new Date();
  let issuer: Issuer;
  let intermediates: X509Certificate[] = [];
  let root: X509Certificate;
  if (src.caCert !== undefined || src.caKey !== undefined) {
    ({ issuer, intermediates, root } = await fromFiles(src, now));
  } else if (src.dataDir !== undefined) {
    const stored = await loadOrCreateRoot(src.dataDir, src.trustDomain, src.log, now);
    if (stored.created) src.log('info', `CA: generated a new root (ECDSA P-256) in ${src.dataDir.caRootDir}`);
    issuer = stored.issuer;
    root = issuer.cert;
    const problem = dateProblem(root, now);
    if (problem !== undefined) throw new Error(`${join(src.dataDir.caRootDir, 'cert.pem')}: ${problem}`);
  } else {
    throw new NoCaHomeError(
      'the CA needs a place for its root: give --data-dir (a root is made there on first start and kept) or ' +
        '--ca-cert and --ca-key; a root made in memory would vanish on restart with every certificate it signed',
    );
  }
  const extra = src.dataDir === undefined ? [] : await extraRoots(src.dataDir, root, src.log, now);
  const ca = new CertificateAuthority(issuer, intermediates, [root, ...extra], {
    trustDomain: src.trustDomain,
    maxTtlMs: src.maxTtlMs,
    now: src.now,
  });
  if (src.dataDir !== undefined) await publish(src.dataDir, ca, now);
  return ca;
}

function dateProblem(cert: X509Certificate, now: Date): string | undefined {
  if (Date.parse(cert.validTo) <= now.getTime()) return `expired at ${cert.validTo}`;
  if (Date.parse(cert.validFrom) > now.getTime()) return `not valid before ${cert.validFrom}`;
  return undefined;
}

function isCa(cert: X509Certificate): boolean {
  if (!cert.ca) return false;
  const ku = new x509.X509Certificate(cert.raw).getExtension(x509.KeyUsagesExtension);
  return ku === null || (ku.usages & x509.KeyUsageFlags.keyCertSign) !== 0;
}

async function readCerts(file: string, flag: string): Promise<X509Certificate[]> {
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(await readFile(file, 'utf8'));
  } catch (err) {
    throw new Error(`${flag} ${file}: ${(err as Error).message}`);
  }
  if (certs.length === 0) throw new Error(`${flag} ${file}: no PEM certificate in it`);
  return certs;
}

async function fromFiles(
  src: AuthoritySource,
  now: Date,
): Promise<{ issuer: Issuer; intermediates: X509Certificate[]; root: X509Certificate }> {
  if (src.caCert === undefined || src.caKey === undefined)
    throw new Error('--ca-cert and --ca-key go together');
  const [cert, ...moreInCertFile] = await readCerts(src.caCert, '--ca-cert');
  let key: Issuer['key'];
  try {
    key = await importSigningKey(await readFile(src.caKey, 'utf8'));
  } catch (err) {
    throw new Error(`--ca-key ${src.caKey}: ${(err as Error).message}`);
  }
  if (!cert!.checkPrivateKey(key.keyObject))
    throw new Error(`--ca-key ${src.caKey} is not the key of --ca-cert ${src.caCert}`);
  if (!isCa(cert!))
    throw new Error(
      `--ca-cert ${src.caCert} is not a CA certificate (basicConstraints CA:TRUE, keyCertSign)`,
    );
  const dated = dateProblem(cert!, now);
  if (dated !== undefined) throw new Error(`--ca-cert ${src.caCert}: ${dated}`);
  const issuer: Issuer = { cert: cert!, key };
  const pool = [
    ...moreInCertFile,
    ...(src.caChain === undefined ? [] : await readCerts(src.caChain, '--ca-chain')),
  ];
  if (isSelfSigned(cert!)) return { issuer, intermediates: [], root: cert! };
  const roots = pool.filter(isSelfSigned);
  const path = verifyChain(
    cert!,
    pool.filter((c) => !isSelfSigned(c)),
    roots,
    now,
  );
  if (!path.ok)
    throw new Error(
      `--ca-cert ${src.caCert} is an intermediate (issued by ${cert!.issuer.replace(/\n/g, ', ')}): ` +
        `${src.caChain === undefined ? 'give --ca-chain with the certificates up to its root' : `--ca-chain ${src.caChain} does not lead to a root: ${path.problem}`}`,
    );
  for (const c of path.path.slice(1, -1))
    if (!isCa(c)) throw new Error(`--ca-chain ${src.caChain}: ${c.subject} is not a CA certificate`);
  return { issuer, intermediates: path.path.slice(1, -1), root: path.path[path.path.length - 1]! };
}

async function extraRoots(
  dataDir: DataDir,
  active: X509Certificate,
  log: CaLog,
  now: Date,
): Promise<X509Certificate[]> {
  const file = join(dataDir.caDir, EXTRA_ROOTS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const out: X509Certificate[] = [];
  const seen = new Set([active.fingerprint256]);
  let certs: X509Certificate[];
  try {
    certs = parseCertificates(text);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  for (const c of certs) {
    const name = c.subject.replace(/\n/g, ', ');
    if (!isCa(c)) throw new Error(`${file}: ${name} is not a CA certificate`);
    const dated = dateProblem(c, now);
    if (dated !== undefined) {
      log('warning', `CA: ${file}: ${name} left out of the trust bundle: ${dated}`);
      continue;
    }
    if (seen.has(c.fingerprint256)) continue;
    seen.add(c.fingerprint256);
    out.push(c);
  }
  if (out.length > 0)
    log('info', `CA: ${out.length} extra root(s) from ${file} trusted beside the active one`);
  return out;
}

/** Writes the bundle (for operators and for sidecars given a root file) and `ca.json` (for `remora token create`). */
async function publish(dataDir: DataDir, ca: CertificateAuthority, now: Date): Promise<void> {
  await writeFileAtomic(join(dataDir.caDir, ROOTS_FILE), ca.rootsPem, 0o600);
  const info: CaInfo = {
    format: 1,
    trustDomain: ca.trustDomain,
    rootPin: ca.rootPin,
    maxCertTtlSeconds: Math.floor(ca.maxTtlMs / 1000),
    writtenAt: now.toISOString(),
  };
  await writeFileAtomic(join(dataDir.caDir, CA_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

/** Reads `DIR/ca/ca.json`; throws a message that says what to do when there is none. */
export async function readCaInfo(dataDir: DataDir): Promise<CaInfo> {
  const file = join(dataDir.caDir, CA_INFO_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error(
        `no CA has run with ${dataDir.root} yet (${file} is missing): start \`remora control-plane --data-dir ${dataDir.root}\` once, then make tokens`,
      );
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  const info = JSON.parse(text) as Partial<CaInfo>;
  if (info.format !== 1 || typeof info.trustDomain !== 'string' || typeof info.rootPin !== 'string')
    throw new Error(`${file}: not a CA description this version of Remora reads`);
  return info as CaInfo;
}

// Test support: certificates made with the openssl CLI in a temp dir — two CAs, a server and a client (EC P-256).

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The SANs of the server certificate. */
export const SERVER_SANS = {
  dns: ['localhost', '*.example.test'],
  ip: '127.0.0.1',
  uri: 'spiffe://cluster.local/ns/default/sa/web',
} as const;

/** The URI SAN of the client certificate. */
export const CLIENT_SPIFFE_ID = 'spiffe://cluster.local/ns/default/sa/client';

export interface KeyPair {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export interface Certs {
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly ca: KeyPair;
  /** Another CA, which signed nothing here: trusting it instead of `ca` makes verification fail. */
  readonly otherCa: KeyPair;
  /** DNS localhost and *.example.test, IP 127.0.0.1, URI spiffe://cluster.local/ns/default/sa/web. */
  readonly server: KeyPair;
  /** URI spiffe://cluster.local/ns/default/sa/client; usable for client authentication. */
  readonly client: KeyPair;
  /**
   * Issues a server certificate like `server` with another serial, signed by `ca`, into new files in `dir`
   * (named `prefix`.crt / `prefix`.key); returns them. For tests that rotate certificates.
   */
  issueServer(prefix: string, serial: number): Promise<KeyPair>;
  /** Issues a leaf with the SANs of `server` or `client` and another serial, signed by `issuer` (e.g. `otherCa`). */
  issueLeaf(
    prefix: string,
    serial: number,
    opts: { issuer: KeyPair; kind: 'server' | 'client' },
  ): Promise<KeyPair>;
  close(): Promise<void>;
}

const CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth,clientAuth
subjectAltName = ${SERVER_SANS.dns.map((d) => `DNS:${d}`).join(',')},IP:${SERVER_SANS.ip},URI:${SERVER_SANS.uri}
[client_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:${CLIENT_SPIFFE_ID}
`;

function openssl(args: readonly string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd }, (err, _stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(new Error('openssl is required by the TLS tests: apt-get install openssl'));
      }
      if (err) return reject(new Error(`openssl ${args.join(' ')} failed: ${stderr || err.message}`));
      resolve();
    });
  });
}

/** One certificate with a new P-256 key in one call; self-signed unless `issuer` is given. */
async function issue(
  dir: string,
  name: string,
  subject: string,
  ext: string,
  serial: number,
  issuer?: KeyPair,
): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const args = [
    'req',
    '-config',
    'openssl.cnf',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
  ];
  args.push('-nodes', '-keyout', keyFile, '-out', certFile, '-subj', subject, '-days', '30');
  args.push('-extensions', ext, '-set_serial', String(serial));
  if (issuer) args.push('-CA', issuer.certFile, '-CAkey', issuer.keyFile);
  await openssl(args, dir);
  const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
  return { certFile, keyFile, cert, key };
}

/** Makes the certificates (four openssl calls, a few tens of milliseconds). `close()` removes them. */
export async function makeCerts(): Promise<Certs> {
  const dir = await mkdtemp(join(tmpdir(), 'remora-certs-'));
  await writeFile(join(dir, 'openssl.cnf'), CONFIG);
  const [ca, otherCa] = await Promise.all([
    issue(dir, 'ca', '/CN=Remora Test CA', 'ca_ext', 1),
    issue(dir, 'other-ca', '/CN=Remora Other CA', 'ca_ext', 2),
  ]);
  const [server, client] = await Promise.all([
    issue(dir, 'server', '/CN=localhost', 'server_ext', 0x1000, ca),
    issue(dir, 'client', '/CN=client', 'client_ext', 0x2000, ca),
  ]);
  return {
    dir,
    ca,
    otherCa,
    server,
    client,
    issueServer: (prefix, serial) => issue(dir, prefix, '/CN=localhost', 'server_ext', serial, ca),
    issueLeaf: (prefix, serial, o) =>
      o.kind === 'server'
        ? issue(dir, prefix, '/CN=localhost', 'server_ext', serial, o.issuer)
        : issue(dir, prefix, '/CN=client', 'client_ext', serial, o.issuer),
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

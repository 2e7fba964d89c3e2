// Test support: a CA service on 127.0.0.1 (port 0) for an authority and its join tokens, as the control plane runs it.

import { Authenticator } from './authenticate.js';
import { type CertificateAuthority, serverNames } from './authority.js';
import { CaServer } from './server.js';
import type { JoinTokenStore } from './tokens.js';

export function listenTestCa(
  ca: CertificateAuthority,
  tokens: JoinTokenStore,
  log: (level: string, message: string) => void = () => undefined,
): Promise<CaServer> {
  return CaServer.listen({
    authority: ca,
    authenticator: new Authenticator({
      trustDomain: 'cluster.local',
      tokens,
      intermediates: [],
      roots: ca.roots,
    }),
    names: serverNames([]),
    host: '127.0.0.1',
    port: 0,
    log,
  });
}

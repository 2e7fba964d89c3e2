// The source kinds Remora ships, registered explicitly: `files` (a manifest directory) and `dns` (ServiceEntries).

import { DnsSource } from './dns.js';
import { FilesSource } from './files.js';
import { SourceKinds } from './registry.js';

function optionalNumber(options: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new Error(`source option ${key}: expected a number >= 0`);
  return v;
}

/** `files` takes `dir` (required) and `debounceMs`; `dns` takes `servers` (list of `ip[:port]`) and `minRefreshMs`. */
export function builtinSourceKinds(): SourceKinds {
  return new SourceKinds()
    .register('files', (o) => {
      if (typeof o.dir !== 'string' || o.dir === '')
        throw new Error('source "files" needs a directory (dir)');
      return new FilesSource({ dir: o.dir, debounceMs: optionalNumber(o, 'debounceMs') });
    })
    .register('dns', (o) => {
      const servers = o.servers;
      if (servers !== undefined && (!Array.isArray(servers) || !servers.every((s) => typeof s === 'string')))
        throw new Error('source "dns": servers must be a list of addresses');
      return new DnsSource({
        servers: servers as string[] | undefined,
        minRefreshMs: optionalNumber(o, 'minRefreshMs'),
      });
    });
}

// The source kinds Remora ships, registered explicitly: `files`, `dns`, `etcd`, `kubernetes` and `consul`.

import { DnsSource } from './dns.js';
import { FilesSource } from './files.js';
import { LazySource } from './lazy_source.js';
import { SourceKinds } from './registry.js';

function optionalNumber(options: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new Error(`source option ${key}: expected a number >= 0`);
  return v;
}

function optionalString(options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw new Error(`source option ${key}: expected a non-empty string`);
  return v;
}

/** A list of strings, or one string of comma-separated items (as a command-line flag gives it). */
function stringList(options: Readonly<Record<string, unknown>>, key: string): string[] | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  const items = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v;
  if (!Array.isArray(items) || items.length === 0 || !items.every((s) => typeof s === 'string' && s !== ''))
    throw new Error(`source option ${key}: expected a list of strings`);
  return items as string[];
}

/**
 * `files` takes `dir` (required) and `debounceMs`; `dns` takes `servers` (list of `ip[:port]`) and `minRefreshMs`;
 * `etcd` takes `endpoints` (required: URLs, a list or comma-separated) and `prefix`; `kubernetes` takes
 * `kubeconfig`, `context` and `istio` (boolean); `consul` takes `address` (required), `namespace`, `datacenter`,
 * `token` and `waitSeconds`. The last three also take `startTimeoutMs`, and load their client when they start.
 */
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
    })
    .register('etcd', (o) => {
      const endpoints = stringList(o, 'endpoints');
      if (endpoints === undefined) throw new Error('source "etcd" needs its endpoints (endpoints)');
      const options = {
        endpoints,
        prefix: optionalString(o, 'prefix'),
        startTimeoutMs: optionalNumber(o, 'startTimeoutMs'),
      };
      return new LazySource('etcd', async () => new (await import('./etcd.js')).EtcdSource(options));
    })
    .register('kubernetes', (o) => {
      if (o.istio !== undefined && typeof o.istio !== 'boolean')
        throw new Error('source option istio: expected true or false');
      const options = {
        kubeconfig: optionalString(o, 'kubeconfig'),
        context: optionalString(o, 'context'),
        istio: o.istio as boolean | undefined,
        startTimeoutMs: optionalNumber(o, 'startTimeoutMs'),
      };
      return new LazySource(
        'kubernetes',
        async () => new (await import('./kubernetes.js')).KubernetesSource(options),
      );
    })
    .register('consul', (o) => {
      const address = optionalString(o, 'address');
      if (address === undefined) throw new Error('source "consul" needs the agent\'s address (address)');
      const options = {
        address,
        namespace: optionalString(o, 'namespace'),
        datacenter: optionalString(o, 'datacenter'),
        token: optionalString(o, 'token'),
        waitSeconds: optionalNumber(o, 'waitSeconds'),
        startTimeoutMs: optionalNumber(o, 'startTimeoutMs'),
      };
      return new LazySource('consul', async () => new (await import('./consul.js')).ConsulSource(options));
    });
}

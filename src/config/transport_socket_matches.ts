// A cluster's transport_socket_matches: per-host transport sockets, chosen by the host's metadata.

import type { TransportSocketMatchConfig } from './model.js';
import { Fields, isPlainObject, jsonObject, quote, typeOf } from './reader.js';
import { upstreamTransportSocket } from './tls.js';

/**
 * transport_socket_matches of a Cluster, in order. Each entry has a unique non-empty `name`, a `match` Struct (absent
 * = {} = every host) and a `transport_socket` (UpstreamTlsContext or raw_buffer), required as in Envoy. Errors are
 * recorded in the context (they fail the cluster); undefined when an entry is unusable, [] when there are none.
 */
export function transportSocketMatches(cluster: Fields): TransportSocketMatchConfig[] | undefined {
  const out: TransportSocketMatchConfig[] = [];
  const names = new Map<string, string>();
  let failed = false;
  for (const item of cluster.list('transport_socket_matches')) {
    const f = Fields.of(cluster.ctx, item.value, item.path);
    if (f === undefined) {
      failed = true;
      continue;
    }
    const name = f.string('name', { required: true });
    if (name !== undefined) {
      const other = names.get(name);
      if (other !== undefined) {
        f.error('name', `duplicate transport socket match name ${quote(name)} (also ${other})`);
        failed = true;
      } else names.set(name, item.path.slice(item.path.lastIndexOf('.') + 1));
    }
    const rawMatch = f.take('match');
    let match: Record<string, unknown> | undefined = {};
    if (rawMatch !== undefined) {
      if (isPlainObject(rawMatch)) match = jsonObject(f.ctx, rawMatch, f.pathOf('match'));
      else {
        f.error('match', `expected an object (a Struct of metadata labels), got ${typeOf(rawMatch)}`);
        match = undefined;
      }
    }
    if (!f.has('transport_socket')) {
      f.error('transport_socket', 'missing required field (raw_buffer for plaintext)');
      failed = true;
    }
    // Undefined for raw_buffer and for an invalid context alike: an invalid one has recorded its errors, which fail
    // the whole cluster.
    const tls = upstreamTransportSocket(f);
    f.finish();
    if (name === undefined || match === undefined) failed = true;
    else out.push({ name, match, tls });
  }
  return failed ? undefined : out;
}

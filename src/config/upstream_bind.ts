// Cluster upstream_bind_config: the local addresses upstream connections are made from.

import { isIP } from 'node:net';
import { socketAddress } from './address.js';
import { Fields } from './reader.js';

/**
 * source_address plus extra_source_addresses: at most one address per IP family, as Envoy requires; a connection
 * to a host binds the one of the host's family (and none when there is none of that family). Empty when unset.
 */
export function upstreamBindAddresses(f: Fields): readonly string[] {
  const b = f.object('upstream_bind_config');
  if (b === undefined) return [];
  const out: { address: string; path: string }[] = [];
  const add = (raw: unknown, path: string) => {
    const sa = Fields.of(b.ctx, raw, path);
    const a =
      sa &&
      socketAddress(sa, {
        host: 'ip',
        requirePort: false,
        notIpMessage: 'a source address must be an IP address',
      });
    if (a === undefined) return;
    if (a.port !== 0) {
      b.ctx.error(`${path}.port_value`, 'must be 0: every upstream connection needs a port of its own');
      return;
    }
    const family = isIP(a.address);
    const same = out.find((o) => isIP(o.address) === family);
    if (same) {
      b.ctx.error(
        path,
        `a second IPv${family} source address (${same.path} is IPv${family} too): give one per family`,
      );
      return;
    }
    out.push({ address: a.address, path });
  };
  const source = b.take('source_address');
  if (source === undefined) b.error('source_address', 'missing required field');
  else add(source, b.pathOf('source_address'));
  for (const item of b.list('extra_source_addresses')) {
    const e = Fields.of(b.ctx, item.value, item.path);
    if (e === undefined) continue;
    const address = e.take('address');
    if (address === undefined) e.error('address', 'missing required field');
    else add(address, e.pathOf('address'));
    e.unsupported(['socket_options']);
    e.finish();
  }
  b.unsupported(['freebind', 'socket_options', 'additional_source_addresses', 'local_address_selector'], {
    freebind: false,
  });
  b.finish();
  return out.map((o) => o.address);
}

// upgrade_configs of the HTTP connection manager and of a RouteAction: which HTTP/1.1 upgrades (WebSocket ...) are tunnelled.

import type { UpgradeConfig } from './model.js';
import { Fields, quote } from './reader.js';

/** An Upgrade header value is a protocol name: token ["/" token] (RFC 9110 §7.8). */
const PROTOCOL = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+)?$/;

/**
 * The `upgrade_configs` list of an HttpConnectionManager (`level: 'hcm'`, whose entries may carry `filters`) or of
 * a RouteAction (`level: 'route'`, whose entries may carry `connect_config`). Types are lower-cased: Envoy
 * matches them case-insensitively, so two entries differing only in case are duplicates.
 */
export function upgradeConfigs(f: Fields, level: 'hcm' | 'route'): UpgradeConfig[] {
  const out: UpgradeConfig[] = [];
  const seen = new Map<string, number>();
  f.list('upgrade_configs').forEach((item, i) => {
    const e = Fields.of(f.ctx, item.value, item.path);
    if (e === undefined) return;
    const type = e.string('upgrade_type', { required: true });
    const enabled = e.bool('enabled') ?? true;
    // Custom filter chains per upgrade (HCM) and CONNECT tunnelling (route) are not implemented.
    e.unsupported([level === 'hcm' ? 'filters' : 'connect_config']);
    e.finish();
    if (type === undefined) return;
    const lower = type.toLowerCase();
    if (!PROTOCOL.test(type)) {
      e.error(
        'upgrade_type',
        `invalid upgrade type ${quote(type)}: expected a protocol name such as "websocket"`,
      );
    } else if (lower === 'connect') {
      e.error('upgrade_type', 'upgrade type "CONNECT" (CONNECT tunnelling) is not supported by Remora yet');
    } else if (lower === 'h2c') {
      e.error(
        'upgrade_type',
        'upgrade type "h2c" is never tunnelled: an h2c Upgrade header is dropped, as Envoy does',
      );
    } else if (seen.has(lower)) {
      e.error(
        'upgrade_type',
        `duplicate upgrade type ${quote(type)} (also upgrade_configs[${seen.get(lower)}])`,
      );
    } else {
      seen.set(lower, i);
      out.push({ upgradeType: lower, enabled });
    }
  });
  return out;
}

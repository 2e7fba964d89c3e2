// What the system offers when a flag says "auto": the packet filter tool in use, and whether IPv6 is there.

import { existsSync, readFileSync } from 'node:fs';
import { CaptureError } from './errors.js';
import { findTool, runToolOrFail } from './exec.js';
import type { BackendName } from './options.js';

const IF_INET6 = '/proc/net/if_inet6';

/**
 * The backend the system uses: `iptables -V` names its variant ("(nf_tables)" or "(legacy)"); an iptables too old
 * to say is legacy. With no iptables at all, nft.
 */
export async function detectBackend(): Promise<BackendName> {
  if (findTool('iptables') !== undefined) {
    const version = await runToolOrFail('iptables', ['-V']);
    return version.includes('(nf_tables)') ? 'iptables' : 'iptables-legacy';
  }
  if (findTool('nft') !== undefined) return 'nft';
  throw new CaptureError(
    'REMORA_ERR_CAPTURE_TOOL_MISSING',
    'neither iptables nor nft was found on PATH: install the Debian package "iptables" (or "nftables"), or name ' +
      'the backend with --backend',
  );
}

/** True when this network namespace has an IPv6 address (lo's ::1 counts): its IPv6 traffic is captured too. */
export function ipv6InUse(file = IF_INET6): boolean {
  try {
    return readFileSync(file, 'utf8').trim() !== '';
  } catch {
    return false;
  }
}

/**
 * True when the kernel has IPv6 at all. `clean` looks for IPv6 rules then, even when no address is left, so that
 * rules installed while there was one are not missed.
 */
export function ipv6Supported(file = IF_INET6): boolean {
  return existsSync(file);
}

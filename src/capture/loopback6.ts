// ::6/128 on lo: the source address the proxy binds when it passes inbound IPv6 connections to the application.

import { runToolOrFail } from './exec.js';

export const LO6 = '::6/128';

export const ADD_LO6_ARGS: readonly string[] = ['-6', 'addr', 'add', LO6, 'dev', 'lo'];
const DEL_LO6_ARGS: readonly string[] = ['-6', 'addr', 'del', LO6, 'dev', 'lo'];

interface IpAddrJson {
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

/** True when lo has ::6/128 (reading addresses needs no privilege). */
export async function hasLo6(): Promise<boolean> {
  const out = await runToolOrFail('ip', ['-6', '-j', 'addr', 'show', 'dev', 'lo']);
  const links = (out.trim() === '' ? [] : JSON.parse(out)) as IpAddrJson[];
  return links.some((l) =>
    (l.addr_info ?? []).some((a) => a.family === 'inet6' && a.local === '::6' && a.prefixlen === 128),
  );
}

export async function addLo6(): Promise<void> {
  await runToolOrFail('ip', ADD_LO6_ARGS);
}

export async function deleteLo6(): Promise<void> {
  await runToolOrFail('ip', DEL_LO6_ARGS);
}

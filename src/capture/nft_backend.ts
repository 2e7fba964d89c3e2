// The capture rules as one nftables table (`table inet remora`) that holds both families and is replaced whole.

import type { CaptureBackend, Script } from './backend.js';
import { runToolOrFail } from './exec.js';
import { CHAINS, type Family, type Rule, type RuleSet } from './rules.js';

export const NFT_TABLE = 'inet remora';

/** Same priority as iptables' nat chains (dstnat): both see a connection before routing decides. */
const NAT_PRIORITY = -100;

const NFT_ARGS: readonly string[] = ['-f', '-'];

/** Declaring the table first makes the delete succeed whether or not it existed, all in one atomic batch. */
const REMOVE_TABLE = `table ${NFT_TABLE}\ndelete table ${NFT_TABLE}\n`;

function address(rule: Rule, dir: 'saddr' | 'daddr', cidr: string, negate: boolean): string {
  if (rule.family === undefined)
    throw new Error(`rule with an address has no family: ${JSON.stringify(rule)}`);
  const host = rule.family === 4 ? '/32' : '/128';
  const value = cidr.endsWith(host) ? cidr.slice(0, -host.length) : cidr;
  return `${rule.family === 4 ? 'ip' : 'ip6'} ${dir} ${negate ? '!= ' : ''}${value}`;
}

/** One rule as an nft statement. A port match implies its protocol; otherwise the protocol is named with meta. */
export function nftRule(rule: Rule): string {
  const a: string[] = [];
  if (rule.outLoopback) a.push('oifname "lo"');
  if (rule.saddr !== undefined) a.push(address(rule, 'saddr', rule.saddr, false));
  if (rule.daddr !== undefined) a.push(address(rule, 'daddr', rule.daddr, false));
  if (rule.notDaddr !== undefined) a.push(address(rule, 'daddr', rule.notDaddr, true));
  if (rule.dport !== undefined) a.push(`${rule.protocol} dport ${rule.dport}`);
  else if (rule.notDport !== undefined) a.push(`${rule.protocol} dport != ${rule.notDport}`);
  else if (rule.protocol !== undefined) a.push(`meta l4proto ${rule.protocol}`);
  if (rule.owner !== undefined) {
    a.push(`meta sk${rule.owner.kind} ${rule.owner.negate ? '!= ' : ''}${rule.owner.id}`);
  }
  const t = rule.target;
  if (t.kind === 'return') a.push('return');
  else if (t.kind === 'jump') a.push(`jump ${t.chain}`);
  else {
    // A port mapping needs a transport protocol match before it in an inet table.
    if (rule.protocol === undefined) throw new Error(`redirect without a protocol: ${JSON.stringify(rule)}`);
    a.push(`redirect to :${t.port}`);
  }
  return a.join(' ');
}

/** The nft script apply feeds: the table is dropped (if there) and defined anew in one transaction. */
export function renderNftScript(rules: RuleSet): string {
  // With IPv6 off, the base chains let only IPv4 in: the rest of the table is written for both families.
  const onlyV4 = rules.families.includes(6) ? '' : 'meta nfproto ipv4 ';
  const lines = [REMOVE_TABLE.trimEnd(), `table ${NFT_TABLE} {`];
  const chain = (name: string, hook: string | undefined, body: readonly string[]): void => {
    lines.push(`\tchain ${name} {`);
    if (hook) lines.push(`\t\ttype nat hook ${hook} priority ${NAT_PRIORITY}; policy accept;`);
    for (const r of body) lines.push(`\t\t${r}`);
    lines.push('\t}');
  };
  chain(
    'prerouting',
    'prerouting',
    rules.prerouting.map((r) => onlyV4 + nftRule(r)),
  );
  chain(
    'output',
    'output',
    rules.output.map((r) => onlyV4 + nftRule(r)),
  );
  for (const c of rules.chains) chain(c.name, undefined, c.rules.map(nftRule));
  lines.push('}', '');
  return lines.join('\n');
}

interface NftJson {
  nftables?: Record<string, { family?: string; name?: string; table?: string }>[];
}

export class NftBackend implements CaptureBackend {
  readonly name = 'nft' as const;
  readonly dualStack = true;

  tools(_families: readonly Family[]): string[] {
    return ['nft'];
  }

  scripts(rules: RuleSet): Script[] {
    return [{ tool: 'nft', args: NFT_ARGS, input: renderNftScript(rules) }];
  }

  async recordsLo6(): Promise<boolean> {
    if (!(await this.tableExists())) return false;
    const listed = JSON.parse(await runToolOrFail('nft', ['-j', 'list', 'table', ...NFT_TABLE.split(' ')]));
    return ((listed as NftJson).nftables ?? []).some((o) => o.chain?.name === CHAINS.lo6Added);
  }

  async apply(rules: RuleSet): Promise<void> {
    await runToolOrFail('nft', NFT_ARGS, renderNftScript(rules), `nft -f - (table ${NFT_TABLE})`);
  }

  async clean(_families: readonly Family[]): Promise<boolean> {
    // The one table holds both families: it goes whole.
    const existed = await this.tableExists();
    if (existed) await runToolOrFail('nft', NFT_ARGS, REMOVE_TABLE, `nft -f - (delete table ${NFT_TABLE})`);
    return existed;
  }

  private async tableExists(): Promise<boolean> {
    const listed = JSON.parse(await runToolOrFail('nft', ['-j', 'list', 'tables'])) as NftJson;
    return (listed.nftables ?? []).some((o) => o.table?.family === 'inet' && o.table.name === 'remora');
  }
}

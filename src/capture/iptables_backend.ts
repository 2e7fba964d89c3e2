// The capture rules as iptables-restore scripts for the nat table, loaded with --noflush so other rules stay.

import type { CaptureBackend, Script } from './backend.js';
import { runToolOrFail } from './exec.js';
import { CHAIN_PREFIX, type Family, type Rule, type RuleSet, rulesFor } from './rules.js';

export type IptablesVariant = 'iptables' | 'iptables-legacy';

/** What a table holds of Remora's, read from iptables-save. */
export interface InstalledChains {
  /** REMORA_* chains. */
  readonly chains: readonly string[];
  /** Rules of other chains that jump to a REMORA_* chain: the chain and the rule as iptables-save prints it. */
  readonly jumps: readonly { readonly chain: string; readonly spec: string }[];
}

export const NOTHING_INSTALLED: InstalledChains = { chains: [], jumps: [] };

/** Each backend names its binaries explicitly, so that the system's `iptables` alternative does not choose. */
export function iptablesTools(variant: IptablesVariant, family: Family): { restore: string; save: string } {
  const base = `${family === 4 ? 'iptables' : 'ip6tables'}-${variant === 'iptables' ? 'nft' : 'legacy'}`;
  return { restore: `${base}-restore`, save: `${base}-save` };
}

/** --noflush keeps every rule that is not Remora's; --wait queues behind another xtables user instead of failing. */
export const RESTORE_ARGS: readonly string[] = ['--noflush', '--wait'];

/** One rule as iptables arguments, in the order iptables documents them. */
export function ruleArgs(rule: Rule): string {
  const a: string[] = [];
  if (rule.outLoopback) a.push('-o lo');
  if (rule.saddr !== undefined) a.push(`-s ${rule.saddr}`);
  if (rule.daddr !== undefined) a.push(`-d ${rule.daddr}`);
  if (rule.notDaddr !== undefined) a.push(`! -d ${rule.notDaddr}`);
  if (rule.protocol !== undefined) a.push(`-p ${rule.protocol}`);
  if (rule.dport !== undefined) a.push(`--dport ${rule.dport}`);
  if (rule.notDport !== undefined) a.push(`! --dport ${rule.notDport}`);
  if (rule.owner !== undefined) {
    a.push(`-m owner ${rule.owner.negate ? '! ' : ''}--${rule.owner.kind}-owner ${rule.owner.id}`);
  }
  const t = rule.target;
  if (t.kind === 'return') a.push('-j RETURN');
  else if (t.kind === 'jump') a.push(`-j ${t.chain}`);
  else a.push(`-j REDIRECT --to-ports ${t.port}`);
  return a.join(' ');
}

/**
 * The script apply feeds for one family. Declaring a chain that exists flushes it (in --noflush mode); the jumps
 * found installed are deleted and chains no longer wanted removed, all in the same transaction, so the table goes
 * from the old set to the new one at once.
 */
export function renderApplyScript(rules: RuleSet, family: Family, installed = NOTHING_INSTALLED): string {
  const chains = rules.chains.filter((c) => c.family === undefined || c.family === family);
  const wanted = new Set<string>(chains.map((c) => c.name));
  const stale = installed.chains.filter((c) => !wanted.has(c));
  const lines = ['*nat', ...chains.map((c) => `:${c.name} - [0:0]`)];
  for (const j of installed.jumps) lines.push(`-D ${j.chain} ${j.spec}`);
  for (const c of stale) lines.push(`-F ${c}`);
  for (const c of stale) lines.push(`-X ${c}`);
  for (const r of rulesFor(rules.prerouting, family)) lines.push(`-A PREROUTING ${ruleArgs(r)}`);
  for (const r of rulesFor(rules.output, family)) lines.push(`-A OUTPUT ${ruleArgs(r)}`);
  for (const c of chains)
    for (const r of rulesFor(c.rules, family)) lines.push(`-A ${c.name} ${ruleArgs(r)}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The script that removes what `installed` lists; undefined when there is nothing to remove. */
export function renderCleanScript(installed: InstalledChains): string | undefined {
  if (installed.chains.length === 0 && installed.jumps.length === 0) return undefined;
  const lines = ['*nat'];
  for (const j of installed.jumps) lines.push(`-D ${j.chain} ${j.spec}`);
  // Every chain is emptied before any is deleted: a chain still referenced cannot be deleted.
  for (const c of installed.chains) lines.push(`-F ${c}`);
  for (const c of installed.chains) lines.push(`-X ${c}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const TARGET = /(?:^|\s)-[jg] (\S+)(?:\s|$)/;

/** Remora's chains and the jumps into them, from `iptables-save -t nat` output. */
export function parseSaved(saved: string): InstalledChains {
  const chains: string[] = [];
  const jumps: { chain: string; spec: string }[] = [];
  let inNat = false;
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) inNat = line === '*nat';
    if (!inNat) continue;
    const decl = /^:(\S+) /.exec(line);
    if (decl && decl[1]!.startsWith(CHAIN_PREFIX)) chains.push(decl[1]!);
    const rule = /^-A (\S+) (.*)$/.exec(line);
    if (!rule || rule[1]!.startsWith(CHAIN_PREFIX)) continue;
    const target = TARGET.exec(rule[2]!)?.[1];
    if (target?.startsWith(CHAIN_PREFIX)) jumps.push({ chain: rule[1]!, spec: rule[2]! });
  }
  return { chains, jumps };
}

export class IptablesBackend implements CaptureBackend {
  readonly name: IptablesVariant;
  readonly dualStack = false;

  constructor(variant: IptablesVariant) {
    this.name = variant;
  }

  tools(families: readonly Family[]): string[] {
    return families.flatMap((f) => {
      const t = iptablesTools(this.name, f);
      return [t.save, t.restore];
    });
  }

  scripts(rules: RuleSet): Script[] {
    return rules.families.map((f) => ({
      tool: iptablesTools(this.name, f).restore,
      args: RESTORE_ARGS,
      input: renderApplyScript(rules, f),
    }));
  }

  async recordsLo6(): Promise<boolean> {
    return (await this.installed(6)).chains.includes('REMORA_LO6_ADDED');
  }

  async apply(rules: RuleSet): Promise<void> {
    for (const f of rules.families) {
      const input = renderApplyScript(rules, f, await this.installed(f));
      await this.restore(f, input);
    }
  }

  async clean(families: readonly Family[]): Promise<boolean> {
    let removed = false;
    for (const f of families) {
      const input = renderCleanScript(await this.installed(f));
      if (input === undefined) continue;
      await this.restore(f, input);
      removed = true;
    }
    return removed;
  }

  private async installed(family: Family): Promise<InstalledChains> {
    const save = iptablesTools(this.name, family).save;
    return parseSaved(await runToolOrFail(save, ['-t', 'nat']));
  }

  private async restore(family: Family, input: string): Promise<void> {
    const tool = iptablesTools(this.name, family).restore;
    await runToolOrFail(tool, RESTORE_ARGS, input, `${tool} ${RESTORE_ARGS.join(' ')} (nat table)`);
  }
}

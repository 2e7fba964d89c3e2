// `remora iptables apply|clean|print`: installs, removes or shows the rules that send a pod's traffic to its proxy.

import { formatErrors } from '../config/result.js';
import type { CaptureBackend, Script } from './backend.js';
import { detectBackend, ipv6InUse, ipv6Supported } from './detect.js';
import { CaptureError, ExitCode } from './errors.js';
import { findTool, requireTools } from './exec.js';
import { IptablesBackend } from './iptables_backend.js';
import { ADD_LO6_ARGS, addLo6, deleteLo6, hasLo6 } from './loopback6.js';
import { NftBackend } from './nft_backend.js';
import { type BackendName, type CaptureFlags, type CaptureOptions, parseCaptureFlags } from './options.js';
import { buildRuleSet, type Family } from './rules.js';

export const ACTIONS = ['apply', 'clean', 'print'] as const;
export type Action = (typeof ACTIONS)[number];

export function createBackend(name: BackendName): CaptureBackend {
  return name === 'nft' ? new NftBackend() : new IptablesBackend(name);
}

/** Runs one action; returns the exit code (0, 1 bad flags or failed load, 69 tool missing, 77 not root). */
export async function runIptables(action: string, flags: CaptureFlags): Promise<number> {
  if (!(ACTIONS as readonly string[]).includes(action)) {
    process.stderr.write(
      `remora iptables: unknown action ${JSON.stringify(action)}: expected one of ${ACTIONS.join(', ')}\n`,
    );
    return ExitCode.failure;
  }
  const parsed = parseCaptureFlags(flags);
  if (!parsed.ok) {
    process.stderr.write(`${formatErrors(parsed.errors)}\n`);
    process.stderr.write('remora iptables: see `remora iptables --help` for the flags\n');
    return ExitCode.failure;
  }
  try {
    await run(action as Action, parsed.value);
    return ExitCode.ok;
  } catch (err) {
    if (!(err instanceof CaptureError)) throw err;
    process.stderr.write(`remora iptables ${action}: ${err.message} [${err.code}]\n`);
    return err.exitCode;
  }
}

async function run(action: Action, opts: CaptureOptions): Promise<void> {
  if (action !== 'print') requireRoot(action);
  const backend = createBackend(opts.backend === 'auto' ? await detectBackend() : opts.backend);
  // clean looks wherever rules could be; apply and print capture IPv6 only where the namespace has it.
  const ipv6 = opts.ipv6 === 'auto' ? (action === 'clean' ? ipv6Supported() : ipv6InUse()) : opts.ipv6;
  const families: Family[] = ipv6 ? [4, 6] : [4];
  if (action === 'print') return print(backend, opts, ipv6);
  requireTools(backend.tools(families));
  if (action === 'apply') return apply(backend, opts, ipv6);
  return clean(backend, families);
}

function toolsFound(tools: readonly string[]): boolean {
  return tools.every((t) => findTool(t) !== undefined);
}

function requireRoot(action: Action): void {
  const euid = process.geteuid?.() ?? 0;
  if (euid !== 0) {
    throw new CaptureError(
      'REMORA_ERR_CAPTURE_NOT_ROOT',
      `changing the nat table needs root: run \`remora iptables ${action}\` as uid 0 with CAP_NET_ADMIN ` +
        `(it runs as uid ${euid}); \`remora iptables print\` shows the rules without root`,
    );
  }
}

/** The scripts apply would feed in a namespace without Remora's rules and without ::6 on lo, each under its command. */
function print(backend: CaptureBackend, opts: CaptureOptions, ipv6: boolean): void {
  const rules = buildRuleSet(opts, { ipv6, ownsLo6: ipv6 });
  const out: string[] = [];
  for (const s of backend.scripts(rules)) out.push(`# ${command(s)}`, s.input);
  if (ipv6) out.push(`# then, unless lo already has ::6/128:`, `ip ${ADD_LO6_ARGS.join(' ')}`, '');
  process.stdout.write(out.join('\n'));
}

function command(s: Script): string {
  return [s.tool, ...s.args].join(' ');
}

async function apply(backend: CaptureBackend, opts: CaptureOptions, ipv6: boolean): Promise<void> {
  if (ipv6) requireTools(['ip']);
  const lo6Present = ipv6 && (await hasLo6());
  // ::6 stays Remora's across applies: a second apply must not forget that the first one added it.
  const ownsLo6 = ipv6 && (!lo6Present || (await backend.recordsLo6()));
  const rules = buildRuleSet(opts, { ipv6, ownsLo6 });
  try {
    if (!ipv6) await dropIpv6(backend);
    await backend.apply(rules);
    if (ipv6 && !lo6Present) await addLo6();
  } catch (err) {
    // Nothing half-applied: a pod with some of the rules would lose traffic in ways hard to see.
    const undone = await clean(backend, rules.families, true).then(
      () => 'every Remora rule was removed again',
      (e: Error) => `removing the rules installed so far failed too: ${e.message}`,
    );
    const code = err instanceof CaptureError ? err.code : 'REMORA_ERR_CAPTURE_LOAD';
    throw new CaptureError(code, `${(err as Error).message}\n${undone}`);
  }
  const families = ipv6 ? 'IPv4 and IPv6' : 'IPv4';
  const dns = opts.captureDns ? ', DNS -> 15053' : '';
  process.stdout.write(
    `remora iptables: capture rules installed with ${backend.name} (${families}): outbound TCP -> ` +
      `${opts.outboundPort}, inbound TCP -> ${opts.inboundPort}${dns}; traffic of uid ${opts.proxyUid} or gid ` +
      `${opts.proxyGid} is not captured\n`,
  );
}

/** With IPv6 off now, what an earlier apply installed for IPv6 goes (::6 included): one set of rules, IPv4 only. */
async function dropIpv6(backend: CaptureBackend): Promise<void> {
  if (!ipv6Supported() || !toolsFound(backend.tools([6]))) return;
  // A table for both families is replaced whole by apply: only ::6 needs removing.
  if (backend.dualStack) await forgetLo6(backend);
  else await clean(backend, [6], true);
}

/** Removes ::6 from lo when the installed rules say Remora added it; before the rules go, which say so. */
async function forgetLo6(backend: CaptureBackend): Promise<void> {
  if (!(await backend.recordsLo6())) return;
  requireTools(['ip']);
  if (await hasLo6()) await deleteLo6();
}

async function clean(backend: CaptureBackend, families: readonly Family[], quiet = false): Promise<void> {
  if (families.includes(6)) await forgetLo6(backend);
  const removed = await backend.clean(families);
  if (quiet) return;
  process.stdout.write(
    removed
      ? `remora iptables: capture rules removed (${backend.name})\n`
      : `remora iptables: no capture rules were installed (${backend.name})\n`,
  );
}

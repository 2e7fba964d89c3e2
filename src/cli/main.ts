// `remora <command>`: parses flags and calls the modules that do the work.

import { Command, InvalidArgumentError } from 'commander';
import { runIptables } from '../capture/cli.js';
import type { CaptureFlags } from '../capture/options.js';
import { runAnalyze } from '../controlplane/analyze.js';
import { runDemo } from './demo.js';
import { parseId } from './privileges.js';
import { runProxy } from './proxy.js';
import { runValidate } from './validate.js';

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds >= 0');
  return n;
}

function id(value: string): number {
  try {
    return parseId(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command();
  program.name('remora').description('Remora service mesh: sidecar proxy and tools').showHelpAfterError();

  program
    .command('proxy')
    .description('run a sidecar proxy from an Envoy v3 bootstrap (YAML or JSON)')
    .requiredOption('-c, --config <file>', 'bootstrap file')
    .option('--drain-time-s <seconds>', 'longest wait for in-flight requests on shutdown', seconds, 5)
    .option('-l, --log-level <level>', 'trace, debug, info, warning, error, critical, off', 'info')
    .option(
      '--uid <uid>',
      'run as this user id (transparent capture leaves its traffic alone; default 1337 there)',
      id,
    )
    .option('--gid <gid>', 'run as this group id', id)
    .action(
      async (o: { config: string; drainTimeS: number; logLevel: string; uid?: number; gid?: number }) => {
        process.exitCode = await runProxy(o);
      },
    );

  program
    .command('validate')
    .description('check a bootstrap file and print every error with its field path')
    .requiredOption('-c, --config <file>', 'bootstrap file')
    .action(async (o: { config: string }) => {
      process.exitCode = await runValidate(o.config);
    });

  program
    .command('analyze')
    .description('check a directory of mesh manifests (Kubernetes and Istio YAML) and explain every problem')
    .argument('<dir>', 'directory of manifests (*.yaml, *.yml, *.json, read recursively)')
    .action(async (dir: string) => {
      process.exitCode = await runAnalyze(dir);
    });

  program
    .command('demo')
    .description('run a small local mesh on loopback: two services, each behind a remora proxy')
    .option(
      '--port <port>',
      'port of the first proxy listener (the next one is used too)',
      (v) => Number(v),
      10000,
    )
    .action(async (o: { port: number }) => {
      process.exitCode = await runDemo(o);
    });

  program
    .command('iptables')
    .description('install (apply), remove (clean) or show (print) the rules that send traffic to the proxy')
    .argument('<action>', 'apply, clean or print')
    .option('--proxy-uid <uid>', "the proxy's user id: its traffic is never captured (default 1337)")
    .option('--proxy-gid <gid>', "the proxy's group id: its traffic is never captured (default 1337)")
    .option('--outbound-port <port>', 'where outbound TCP is redirected (default 15001)')
    .option('--inbound-port <port>', 'where inbound TCP is redirected (default 15006)')
    .option(
      '--include-outbound-cidrs <cidrs>',
      'outbound destinations to capture, comma-separated (default *)',
    )
    .option('--exclude-outbound-cidrs <cidrs>', 'outbound destinations never captured, comma-separated')
    .option('--exclude-outbound-ports <ports>', 'outbound destination ports never captured, comma-separated')
    .option('--include-inbound-ports <ports>', 'inbound ports to capture, comma-separated (default *)')
    .option(
      '--exclude-inbound-ports <ports>',
      "inbound ports never captured, besides the proxy's own 15000,15020,15021,15090",
    )
    .option('--capture-dns', 'send DNS (udp and tcp port 53) to the proxy on 15053')
    .option('--ipv6', 'capture IPv6 too (default: when the network namespace has an IPv6 address)')
    .option('--no-ipv6', 'capture IPv4 only')
    .option('--backend <name>', 'iptables, iptables-legacy or nft (default: what the system uses)')
    .action(async (action: string, o: CaptureFlags) => {
      process.exitCode = await runIptables(action, o);
    });

  await program.parseAsync(argv);
}

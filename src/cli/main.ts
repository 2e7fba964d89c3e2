// `remora <command>`: parses flags and calls the modules that do the work.

import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './demo.js';
import { runProxy } from './proxy.js';
import { runValidate } from './validate.js';

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds >= 0');
  return n;
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
    .action(async (o: { config: string; drainTimeS: number; logLevel: string }) => {
      process.exitCode = await runProxy(o);
    });

  program
    .command('validate')
    .description('check a bootstrap file and print every error with its field path')
    .requiredOption('-c, --config <file>', 'bootstrap file')
    .action(async (o: { config: string }) => {
      process.exitCode = await runValidate(o.config);
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

  await program.parseAsync(argv);
}

// `remora <command>`: parses flags and calls the modules that do the work.

import { Command, InvalidArgumentError } from 'commander';
import type { CaptureFlags } from '../capture/options.js';
import { parseLifetime } from '../controlplane/ca/ttl.js';
import { parseResolver, type Resolver } from '../dataplane/dns/upstream_resolvers.js';
import type { ControlPlaneFlags } from './control_plane.js';
import { parseId } from './privileges.js';
import type { ProxyFlags } from './proxy.js';
import type { TokenCreateFlags } from './token.js';

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds >= 0');
  return n;
}

/** 0 (off) or at least a second: the idle check runs at this period. */
function idleSeconds(value: string): number {
  const n = seconds(value);
  if (n !== 0 && n < 1) throw new InvalidArgumentError('expected 0 (off) or seconds >= 1');
  return n;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port (0-65535)');
  return n;
}

function lifetime(value: string): number {
  const ms = parseLifetime(value);
  if (ms === undefined || ms <= 0)
    throw new InvalidArgumentError('expected a lifetime such as 24h, 30m, 1h30m or 90s');
  return ms;
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number >= 1');
  return n;
}

function collect(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v !== ''),
  ];
}

function resolvers(value: string): Resolver[] {
  return value.split(',').map((spec) => {
    const r = parseResolver(spec.trim());
    if (r === undefined) throw new InvalidArgumentError(`"${spec}" is not an ip, ip:port or [ipv6]:port`);
    return r;
  });
}

function labels(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of value
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`"${pair}" is not key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function id(value: string): number {
  try {
    return parseId(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/**
 * Node warns (DEP0123) each time a TLS client is given an IP address as its server name, which grpc-js does when
 * a control plane or CA is dialled by IP. No name is sent and the peer is verified all the same, so that warning is
 * not printed; every other warning is, as Node prints it.
 */
function quietIpServerNameWarning(): void {
  process.removeAllListeners('warning');
  process.on('warning', (w: Error & { code?: string }) => {
    if (w.code === 'DEP0123') return;
    process.stderr.write(`(node:${process.pid}) ${w.code ? `[${w.code}] ` : ''}${w.name}: ${w.message}\n`);
  });
}

export async function main(argv: string[]): Promise<void> {
  quietIpServerNameWarning();
  const program = new Command();
  program.name('remora').description('Remora service mesh: sidecar proxy and tools').showHelpAfterError();

  program
    .command('proxy')
    .description(
      'run a sidecar proxy from an Envoy v3 bootstrap (YAML or JSON), or from a control plane (--xds-address)',
    )
    .option('-c, --config <file>', 'bootstrap file')
    .option(
      '--xds-address <host:port>',
      "instead of -c: take all config from this control plane's ADS; over mTLS with the workload certificate when --ca-address is given (port 15012), else plaintext (15010)",
    )
    .option('--node-id <id>', 'with --xds-address: the node id (default <hostname>.<namespace>)')
    .option('--admin-port <port>', 'with --xds-address: the admin port on 127.0.0.1 (default 15000)', port)
    .option('--labels <k=v,...>', "with --xds-address: the workload's labels (node metadata LABELS)", labels)
    .option('--delta-xds', 'with --xds-address: incremental (delta) xDS')
    .option('--drain-time-s <seconds>', 'longest wait for in-flight requests on shutdown', seconds, 5)
    .option('-l, --log-level <level>', 'trace, debug, info, warning, error, critical, off', 'info')
    .option(
      '--release-memory-idle-s <seconds>',
      'give memory back to the system when LIVE, and after this long under 1% CPU once memory grew; 0: never',
      idleSeconds,
      30,
    )
    .option(
      '--uid <uid>',
      'run as this user id (transparent capture leaves its traffic alone; default 1337 there)',
      id,
    )
    .option('--gid <gid>', 'run as this group id', id)
    .option(
      '--xds-cache-dir <dir>',
      'xDS: keep the last good config here, to boot from when the control plane is unreachable (default $TMPDIR/remora-xds-cache)',
    )
    .option('--dns-port <port>', 'serve DNS here (15053 with `remora iptables --capture-dns`)', port)
    .option(
      '--dns-resolvers <list>',
      'where the DNS port forwards: comma-separated ip[:port] (default: /etc/resolv.conf)',
      resolvers,
    )
    .option(
      '--ca-address <host:port>',
      "get the workload certificate from this CA (the control plane's, port 15012)",
    )
    .option('--join-token <token>', 'the credential for --ca-address (`remora token create`); prefer a file')
    .option('--join-token-file <file>', 'a file holding the join token')
    .option(
      '--service-account-token-file <file>',
      'on Kubernetes: a projected service-account token (audience istio-ca) as the credential',
    )
    .option('--ca-root-file <file>', "the CA's roots (PEM), to trust it without a join token's pin")
    .option('--namespace <ns>', "the workload's namespace (default: the credential's)")
    .option('--service-account <sa>', "the workload's service account (default: the credential's)")
    .action(async (o: ProxyFlags) => {
      // Each command loads its modules on use: the proxy's memory holds no control plane, analyzer or demo.
      const { runProxy } = await import('./proxy.js');
      process.exitCode = await runProxy(o);
    });

  program
    .command('validate')
    .description('check a bootstrap file and print every error with its field path')
    .requiredOption('-c, --config <file>', 'bootstrap file')
    .action(async (o: { config: string }) => {
      const { runValidate } = await import('./validate.js');
      process.exitCode = await runValidate(o.config);
    });

  program
    .command('analyze')
    .description('check a directory of mesh manifests (Kubernetes and Istio YAML) and explain every problem')
    .argument('<dir>', 'directory of manifests (*.yaml, *.yml, *.json, read recursively)')
    .action(async (dir: string) => {
      const { runAnalyze } = await import('../controlplane/analyze.js');
      process.exitCode = await runAnalyze(dir);
    });

  program
    .command('control-plane')
    .description('serve mesh configuration to sidecars and proxyless gRPC clients over xDS (ADS)')
    .option('--config-dir <dir>', 'directory of mesh manifests (Kubernetes and Istio YAML), watched')
    .option(
      '--xds-port <port>',
      'ADS (gRPC, plaintext: for development; production sidecars use the CA port over mTLS) port',
      port,
      15010,
    )
    .option('--no-plaintext-xds', 'serve no plaintext ADS port: xDS only over mTLS on the CA port')
    .option('--debug-port <port>', 'debug port on 127.0.0.1: /debug/syncz and /metrics', port, 15014)
    .option('--etcd <urls>', 'etcd client URLs, comma-separated: manifests under /remora/')
    .option('--kubeconfig <file>', 'read Services, EndpointSlices and Pods from this Kubernetes cluster')
    .option('--consul <url>', 'read services from this Consul agent')
    .option(
      '--data-dir <dir>',
      'keep the last state of etcd, Kubernetes and Consul here (created 0700), served when they are unreachable at start',
    )
    .option(
      '--ca-port <port>',
      'certificate authority and ADS over mTLS (gRPC) port, default 15012; the CA runs with --data-dir or --ca-cert',
      port,
    )
    .option('--trust-domain <domain>', 'SPIFFE trust domain of workload certificates (default cluster.local)')
    .option(
      '--cert-ttl <lifetime>',
      'longest workload certificate lifetime, e.g. 24h (default), 30m; at least 1m',
      lifetime,
    )
    .option(
      '--ca-cert <file>',
      "sign with this CA certificate (PEM) instead of the data dir's generated root",
    )
    .option('--ca-key <file>', 'the private key of --ca-cert (PEM)')
    .option('--ca-chain <file>', 'when --ca-cert is an intermediate: the certificates up to its root (PEM)')
    .option(
      '--ca-san <name>',
      "another DNS name or IP for the CA service's certificate (repeatable)",
      collect,
    )
    .action(async (o: ControlPlaneFlags) => {
      // Loaded on use: the sources' client libraries (etcd, Kubernetes) stay out of every other command's memory.
      const { runControlPlane } = await import('./control_plane.js');
      process.exitCode = await runControlPlane(o);
    });

  program
    .command('token')
    .description('join tokens: credentials for workloads outside Kubernetes to get their first certificate')
    .command('create')
    .description("make a join token in a control plane's data dir and print it")
    .requiredOption('--namespace <ns>', "the workload's namespace")
    .requiredOption('--service-account <sa>', "the workload's service account")
    .requiredOption('--data-dir <dir>', "the control plane's --data-dir")
    .option(
      '--ttl <lifetime>',
      'how long the token may be used, e.g. 1h (default), 15m; at most 24h',
      lifetime,
    )
    .option('--uses <n>', 'how many certificates it may get (default 1)', count)
    .action(async (o: TokenCreateFlags) => {
      const { runTokenCreate } = await import('./token.js');
      process.exitCode = await runTokenCreate(o);
    });

  program
    .command('proxy-status')
    .description(
      'show each proxy connected to a control plane: SYNCED / STALE / NOT SENT per type, last NACK',
    )
    .requiredOption('--control-plane <host:port>', "the control plane's debug port, e.g. 127.0.0.1:15014")
    .action(async (o: { controlPlane: string }) => {
      const { runProxyStatus } = await import('./proxy_status.js');
      process.exitCode = await runProxyStatus(o.controlPlane);
    });

  program
    .command('demo')
    .description(
      'run a small mesh on loopback: a control plane, two services, a remora proxy beside each workload',
    )
    .action(async () => {
      const { runDemo } = await import('./demo.js');
      process.exitCode = await runDemo();
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
      const { runIptables } = await import('../capture/cli.js');
      process.exitCode = await runIptables(action, o);
    });

  await program.parseAsync(argv);
}

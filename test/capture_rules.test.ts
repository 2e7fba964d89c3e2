// Integration: `remora iptables apply|clean|print` run for real inside fresh network namespaces, for each backend
// (iptables on nf_tables, iptables-legacy, nft), checked with iptables-save, ip6tables-save and nft list ruleset.
// Needs root: it fails, saying so, when run without it. It never touches the rules of the namespace it runs in.

import assert from 'node:assert/strict';
import {
  accessSync,
  chmodSync,
  constants,
  copyFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  linkVeth,
  Netns,
  type Run,
  requireRootAndTools,
  uniqueSuffix,
  waitForLine,
  which,
} from './support/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = process.execPath;
const NOBODY = ['--reuid', '65534', '--regid', '65534', '--clear-groups'];
const TOOLS = [
  'ip',
  'setpriv',
  'nft',
  ...['iptables-nft', 'ip6tables-nft', 'iptables-legacy', 'ip6tables-legacy'].flatMap((t) => [
    t,
    `${t}-save`,
    `${t}-restore`,
  ]),
];

const created: Netns[] = [];
const suffix = uniqueSuffix();
let made = 0;

/** A network namespace of this test's own, deleted in after(). */
async function newNetns(): Promise<Netns> {
  const ns = await Netns.create(`remora-rules-${suffix}-${made++}`);
  created.push(ns);
  return ns;
}

/** `remora iptables ...` in `ns`, as root or as nobody (from a world-readable copy of the CLI). */
function remora(
  ns: Netns,
  args: readonly string[],
  as: 'root' | 'nobody' = 'root',
  env?: NodeJS.ProcessEnv,
): Promise<Run> {
  const opts = env ? { env } : {};
  if (as === 'root') return ns.exec(NODE, [join(ROOT, 'bin', 'remora'), 'iptables', ...args], opts);
  return ns.exec('setpriv', [...NOBODY, NODE, publicBin, 'iptables', ...args], opts);
}

/** Everything the rules could have touched: every ruleset, both legacy families, lo's addresses. */
async function snapshot(ns: Netns): Promise<string> {
  const parts = [
    await ns.execOk('nft', ['list', 'ruleset']),
    await ns.execOk('iptables-legacy-save', []),
    await ns.execOk('ip6tables-legacy-save', []),
    await ns.ip('-6', 'addr', 'show', 'dev', 'lo'),
  ];
  return normalize(parts.join('\n'));
}

async function hasLo6(ns: Netns): Promise<boolean> {
  return (await ns.ip('-6', 'addr', 'show', 'dev', 'lo')).includes('inet6 ::6/128');
}

/** Save output without comments (dates) and counters. */
function normalize(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#') && l.trim() !== '')
    .map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]'))
    .join('\n');
}

interface Backend {
  readonly name: 'iptables' | 'iptables-legacy' | 'nft';
  /** Remora's rules as this backend's own tools show them. */
  state(ns: Netns): Promise<string>;
  /** Adds rules of a user (not Remora's) to the nat tables this backend uses. */
  addUserRules(ns: Netns): Promise<void>;
}

function iptablesBackend(name: 'iptables' | 'iptables-legacy'): Backend {
  const suffix = name === 'iptables' ? 'nft' : 'legacy';
  return {
    name,
    state: async (ns) =>
      normalize(
        `${await ns.execOk(`iptables-${suffix}-save`, ['-t', 'nat'])}\n${await ns.execOk(`ip6tables-${suffix}-save`, ['-t', 'nat'])}`,
      ),
    addUserRules: async (ns) => {
      for (const [tool, addr] of [
        [`iptables-${suffix}`, '192.0.2.1'],
        [`ip6tables-${suffix}`, '2001:db8::1'],
      ] as const) {
        // --wait: the legacy xtables lock is shared by every namespace, and other tests may hold it.
        const nat = ['--wait', '-t', 'nat'];
        await ns.execOk(tool, [...nat, '-A', 'OUTPUT', '-d', addr, '-p', 'tcp', '-j', 'RETURN']);
        await ns.execOk(tool, [...nat, '-N', 'USER_CHAIN']);
        await ns.execOk(tool, [...nat, '-A', 'USER_CHAIN', '-j', 'RETURN']);
        await ns.execOk(tool, [...nat, '-A', 'PREROUTING', '-p', 'tcp', '--dport', '9', '-j', 'USER_CHAIN']);
      }
    },
  };
}

const BACKENDS: readonly Backend[] = [
  iptablesBackend('iptables'),
  iptablesBackend('iptables-legacy'),
  {
    name: 'nft',
    state: async (ns) => {
      const r = await ns.exec('nft', ['list', 'table', 'inet', 'remora']);
      return r.code === 0 ? normalize(r.stdout) : '';
    },
    addUserRules: async (ns) => {
      const script = `table inet user {
  chain out { type nat hook output priority -100; policy accept; ip daddr 192.0.2.1 return; }
}
table ip nat {
  chain OUTPUT { type nat hook output priority -100; policy accept; tcp dport 9 return; }
}
`;
      await ns.execOk('nft', ['-f', '-'], script);
    },
  },
];

let scratch: string;
let publicBin: string;

before(() => {
  // Loud, not skipped: these tests are the only check that the rules load for real.
  requireRootAndTools('test/capture_rules.test.ts', TOOLS);
  accessSync(join(ROOT, 'dist', 'remora.mjs'), constants.R_OK); // built by `npm run build`
  // The unprivileged runs need a copy of the CLI that user 65534 can read, wherever the checkout lives.
  scratch = mkdtempSync(join(tmpdir(), 'remora-capture-'));
  chmodSync(scratch, 0o755);
  for (const dir of ['bin', 'dist']) mkdirSync(join(scratch, dir), { mode: 0o755 });
  copyFileSync(join(ROOT, 'bin', 'remora'), join(scratch, 'bin', 'remora'));
  copyFileSync(join(ROOT, 'dist', 'remora.mjs'), join(scratch, 'dist', 'remora.mjs'));
  // The bundle's entry imports its chunks (each command's modules) from dist/chunks/.
  cpSync(join(ROOT, 'dist', 'chunks'), join(scratch, 'dist', 'chunks'), { recursive: true });
  for (const f of ['bin/remora', 'dist/remora.mjs', 'dist/chunks']) chmodSync(join(scratch, f), 0o755);
  publicBin = join(scratch, 'bin', 'remora');
});

after(async () => {
  for (const ns of created) await ns.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function assertExit(r: Run, code: number, what: string): void {
  assert.equal(
    r.code,
    code,
    `${what}: expected exit ${code}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
  );
}

/** Splits `print` output into the commands it names and the scripts they are fed. */
function printedCommands(text: string): { argv: string[]; input: string }[] {
  const out: { argv: string[]; input: string }[] = [];
  for (const section of text.split(/^# /m).filter((s) => s.trim() !== '')) {
    const [header, ...body] = section.split('\n');
    if (header!.startsWith('then, unless lo')) out.push({ argv: body[0]!.split(' '), input: '' });
    else out.push({ argv: header!.split(' '), input: body.join('\n') });
  }
  return out;
}

const SERVE = `const net = require('node:net');
const replies = Object.entries(JSON.parse(process.argv[1]));
let listening = 0;
for (const [port, reply] of replies) {
  net.createServer((s) => s.end(reply)).listen({ port: Number(port), host: '::' }, () => {
    if (++listening === replies.length) console.log('ready');
  });
}`;

const CONNECT = `const net = require('node:net');
const one = ([host, port]) => new Promise((resolve) => {
  const s = net.connect({ host, port });
  let data = '';
  s.setEncoding('utf8');
  s.on('data', (c) => { data += c; });
  s.on('end', () => resolve(data));
  s.on('error', (e) => resolve('error ' + e.code));
  s.setTimeout(5000, () => { resolve('no answer'); s.destroy(); });
});
(async () => {
  const out = [];
  for (const target of JSON.parse(process.argv[1])) out.push(await one(target));
  console.log(JSON.stringify(out));
})();`;

/** Servers in `ns` answering each connection with a word per port, until kill(). */
async function serve(ns: Netns, replies: Record<number, string>): Promise<{ kill(): Promise<void> }> {
  const child = ns.spawn(NODE, ['-e', SERVE, JSON.stringify(replies)]);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await waitForLine(child, /ready/);
  return {
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** What a client in `ns` (as root, or as the proxy's uid and gid 1337) receives from each host and port. */
async function answers(
  ns: Netns,
  targets: [string, number][],
  as: 'app' | 'proxy' = 'app',
): Promise<string[]> {
  const client = ['-e', CONNECT, JSON.stringify(targets)];
  const r =
    as === 'app'
      ? await ns.exec(NODE, client)
      : await ns.exec('setpriv', ['--reuid', '1337', '--regid', '1337', '--clear-groups', NODE, ...client]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as string[];
}

for (const backend of BACKENDS) {
  // Each test has namespaces of its own, so they can run side by side.
  describe(`remora iptables --backend ${backend.name}`, { concurrency: 4 }, () => {
    const flags = ['--backend', backend.name, '--ipv6'];

    test('apply installs the capture chains for IPv4 and IPv6 and puts ::6 on lo', async () => {
      const ns = await newNetns();
      const r = await remora(ns, ['apply', ...flags, '--capture-dns']);
      assertExit(r, 0, 'apply');
      assert.match(r.stdout, /capture rules installed/);
      const state = await backend.state(ns);
      const expected =
        backend.name === 'nft'
          ? [
              'type nat hook prerouting priority dstnat; policy accept;',
              'meta l4proto tcp jump REMORA_INBOUND',
              'type nat hook output priority -100; policy accept;',
              'oifname "lo" ip saddr 127.0.0.6 return',
              'oifname "lo" ip6 saddr ::6 return',
              'meta skuid 1337 return',
              'meta skgid 1337 return',
              'udp dport 53 jump REMORA_DNS',
              'meta l4proto tcp redirect to :15001',
              'meta l4proto tcp redirect to :15006',
              'meta l4proto udp redirect to :15053',
            ]
          : [
              '-A PREROUTING -p tcp -j REMORA_INBOUND',
              '-A OUTPUT -p tcp -j REMORA_OUTPUT',
              '-A OUTPUT -p udp -m udp --dport 53 -j REMORA_DNS',
              '-A REMORA_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN',
              '-A REMORA_OUTPUT -s ::6/128 -o lo -j RETURN',
              '-A REMORA_OUTPUT -m owner --uid-owner 1337 -j RETURN',
              '-A REMORA_OUTPUT -m owner --gid-owner 1337 -j RETURN',
              '-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
              '-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
              '-A REMORA_DNS -p udp -j REDIRECT --to-ports 15053',
            ];
      for (const line of expected) assert.ok(state.includes(line), `missing ${line} in:\n${state}`);
      assert.ok(await hasLo6(ns), 'apply adds ::6/128 to lo');
    });

    test('apply twice leaves one set of rules; a second apply without --capture-dns drops DNS capture', async () => {
      const ns = await newNetns();
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'first apply');
      const once = await backend.state(ns);
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'second apply');
      assert.equal(await backend.state(ns), once);
      if (backend.name !== 'nft') {
        const jumps = once.split('\n').filter((l) => /^-A (PREROUTING|OUTPUT) .*-j REMORA_/.test(l));
        assert.equal(jumps.length, 4, `one jump per built-in chain and family:\n${jumps.join('\n')}`);
      }
      assertExit(await remora(ns, ['apply', ...flags, '--capture-dns']), 0, 'apply with DNS');
      assert.match(await backend.state(ns), /REMORA_DNS/);
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'apply without DNS');
      assert.equal(await backend.state(ns), once);
      assert.ok(await hasLo6(ns));
    });

    test('apply --no-ipv6 after an IPv6 apply leaves IPv4 rules only, and takes ::6 off lo', async () => {
      const ns = await newNetns();
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'apply with IPv6');
      assertExit(
        await remora(ns, ['apply', '--backend', backend.name, '--no-ipv6']),
        0,
        'apply without IPv6',
      );
      const state = await backend.state(ns);
      assert.doesNotMatch(state, /::6|::1|ip6 |LO6/);
      assert.match(state, /127\.0\.0\.6/);
      assert.equal(await hasLo6(ns), false);
      if (backend.name === 'nft')
        assert.match(state, /meta nfproto ipv4 meta l4proto tcp jump REMORA_OUTPUT/);
    });

    test("a user's own rules in the nat tables survive apply and clean", async () => {
      const ns = await newNetns();
      await backend.addUserRules(ns);
      const before = await snapshot(ns);
      assertExit(await remora(ns, ['apply', ...flags, '--capture-dns']), 0, 'apply');
      const applied = await snapshot(ns);
      for (const line of before.split('\n')) {
        if (/192\.0\.2\.1|2001:db8::1|USER_CHAIN|dport 9/.test(line)) assert.ok(applied.includes(line), line);
      }
      assertExit(await remora(ns, ['clean', ...flags]), 0, 'clean');
      assert.equal(await snapshot(ns), before);
    });

    test('clean removes every chain and ::6, and succeeds when nothing is installed', async () => {
      const ns = await newNetns();
      const fresh = await remora(ns, ['clean', ...flags]);
      assertExit(fresh, 0, 'clean of a fresh namespace');
      assert.match(fresh.stdout, /no capture rules were installed/);
      assertExit(await remora(ns, ['apply', ...flags, '--capture-dns']), 0, 'apply');
      const r = await remora(ns, ['clean', ...flags]);
      assertExit(r, 0, 'clean');
      assert.match(r.stdout, /capture rules removed/);
      const after = await snapshot(ns);
      assert.doesNotMatch(after, /REMORA|remora/);
      assert.equal(await hasLo6(ns), false, 'clean removes the ::6 that apply added');
      const again = await remora(ns, ['clean', ...flags]);
      assertExit(again, 0, 'second clean');
      assert.match(again.stdout, /no capture rules were installed/);
    });

    test('::6 that lo had before apply is left there by clean', async () => {
      const ns = await newNetns();
      await ns.ip('-6', 'addr', 'add', '::6/128', 'dev', 'lo');
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'apply');
      assertExit(await remora(ns, ['apply', ...flags]), 0, 'apply again');
      assertExit(await remora(ns, ['clean', ...flags]), 0, 'clean');
      assert.ok(await hasLo6(ns));
    });

    test('print needs no root, changes nothing, and shows exactly what apply loads', async () => {
      const ns = await newNetns();
      const before = await snapshot(ns);
      const r = await remora(
        ns,
        ['print', ...flags, '--capture-dns', '--exclude-outbound-cidrs', '10.96.0.0/12'],
        'nobody',
      );
      assertExit(r, 0, 'print as nobody');
      assert.equal(await snapshot(ns), before);
      const commands = printedCommands(r.stdout);
      assert.deepEqual(
        commands.map((c) => c.argv[0]),
        backend.name === 'nft'
          ? ['nft', 'ip']
          : [
              `iptables-${backend.name === 'iptables' ? 'nft' : 'legacy'}-restore`,
              commands[1]!.argv[0],
              'ip',
            ],
      );
      // Feeding the printed scripts by hand gives the same rules as apply does.
      for (const c of commands) await ns.execOk(c.argv[0]!, c.argv.slice(1), c.input);
      const other = await newNetns();
      assertExit(
        await remora(other, ['apply', ...flags, '--capture-dns', '--exclude-outbound-cidrs', '10.96.0.0/12']),
        0,
        'apply',
      );
      assert.equal(await backend.state(ns), await backend.state(other));
      assert.ok(await hasLo6(ns));
    });

    test('apply and clean as an unprivileged user exit 77 and change nothing', async () => {
      const ns = await newNetns();
      const before = await snapshot(ns);
      for (const action of ['apply', 'clean']) {
        const r = await remora(ns, [action, ...flags], 'nobody');
        assertExit(r, 77, `${action} as nobody`);
        assert.match(r.stderr, /needs root/);
        assert.match(r.stderr, /REMORA_ERR_CAPTURE_NOT_ROOT/);
      }
      assert.equal(await snapshot(ns), before);
    });

    test('a missing tool exits 69 naming it and its Debian package, before changing anything', async () => {
      const ns = await newNetns();
      const before = await snapshot(ns);
      const empty = mkdtempSync(join(scratch, 'empty-'));
      const r = await remora(ns, ['apply', ...flags], 'root', { ...process.env, PATH: empty });
      assertExit(r, 69, 'apply with an empty PATH');
      const tool =
        backend.name === 'nft' ? 'nft' : `iptables-${backend.name === 'iptables' ? 'nft' : 'legacy'}-save`;
      const pkg = backend.name === 'nft' ? 'nftables' : 'iptables';
      assert.match(
        r.stderr,
        new RegExp(`${tool} was not found on PATH: install the Debian package "${pkg}"`),
      );
      // Every rule tool there, but no ip to put ::6 on lo.
      const noIp = mkdtempSync(join(scratch, 'no-ip-'));
      for (const t of ['nft', 'iptables-nft', 'ip6tables-nft', 'iptables-legacy', 'ip6tables-legacy']) {
        for (const s of t === 'nft' ? [''] : ['-save', '-restore'])
          symlinkSync(which(`${t}${s}`)!, join(noIp, `${t}${s}`));
      }
      const r2 = await remora(ns, ['apply', ...flags], 'root', { ...process.env, PATH: noIp });
      assertExit(r2, 69, 'apply without ip');
      assert.match(r2.stderr, /ip was not found on PATH: install the Debian package "iproute2"/);
      assert.equal(await snapshot(ns), before);
    });

    test('a failing load is reported with the tool error and leaves no rule behind', async () => {
      const ns = await newNetns();
      // ::6 cannot be added to lo now (/proc/sys/net is the namespace's own).
      await ns.execOk('sh', ['-c', 'echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6']);
      await backend.addUserRules(ns);
      const before = await snapshot(ns);
      const r = await remora(ns, ['apply', ...flags, '--capture-dns']);
      assertExit(r, 1, 'apply that cannot add ::6');
      assert.match(r.stderr, /ip -6 addr add ::6\/128 dev lo failed/);
      assert.match(r.stderr, /IPv6 is disabled on this device/);
      assert.match(r.stderr, /every Remora rule was removed again/);
      assert.equal(await snapshot(ns), before);
    });

    test("connections are redirected: the app's outbound, inbound from a peer, the proxy's own not", async () => {
      // A pod namespace and a peer namespace joined by a veth pair: every address below lives in them.
      const pod = await newNetns();
      const peer = await newNetns();
      await linkVeth(pod, peer, uniqueSuffix(), {
        a4: '10.213.0.1',
        b4: '10.213.0.2',
        a6: 'fd00:213::1',
        b6: 'fd00:213::2',
      });
      const proxy = await serve(pod, { 15001: 'outbound', 15006: 'inbound' });
      const server = await serve(peer, { 80: 'server' });
      const V4: [string, number] = ['10.213.0.2', 80];
      const V6: [string, number] = ['fd00:213::2', 80];
      try {
        assert.deepEqual(await answers(pod, [V4, V6]), ['server', 'server'], 'reachable before capture');
        assertExit(await remora(pod, ['apply', ...flags]), 0, 'apply');
        // The application's outbound connections reach the proxy; localhost is left alone.
        assert.deepEqual(await answers(pod, [V4, V6, ['127.0.0.1', 15006]]), [
          'outbound',
          'outbound',
          'inbound',
        ]);
        // The proxy's own go out as they are, except to its own pod's address: through the inbound side.
        assert.deepEqual(await answers(pod, [V4, V6, ['10.213.0.1', 80]], 'proxy'), [
          'server',
          'server',
          'inbound',
        ]);
        // From the peer: inbound captured, except the proxy's own ports (nothing listens on 8080 or 15021).
        assert.deepEqual(
          await answers(peer, [
            ['10.213.0.1', 8080],
            ['fd00:213::1', 8080],
            ['10.213.0.1', 15021],
          ]),
          ['inbound', 'inbound', 'error ECONNREFUSED'],
        );
        assertExit(
          await remora(pod, ['apply', ...flags, '--exclude-outbound-cidrs', '10.213.0.2/32']),
          0,
          'apply',
        );
        assert.deepEqual(await answers(pod, [V4, V6]), ['server', 'outbound'], 'an excluded range');
        assertExit(await remora(pod, ['clean', ...flags]), 0, 'clean');
        assert.deepEqual(await answers(pod, [V4, V6]), ['server', 'server']);
        assert.deepEqual(await answers(peer, [['10.213.0.1', 8080]]), ['error ECONNREFUSED']);
      } finally {
        await proxy.kill();
        await server.kill();
      }
    });
  });
}

test('with no packet filter tool at all, the backend cannot be detected: exit 69', async () => {
  const ns = await newNetns();
  const empty = mkdtempSync(join(scratch, 'empty-'));
  const r = await remora(ns, ['apply'], 'root', { ...process.env, PATH: empty });
  assertExit(r, 69, 'apply with an empty PATH');
  assert.match(r.stderr, /neither iptables nor nft was found on PATH/);
});

test('bad flags exit 1 naming the flag and the value, before anything else', async () => {
  const ns = await newNetns();
  const r = await remora(ns, ['apply', '--proxy-uid', 'istio', '--backend', 'pf'], 'nobody');
  assertExit(r, 1, 'bad flags');
  assert.match(r.stderr, /--proxy-uid: invalid value "istio"/);
  assert.match(r.stderr, /--backend: invalid value "pf"/);
  const action = await remora(ns, ['install'], 'nobody');
  assertExit(action, 1, 'unknown action');
  assert.match(action.stderr, /unknown action "install"/);
});

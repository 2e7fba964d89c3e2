// Tests of the iptables-restore scripts: the default rule set, each flag's effect, IPv6, re-apply and clean.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  IptablesBackend,
  iptablesTools,
  parseSaved,
  renderApplyScript,
  renderCleanScript,
} from './iptables_backend.js';
import { type CaptureFlags, parseCaptureFlags } from './options.js';
import { buildRuleSet, type Family, type RuleSet } from './rules.js';

function ruleSet(flags: CaptureFlags = {}, ipv6 = false, ownsLo6 = false): RuleSet {
  const r = parseCaptureFlags(flags);
  assert.ok(r.ok);
  return buildRuleSet(r.value, { ipv6, ownsLo6 });
}

function script(flags: CaptureFlags = {}, family: Family = 4, ipv6 = family === 6): string[] {
  return renderApplyScript(ruleSet(flags, ipv6), family).trimEnd().split('\n');
}

test('the default IPv4 script: Istio rule set, own chain names, loaded in one transaction', () => {
  assert.deepEqual(script(), [
    '*nat',
    ':REMORA_INBOUND - [0:0]',
    ':REMORA_IN_REDIRECT - [0:0]',
    ':REMORA_OUTPUT - [0:0]',
    ':REMORA_REDIRECT - [0:0]',
    '-A PREROUTING -p tcp -j REMORA_INBOUND',
    '-A OUTPUT -p tcp -j REMORA_OUTPUT',
    '-A REMORA_INBOUND -p tcp --dport 15000 -j RETURN',
    '-A REMORA_INBOUND -p tcp --dport 15020 -j RETURN',
    '-A REMORA_INBOUND -p tcp --dport 15021 -j RETURN',
    '-A REMORA_INBOUND -p tcp --dport 15090 -j RETURN',
    '-A REMORA_INBOUND -p tcp -j REMORA_IN_REDIRECT',
    '-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
    '-A REMORA_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN',
    '-A REMORA_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --uid-owner 1337 -j REMORA_IN_REDIRECT',
    '-A REMORA_OUTPUT -o lo -m owner ! --uid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -m owner --uid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -o lo ! -d 127.0.0.1/32 -m owner --gid-owner 1337 -j REMORA_IN_REDIRECT',
    '-A REMORA_OUTPUT -o lo -m owner ! --gid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -m owner --gid-owner 1337 -j RETURN',
    '-A REMORA_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A REMORA_OUTPUT -j REMORA_REDIRECT',
    '-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
    'COMMIT',
  ]);
});

test("the IPv6 script uses ::6 and ::1 and records that ::6 on lo is Remora's when it is", () => {
  const v6 = renderApplyScript(ruleSet({}, true, true), 6).split('\n');
  assert.ok(v6.includes('-A REMORA_OUTPUT -o lo -s ::6/128 -j RETURN'));
  assert.ok(
    v6.includes('-A REMORA_OUTPUT -o lo ! -d ::1/128 -m owner --uid-owner 1337 -j REMORA_IN_REDIRECT'),
  );
  assert.ok(v6.includes('-A REMORA_OUTPUT -d ::1/128 -j RETURN'));
  assert.ok(v6.includes(':REMORA_LO6_ADDED - [0:0]'));
  assert.ok(!v6.some((l) => l.includes('127.0.0.')), 'no IPv4 address in the IPv6 table');
  const v4 = renderApplyScript(ruleSet({}, true, true), 4);
  assert.ok(!v4.includes('::'), 'no IPv6 address in the IPv4 table');
  assert.ok(!v4.includes('REMORA_LO6_ADDED'));
  assert.ok(!renderApplyScript(ruleSet({}, true, false), 6).includes('REMORA_LO6_ADDED'));
});

test('uid and gid flags change every owner match', () => {
  const lines = script({ proxyUid: '2001', proxyGid: '2002' }).filter((l) => l.includes('owner'));
  assert.equal(lines.length, 6);
  assert.equal(lines.filter((l) => l.includes('--uid-owner 2001')).length, 3);
  assert.equal(lines.filter((l) => l.includes('--gid-owner 2002')).length, 3);
});

test('port flags change the redirect targets', () => {
  const lines = script({ outboundPort: '16001', inboundPort: '16006' });
  assert.ok(lines.includes('-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 16001'));
  assert.ok(lines.includes('-A REMORA_IN_REDIRECT -p tcp -j REDIRECT --to-ports 16006'));
});

test('excluded outbound ports return first, before the loopback rules', () => {
  const lines = script({ excludeOutboundPorts: '22,3306' });
  const at = lines.indexOf('-A REMORA_OUTPUT -p tcp --dport 22 -j RETURN');
  assert.ok(at > 0);
  assert.equal(lines[at + 1], '-A REMORA_OUTPUT -p tcp --dport 3306 -j RETURN');
  assert.equal(lines[at + 2], '-A REMORA_OUTPUT -o lo -s 127.0.0.6/32 -j RETURN');
});

test('outbound CIDRs: exclusions return after localhost; inclusions replace the catch-all, per family', () => {
  const flags = {
    excludeOutboundCidrs: '10.96.0.0/12,fd00::/8',
    includeOutboundCidrs: '10.0.0.0/8,fd01::/16',
  };
  const v4 = script(flags, 4, true);
  assert.deepEqual(v4.slice(-5, -1), [
    '-A REMORA_OUTPUT -d 127.0.0.1/32 -j RETURN',
    '-A REMORA_OUTPUT -d 10.96.0.0/12 -j RETURN',
    '-A REMORA_OUTPUT -d 10.0.0.0/8 -j REMORA_REDIRECT',
    '-A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
  ]);
  assert.ok(!v4.includes('-A REMORA_OUTPUT -j REMORA_REDIRECT'));
  const v6 = script(flags, 6);
  assert.ok(v6.includes('-A REMORA_OUTPUT -d fd00::/8 -j RETURN'));
  assert.ok(v6.includes('-A REMORA_OUTPUT -d fd01::/16 -j REMORA_REDIRECT'));
  // A family without an included range has no outbound capture at all.
  const onlyV4 = script({ includeOutboundCidrs: '10.0.0.0/8' }, 6);
  assert.ok(!onlyV4.some((l) => l.startsWith('-A REMORA_OUTPUT') && l.endsWith('-j REMORA_REDIRECT')));
});

test('inbound ports: exclusions return, inclusions replace the catch-all', () => {
  const lines = script({ includeInboundPorts: '8080,9090', excludeInboundPorts: '9999' });
  assert.deepEqual(
    lines.filter((l) => l.startsWith('-A REMORA_INBOUND')),
    [
      '-A REMORA_INBOUND -p tcp --dport 9999 -j RETURN',
      '-A REMORA_INBOUND -p tcp --dport 15000 -j RETURN',
      '-A REMORA_INBOUND -p tcp --dport 15020 -j RETURN',
      '-A REMORA_INBOUND -p tcp --dport 15021 -j RETURN',
      '-A REMORA_INBOUND -p tcp --dport 15090 -j RETURN',
      '-A REMORA_INBOUND -p tcp --dport 8080 -j REMORA_IN_REDIRECT',
      '-A REMORA_INBOUND -p tcp --dport 9090 -j REMORA_IN_REDIRECT',
    ],
  );
});

test('--capture-dns: UDP 53 through REMORA_DNS (proxy exempt), TCP 53 after the owner rules, lo rules skip 53', () => {
  const lines = script({ captureDns: true });
  assert.ok(lines.includes(':REMORA_DNS - [0:0]'));
  assert.ok(lines.includes('-A OUTPUT -p udp --dport 53 -j REMORA_DNS'));
  assert.deepEqual(
    lines.filter((l) => l.startsWith('-A REMORA_DNS')),
    [
      '-A REMORA_DNS -m owner --uid-owner 1337 -j RETURN',
      '-A REMORA_DNS -m owner --gid-owner 1337 -j RETURN',
      '-A REMORA_DNS -p udp -j REDIRECT --to-ports 15053',
    ],
  );
  const tcpDns = lines.indexOf('-A REMORA_OUTPUT -p tcp --dport 53 -j REDIRECT --to-ports 15053');
  assert.ok(tcpDns > lines.indexOf('-A REMORA_OUTPUT -m owner --gid-owner 1337 -j RETURN'));
  assert.ok(tcpDns < lines.indexOf('-A REMORA_OUTPUT -d 127.0.0.1/32 -j RETURN'));
  assert.ok(
    lines.includes(
      '-A REMORA_OUTPUT -o lo ! -d 127.0.0.1/32 -p tcp ! --dport 53 -m owner --uid-owner 1337 -j REMORA_IN_REDIRECT',
    ),
  );
  assert.ok(
    lines.includes('-A REMORA_OUTPUT -o lo -p tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN'),
  );
  assert.ok(!script().some((l) => l.includes('53')));
});

const SAVED = `# Generated by iptables-save v1.8.9 (nf_tables) on Thu Nov 26 12:00:00 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:REMORA_DNS - [0:0]
:REMORA_INBOUND - [0:0]
:REMORA_OUTPUT - [0:0]
:USER_CHAIN - [0:0]
-A PREROUTING -p tcp -j REMORA_INBOUND
-A PREROUTING -p tcp -m comment --comment "-j REMORA_X" -j USER_CHAIN
-A OUTPUT -d 192.0.2.1/32 -p tcp -j RETURN
-A OUTPUT -p tcp -j REMORA_OUTPUT
-A OUTPUT -p udp -m udp --dport 53 -j REMORA_DNS
-A REMORA_INBOUND -p tcp -j RETURN
-A USER_CHAIN -j RETURN
COMMIT
# Completed on Thu Nov 26 12:00:00 2026
`;

test('parseSaved finds Remora chains and the jumps into them, and nothing of the user', () => {
  assert.deepEqual(parseSaved(SAVED), {
    chains: ['REMORA_DNS', 'REMORA_INBOUND', 'REMORA_OUTPUT'],
    jumps: [
      { chain: 'PREROUTING', spec: '-p tcp -j REMORA_INBOUND' },
      { chain: 'OUTPUT', spec: '-p tcp -j REMORA_OUTPUT' },
      { chain: 'OUTPUT', spec: '-p udp -m udp --dport 53 -j REMORA_DNS' },
    ],
  });
  assert.deepEqual(parseSaved('*filter\n:REMORA_X - [0:0]\n-A INPUT -j REMORA_X\nCOMMIT\n'), {
    chains: [],
    jumps: [],
  });
});

test('re-apply: old jumps deleted and stale chains removed in the same transaction as the new rules', () => {
  const lines = renderApplyScript(ruleSet(), 4, parseSaved(SAVED)).split('\n');
  const head = lines.slice(0, 13);
  assert.deepEqual(head, [
    '*nat',
    ':REMORA_INBOUND - [0:0]',
    ':REMORA_IN_REDIRECT - [0:0]',
    ':REMORA_OUTPUT - [0:0]',
    ':REMORA_REDIRECT - [0:0]',
    '-D PREROUTING -p tcp -j REMORA_INBOUND',
    '-D OUTPUT -p tcp -j REMORA_OUTPUT',
    '-D OUTPUT -p udp -m udp --dport 53 -j REMORA_DNS',
    '-F REMORA_DNS',
    '-X REMORA_DNS',
    '-A PREROUTING -p tcp -j REMORA_INBOUND',
    '-A OUTPUT -p tcp -j REMORA_OUTPUT',
    '-A REMORA_INBOUND -p tcp --dport 15000 -j RETURN',
  ]);
  assert.equal(lines.filter((l) => l.includes('-A PREROUTING')).length, 1);
});

test('clean: jumps, then every chain flushed before any is deleted; nothing installed means no script', () => {
  assert.equal(
    renderCleanScript(parseSaved(SAVED)),
    [
      '*nat',
      '-D PREROUTING -p tcp -j REMORA_INBOUND',
      '-D OUTPUT -p tcp -j REMORA_OUTPUT',
      '-D OUTPUT -p udp -m udp --dport 53 -j REMORA_DNS',
      '-F REMORA_DNS',
      '-F REMORA_INBOUND',
      '-F REMORA_OUTPUT',
      '-X REMORA_DNS',
      '-X REMORA_INBOUND',
      '-X REMORA_OUTPUT',
      'COMMIT',
      '',
    ].join('\n'),
  );
  assert.equal(renderCleanScript(parseSaved('*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n')), undefined);
});

test('each backend names its own binaries, for each family', () => {
  assert.deepEqual(iptablesTools('iptables', 4), {
    restore: 'iptables-nft-restore',
    save: 'iptables-nft-save',
  });
  assert.deepEqual(iptablesTools('iptables', 6), {
    restore: 'ip6tables-nft-restore',
    save: 'ip6tables-nft-save',
  });
  assert.deepEqual(iptablesTools('iptables-legacy', 4), {
    restore: 'iptables-legacy-restore',
    save: 'iptables-legacy-save',
  });
  const scripts = new IptablesBackend('iptables-legacy').scripts(ruleSet({}, true));
  assert.deepEqual(
    scripts.map((s) => [s.tool, ...s.args].join(' ')),
    ['iptables-legacy-restore --noflush --wait', 'ip6tables-legacy-restore --noflush --wait'],
  );
});

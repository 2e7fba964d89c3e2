// Tests of the nft script: one inet table with both families, replaced whole, redirects after a protocol match.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderNftScript } from './nft_backend.js';
import { type CaptureFlags, parseCaptureFlags } from './options.js';
import { buildRuleSet } from './rules.js';

function nft(flags: CaptureFlags = {}, ipv6 = true, ownsLo6 = false): string {
  const r = parseCaptureFlags(flags);
  assert.ok(r.ok);
  return renderNftScript(buildRuleSet(r.value, { ipv6, ownsLo6 }));
}

test('the default dual-stack table', () => {
  assert.equal(
    nft(),
    `table inet remora
delete table inet remora
table inet remora {
	chain prerouting {
		type nat hook prerouting priority -100; policy accept;
		meta l4proto tcp jump REMORA_INBOUND
	}
	chain output {
		type nat hook output priority -100; policy accept;
		meta l4proto tcp jump REMORA_OUTPUT
	}
	chain REMORA_INBOUND {
		tcp dport 15000 return
		tcp dport 15020 return
		tcp dport 15021 return
		tcp dport 15090 return
		meta l4proto tcp jump REMORA_IN_REDIRECT
	}
	chain REMORA_IN_REDIRECT {
		meta l4proto tcp redirect to :15006
	}
	chain REMORA_OUTPUT {
		oifname "lo" ip saddr 127.0.0.6 return
		oifname "lo" ip6 saddr ::6 return
		oifname "lo" ip daddr != 127.0.0.1 meta skuid 1337 jump REMORA_IN_REDIRECT
		oifname "lo" ip6 daddr != ::1 meta skuid 1337 jump REMORA_IN_REDIRECT
		oifname "lo" meta skuid != 1337 return
		meta skuid 1337 return
		oifname "lo" ip daddr != 127.0.0.1 meta skgid 1337 jump REMORA_IN_REDIRECT
		oifname "lo" ip6 daddr != ::1 meta skgid 1337 jump REMORA_IN_REDIRECT
		oifname "lo" meta skgid != 1337 return
		meta skgid 1337 return
		ip daddr 127.0.0.1 return
		ip6 daddr ::1 return
		jump REMORA_REDIRECT
	}
	chain REMORA_REDIRECT {
		meta l4proto tcp redirect to :15001
	}
}
`,
  );
});

test('IPv4 only: the base chains admit IPv4 alone and no IPv6 rule is written', () => {
  const text = nft({}, false);
  assert.ok(text.includes('\t\tmeta nfproto ipv4 meta l4proto tcp jump REMORA_INBOUND\n'));
  assert.ok(text.includes('\t\tmeta nfproto ipv4 meta l4proto tcp jump REMORA_OUTPUT\n'));
  assert.ok(!text.includes('ip6'));
});

test('flags: CIDRs per family, ports, owners, DNS and the ::6 record', () => {
  const text = nft(
    {
      proxyUid: '2001',
      proxyGid: '2002',
      outboundPort: '16001',
      inboundPort: '16006',
      includeOutboundCidrs: '10.0.0.0/8,fd01::/16',
      excludeOutboundCidrs: '10.96.0.0/12,fd00::1',
      excludeOutboundPorts: '22',
      includeInboundPorts: '8080',
      excludeInboundPorts: '9999',
      captureDns: true,
    },
    true,
    true,
  );
  for (const line of [
    'meta l4proto tcp redirect to :16001',
    'meta l4proto tcp redirect to :16006',
    'tcp dport 22 return',
    'tcp dport 9999 return',
    'tcp dport 8080 jump REMORA_IN_REDIRECT',
    'ip daddr 10.96.0.0/12 return',
    'ip6 daddr fd00::1 return',
    'ip daddr 10.0.0.0/8 jump REMORA_REDIRECT',
    'ip6 daddr fd01::/16 jump REMORA_REDIRECT',
    'oifname "lo" ip daddr != 127.0.0.1 tcp dport != 53 meta skuid 2001 jump REMORA_IN_REDIRECT',
    'oifname "lo" tcp dport != 53 meta skgid != 2002 return',
    'tcp dport 53 redirect to :15053',
    'udp dport 53 jump REMORA_DNS',
    'meta skuid 2001 return',
    'meta l4proto udp redirect to :15053',
    'chain REMORA_LO6_ADDED {',
  ]) {
    assert.ok(text.includes(`\t${line}\n`), `missing: ${line}\n${text}`);
  }
  assert.ok(!/^\t\tjump REMORA_REDIRECT$/m.test(text), 'no catch-all redirect when CIDRs are listed');
});

test('every redirect follows a protocol match', () => {
  const text = nft({ captureDns: true, excludeOutboundPorts: '22' });
  for (const line of text.split('\n').filter((l) => l.includes('redirect to'))) {
    assert.match(line, /(meta l4proto (tcp|udp)|tcp dport \d+) redirect to :\d+$/);
  }
});

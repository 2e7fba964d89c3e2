// Tests of `remora iptables` flag parsing: defaults, each flag's values, and every bad value named with its flag.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CaptureFlags,
  type CaptureOptions,
  PROXY_OWN_PORTS,
  parseCaptureFlags,
  parseCidr,
} from './options.js';

function ok(flags: CaptureFlags): CaptureOptions {
  const r = parseCaptureFlags(flags);
  assert.ok(r.ok, `expected valid flags, got ${JSON.stringify(!r.ok && r.errors)}`);
  return r.value;
}

function errors(flags: CaptureFlags): string[] {
  const r = parseCaptureFlags(flags);
  assert.ok(!r.ok, `expected errors for ${JSON.stringify(flags)}`);
  return r.errors.map((e) => `${e.path}: ${e.message}`);
}

test('no flags: Istio defaults, IPv6 and backend left to detection', () => {
  assert.deepEqual(ok({}), {
    proxyUid: 1337,
    proxyGid: 1337,
    outboundPort: 15001,
    inboundPort: 15006,
    includeOutboundCidrs: '*',
    excludeOutboundCidrs: [],
    excludeOutboundPorts: [],
    includeInboundPorts: '*',
    excludeInboundPorts: [15000, 15020, 15021, 15090],
    captureDns: false,
    ipv6: 'auto',
    backend: 'auto',
  });
});

test('every flag is read', () => {
  const o = ok({
    proxyUid: '2000',
    proxyGid: '3000',
    outboundPort: '16001',
    inboundPort: '16006',
    includeOutboundCidrs: '10.0.0.0/8, fd00::/8,192.168.1.1',
    excludeOutboundCidrs: '10.96.0.0/12',
    excludeOutboundPorts: '22,3306',
    includeInboundPorts: '8080, 9090',
    excludeInboundPorts: '9999',
    captureDns: true,
    ipv6: false,
    backend: 'iptables-legacy',
  });
  assert.equal(o.proxyUid, 2000);
  assert.equal(o.proxyGid, 3000);
  assert.equal(o.outboundPort, 16001);
  assert.equal(o.inboundPort, 16006);
  assert.deepEqual(o.includeOutboundCidrs, [
    { family: 4, text: '10.0.0.0/8' },
    { family: 6, text: 'fd00::/8' },
    { family: 4, text: '192.168.1.1/32' },
  ]);
  assert.deepEqual(o.excludeOutboundCidrs, [{ family: 4, text: '10.96.0.0/12' }]);
  assert.deepEqual(o.excludeOutboundPorts, [22, 3306]);
  assert.deepEqual(o.includeInboundPorts, [8080, 9090]);
  assert.equal(o.captureDns, true);
  assert.equal(o.ipv6, false);
  assert.equal(o.backend, 'iptables-legacy');
});

test("--exclude-inbound-ports adds to the proxy's own ports, which stay excluded", () => {
  assert.deepEqual(
    ok({ excludeInboundPorts: '22,15020' }).excludeInboundPorts,
    [22, 15020, 15000, 15021, 15090],
  );
  assert.deepEqual(ok({ excludeInboundPorts: '' }).excludeInboundPorts, PROXY_OWN_PORTS);
});

test('empty lists capture nothing; "*" alone captures everything; duplicates collapse', () => {
  assert.deepEqual(ok({ includeOutboundCidrs: '' }).includeOutboundCidrs, []);
  assert.deepEqual(ok({ includeInboundPorts: '' }).includeInboundPorts, []);
  assert.equal(ok({ includeInboundPorts: ' * ' }).includeInboundPorts, '*');
  assert.deepEqual(ok({ excludeOutboundPorts: '22,22' }).excludeOutboundPorts, [22]);
  assert.deepEqual(ok({ excludeOutboundCidrs: '10.0.0.0/8,10.0.0.0/8' }).excludeOutboundCidrs.length, 1);
});

test('--ipv6 and --no-ipv6 override detection; every backend name is accepted', () => {
  assert.equal(ok({ ipv6: true }).ipv6, true);
  assert.equal(ok({ ipv6: false }).ipv6, false);
  for (const b of ['iptables', 'iptables-legacy', 'nft']) assert.equal(ok({ backend: b }).backend, b);
});

test('each bad value is an error naming the flag and the value', () => {
  const cases: [CaptureFlags, string][] = [
    [{ proxyUid: 'istio' }, '--proxy-uid: invalid value "istio"'],
    [{ proxyUid: '-1' }, '--proxy-uid: invalid value "-1"'],
    [{ proxyUid: '4294967295' }, '--proxy-uid: invalid value "4294967295"'],
    [{ proxyUid: '0' }, '--proxy-uid: invalid value "0": the proxy must not run as root'],
    [{ proxyGid: '1.5' }, '--proxy-gid: invalid value "1.5"'],
    [{ outboundPort: '0' }, '--outbound-port: invalid value "0": expected a port from 1 to 65535'],
    [{ inboundPort: '65536' }, '--inbound-port: invalid value "65536"'],
    [{ inboundPort: '15001' }, '--inbound-port: invalid value "15001": must differ from the outbound port'],
    [{ outboundPort: '15006' }, '--outbound-port: invalid value "15006": must differ from the inbound port'],
    [
      { outboundPort: '15020' },
      '--outbound-port: invalid value "15020": 15020 is one of the proxy\'s own ports',
    ],
    [
      { inboundPort: '15053', captureDns: true },
      '--inbound-port: invalid value "15053": 15053 receives captured DNS',
    ],
    [{ includeOutboundCidrs: '10.0.0.0/8,bogus' }, '--include-outbound-cidrs: invalid value "bogus"'],
    [{ includeOutboundCidrs: '*,10.0.0.0/8' }, '--include-outbound-cidrs: invalid value "*,10.0.0.0/8": "*"'],
    [
      { excludeOutboundCidrs: '10.0.0.0/33' },
      '--exclude-outbound-cidrs: invalid value "10.0.0.0/33": prefix length',
    ],
    [{ excludeOutboundCidrs: '10.0.0.1/8' }, 'did you mean 10.0.0.0/8?'],
    [{ excludeOutboundCidrs: 'fd00::1/8' }, 'did you mean fd00::/8?'],
    [{ excludeOutboundCidrs: 'fe80::1%eth0' }, '--exclude-outbound-cidrs: invalid value "fe80::1%eth0"'],
    [{ excludeOutboundCidrs: '10.0.0.0/' }, '--exclude-outbound-cidrs: invalid value "10.0.0.0/"'],
    [{ excludeOutboundPorts: '22,,80' }, '--exclude-outbound-ports: invalid value ""'],
    [{ excludeOutboundPorts: '1-100' }, '--exclude-outbound-ports: invalid value "1-100"'],
    [{ includeInboundPorts: '8080,x' }, '--include-inbound-ports: invalid value "x"'],
    [
      { includeInboundPorts: '8080,15021' },
      '--include-inbound-ports: invalid value "15021": 15021 is one of the proxy\'s own ports',
    ],
    [{ excludeInboundPorts: '70000' }, '--exclude-inbound-ports: invalid value "70000"'],
    [{ backend: 'pf' }, '--backend: invalid value "pf": expected one of iptables, iptables-legacy, nft'],
  ];
  for (const [flags, expected] of cases) {
    const errs = errors(flags);
    assert.ok(
      errs.some((e) => e.includes(expected)),
      `${JSON.stringify(flags)}: expected an error containing\n  ${expected}\ngot\n  ${errs.join('\n  ')}`,
    );
  }
});

test('all errors are reported at once', () => {
  const errs = errors({ proxyUid: 'a', proxyGid: 'b', outboundPort: 'c', backend: 'd' });
  assert.deepEqual(
    errs.map((e) => e.split(':')[0]),
    ['--proxy-uid', '--proxy-gid', '--outbound-port', '--backend'],
  );
});

test('parseCidr: addresses become host ranges; IPv6 forms are accepted', () => {
  assert.deepEqual(parseCidr('10.1.2.3'), { family: 4, text: '10.1.2.3/32' });
  assert.deepEqual(parseCidr('::1'), { family: 6, text: '::1/128' });
  assert.deepEqual(parseCidr('0.0.0.0/0'), { family: 4, text: '0.0.0.0/0' });
  assert.deepEqual(parseCidr('2001:db8::/32'), { family: 6, text: '2001:db8::/32' });
  assert.equal(typeof parseCidr('2001:db8::/129'), 'string');
  assert.equal(typeof parseCidr('10.0.0.256/32'), 'string');
});

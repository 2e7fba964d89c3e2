// Unit: filter chain selection as a table of chains and connection facts → the chain chosen.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MATCH_ANY } from '../../config/filter_chain_match.js';
import type { FilterChainMatch } from '../../config/model.js';
import { type ConnectionFacts, FilterChainSelector, isSameIpOrLoopback } from './filter_chain_match.js';

type Chains = Record<string, Partial<FilterChainMatch>>;

const cidr = (s: string) => {
  const [addressPrefix, len] = s.split('/');
  return { addressPrefix: addressPrefix!, prefixLen: Number(len) };
};

const FACTS: ConnectionFacts = {
  destinationIp: '10.0.0.1',
  destinationPort: 8080,
  sourceIp: '10.9.9.9',
  sourcePort: 40000,
  serverName: '',
  transportProtocol: 'raw_buffer',
  applicationProtocols: [],
};

function chosen(chains: Chains, facts: Partial<ConnectionFacts>): string | undefined {
  const list = Object.entries(chains).map(([name, m]) => ({ match: { ...MATCH_ANY, ...m }, value: name }));
  return new FilterChainSelector(list).select({ ...FACTS, ...facts });
}

/** Each row: the connection facts and the chain expected (undefined: no chain matches). */
function table(chains: Chains, rows: [Partial<ConnectionFacts>, string | undefined][]): void {
  for (const [facts, expected] of rows) assert.equal(chosen(chains, facts), expected, JSON.stringify(facts));
}

test('one chain without a match takes everything', () => {
  table({ only: {} }, [
    [{}, 'only'],
    [{ serverName: 'x', transportProtocol: 'tls', applicationProtocols: ['h2'] }, 'only'],
  ]);
  assert.equal(new FilterChainSelector<string>([]).select(FACTS), undefined);
});

test('destination port: the exact port, else the chains without one', () => {
  table({ https: { destinationPort: 443 }, rest: {} }, [
    [{ destinationPort: 443 }, 'https'],
    [{ destinationPort: 80 }, 'rest'],
  ]);
  table({ https: { destinationPort: 443 } }, [[{ destinationPort: 80 }, undefined]]);
});

test('no going back: a port that matches commits to its chains even when a later stage then fails', () => {
  table({ a: { destinationPort: 443, serverNames: ['a.test'] }, rest: {} }, [
    [{ destinationPort: 443, serverName: 'a.test' }, 'a'],
    [{ destinationPort: 443, serverName: 'b.test' }, undefined],
    [{ destinationPort: 80, serverName: 'b.test' }, 'rest'],
  ]);
});

test('destination IP: the longest matching prefix; IPv4-mapped addresses match IPv4 ranges', () => {
  const chains: Chains = {
    wide: { prefixRanges: [cidr('10.0.0.0/8')] },
    narrow: { prefixRanges: [cidr('10.1.0.0/16'), cidr('192.168.1.0/24')] },
    v6: { prefixRanges: [cidr('2001:db8:0:0:0:0:0:0/32')] },
    any: {},
  };
  table(chains, [
    [{ destinationIp: '10.1.2.3' }, 'narrow'],
    [{ destinationIp: '10.2.0.1' }, 'wide'],
    [{ destinationIp: '192.168.1.77' }, 'narrow'],
    [{ destinationIp: '::ffff:10.1.2.3' }, 'narrow'],
    [{ destinationIp: '2001:db8::1' }, 'v6'],
    [{ destinationIp: '172.16.0.1' }, 'any'],
    [{ destinationIp: '::1' }, 'any'],
  ]);
  table({ host: { prefixRanges: [cidr('10.0.0.1/32')] } }, [
    [{ destinationIp: '10.0.0.1' }, 'host'],
    [{ destinationIp: '10.0.0.2' }, undefined],
  ]);
});

test('server names: exact, then the longest *. suffix, then chains without names', () => {
  const chains: Chains = {
    exact: { serverNames: ['a.example.com'] },
    sub: { serverNames: ['*.example.com', 'other.test'] },
    com: { serverNames: ['*.com'] },
    none: {},
  };
  table(chains, [
    [{ serverName: 'a.example.com' }, 'exact'],
    [{ serverName: 'b.example.com' }, 'sub'],
    [{ serverName: 'x.y.example.com' }, 'sub'],
    [{ serverName: 'other.test' }, 'sub'],
    [{ serverName: 'example.com' }, 'com'],
    [{ serverName: 'foo.org' }, 'none'],
    [{ serverName: '' }, 'none'],
    [{ serverName: 'com' }, 'none'],
  ]);
  table({ exact: { serverNames: ['a.test'] } }, [[{ serverName: '' }, undefined]]);
});

test('transport protocol: exact, else chains without one', () => {
  table({ tls: { transportProtocol: 'tls' }, raw: { transportProtocol: 'raw_buffer' }, any: {} }, [
    [{ transportProtocol: 'tls' }, 'tls'],
    [{ transportProtocol: 'raw_buffer' }, 'raw'],
  ]);
  table({ tls: { transportProtocol: 'tls' }, any: {} }, [[{ transportProtocol: 'raw_buffer' }, 'any']]);
});

test("application protocols: the client's first protocol some chain lists decides", () => {
  const chains: Chains = {
    h2: { applicationProtocols: ['h2'] },
    h1: { applicationProtocols: ['http/1.1', 'http/1.0'] },
    none: {},
  };
  table(chains, [
    [{ applicationProtocols: ['h2', 'http/1.1'] }, 'h2'],
    [{ applicationProtocols: ['http/1.1', 'h2'] }, 'h1'],
    [{ applicationProtocols: ['h3', 'http/1.0'] }, 'h1'],
    [{ applicationProtocols: ['h3'] }, 'none'],
    [{ applicationProtocols: [] }, 'none'],
  ]);
});

test('source type: loopback or the same IP as the destination is local; a specific type wins over ANY', () => {
  const chains: Chains = {
    local: { sourceType: 'SAME_IP_OR_LOOPBACK' },
    external: { sourceType: 'EXTERNAL' },
    any: {},
  };
  table(chains, [
    [{ sourceIp: '127.0.0.1' }, 'local'],
    [{ sourceIp: '::ffff:127.0.0.5' }, 'local'],
    [{ sourceIp: '::1' }, 'local'],
    [{ sourceIp: '10.0.0.1', destinationIp: '10.0.0.1' }, 'local'],
    [{ sourceIp: '10.0.0.2', destinationIp: '10.0.0.1' }, 'external'],
  ]);
  table({ external: { sourceType: 'EXTERNAL' }, any: {} }, [[{ sourceIp: '127.0.0.1' }, 'any']]);
  assert.equal(isSameIpOrLoopback('10.0.0.1', '::ffff:10.0.0.1'), true);
  assert.equal(isSameIpOrLoopback('not an ip', '10.0.0.1'), false);
});

test('source and direct source prefixes, then source ports', () => {
  const chains: Chains = {
    office: { sourcePrefixRanges: [cidr('10.9.0.0/16')] },
    officePort: { sourcePrefixRanges: [cidr('10.9.0.0/16')], sourcePorts: [1234] },
    direct: { directSourcePrefixRanges: [cidr('10.8.0.0/16')] },
    any: {},
  };
  table(chains, [
    [{ sourceIp: '10.9.1.1' }, 'office'],
    [{ sourceIp: '10.9.1.1', sourcePort: 1234 }, 'officePort'],
    [{ sourceIp: '10.8.1.1' }, 'direct'],
    [{ sourceIp: '10.7.1.1' }, 'any'],
  ]);
});

test('stages go in order: a server name match wins over a more specific application protocol', () => {
  const chains: Chains = {
    byName: { serverNames: ['a.test'] },
    byAlpn: { applicationProtocols: ['h2'] },
  };
  table(chains, [
    [{ serverName: 'a.test', applicationProtocols: ['h2'] }, 'byName'],
    [{ serverName: 'b.test', applicationProtocols: ['h2'] }, 'byAlpn'],
  ]);
});

test('a mesh inbound listener: TLS by SNI, HTTP by the inspector, the rest raw TCP', () => {
  const chains: Chains = {
    tlsA: { transportProtocol: 'tls', serverNames: ['a.svc'] },
    tlsAny: { transportProtocol: 'tls' },
    http: { transportProtocol: 'raw_buffer', applicationProtocols: ['http/1.1', 'http/1.0', 'h2c'] },
    tcp: { transportProtocol: 'raw_buffer' },
  };
  table(chains, [
    [{ transportProtocol: 'tls', serverName: 'a.svc', applicationProtocols: ['h2'] }, 'tlsA'],
    [{ transportProtocol: 'tls', serverName: 'b.svc' }, 'tlsAny'],
    [{ transportProtocol: 'raw_buffer', applicationProtocols: ['h2c'] }, 'http'],
    [{ transportProtocol: 'raw_buffer' }, 'tcp'],
  ]);
});

test('stages no chain constrains are skipped: their facts are never read', () => {
  const facts = {
    get destinationIp(): string {
      throw new Error('read destinationIp');
    },
    destinationPort: 443,
    get sourceIp(): string {
      throw new Error('read sourceIp');
    },
    get sourcePort(): number {
      throw new Error('read sourcePort');
    },
    serverName: 'a.test',
    transportProtocol: 'tls',
    applicationProtocols: [],
  };
  const s = new FilterChainSelector([
    { match: { ...MATCH_ANY, serverNames: ['a.test'] }, value: 'a' },
    { match: MATCH_ANY, value: 'b' },
  ]);
  assert.equal(s.select(facts), 'a');
});

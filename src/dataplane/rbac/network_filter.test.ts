// Tests of the network RBAC filter on real sockets: an allowed connection goes to the next filter, a denied one is
// closed and reported to it, counted under Envoy's names; the chain's lifecycle calls pass through.

import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { NetworkRbacConfig } from '../../config/model.js';
import type { NetworkFilter } from '../listener/listener.js';
import { Logger } from '../observe/log.js';
import { StatsStore } from '../observe/stats.js';
import { NetworkRbacFilter, withNetworkRbac } from './network_filter.js';

/** Records what the chain did with each connection. */
class Recorder implements NetworkFilter {
  readonly accepted: Socket[] = [];
  readonly rejected: string[] = [];
  readonly calls: string[] = [];
  onConnection(socket: Socket): void {
    this.accepted.push(socket);
    socket.end('welcome');
  }
  onRejected(_socket: Socket, details: string): void {
    this.rejected.push(details);
  }
  drain(): void {
    this.calls.push('drain');
  }
  async whenDrained(): Promise<void> {
    this.calls.push('whenDrained');
  }
  async close(): Promise<void> {
    this.calls.push('close');
  }
}

function rbac(port: number, over: Partial<NetworkRbacConfig> = {}): NetworkRbacConfig {
  return {
    name: 'envoy.filters.network.rbac',
    statPrefix: 'tcp.',
    rules: {
      action: 'DENY',
      policies: [
        { name: 'no-port', permissions: [{ kind: 'destination_port', port }], principals: [{ kind: 'any' }] },
      ],
    },
    shadowRules: undefined,
    shadowRulesStatPrefix: '',
    enforcementType: 'ONE_TIME_ON_FIRST_BYTE',
    ...over,
  };
}

let server: Server;
let onSocket: (s: Socket) => void = () => undefined;
let port = 0;

before(async () => {
  server = createServer((s) => onSocket(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as { port: number }).port;
});

after(() => new Promise<void>((r) => server.close(() => r())));

/** Connects and returns what the server side sent before closing. */
function dial(): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const c = connect(port, '127.0.0.1');
    c.on('data', (d: Buffer) => {
      got += d.toString();
    });
    c.on('error', () => undefined);
    c.on('close', () => resolve(got));
  });
}

test('a denied connection is closed and reported to the next filter; an allowed one is handed on', async () => {
  const store = new StatsStore();
  const next = new Recorder();
  onSocket = (s) => new NetworkRbacFilter(rbac(port), next, store, new Logger('off')).onConnection(s);
  assert.equal(await dial(), '');
  assert.deepEqual(next.rejected, ['rbac_access_denied_matched_policy[no-port]']);
  assert.equal(next.accepted.length, 0);
  assert.equal(store.counter('tcp.rbac.denied').value, 1);
  onSocket = (s) => new NetworkRbacFilter(rbac(port + 1), next, store, new Logger('off')).onConnection(s);
  assert.equal(await dial(), 'welcome');
  assert.equal(next.accepted.length, 1);
  assert.equal(store.counter('tcp.rbac.allowed').value, 1);
});

test('shadow rules are counted, not enforced; a filter without rules lets everything through', async () => {
  const store = new StatsStore();
  const next = new Recorder();
  const shadowOnly = rbac(port, {
    rules: undefined,
    shadowRules: rbac(port).rules,
    shadowRulesStatPrefix: 'dry.',
  });
  onSocket = (s) => new NetworkRbacFilter(shadowOnly, next, store, new Logger('off')).onConnection(s);
  assert.equal(await dial(), 'welcome');
  assert.equal(store.counter('tcp.rbac.dry.shadow_denied').value, 1);
  assert.equal(store.counter('tcp.rbac.allowed').value, 0);
});

test('several filters run in order, the first outermost; lifecycle calls reach the terminal filter', async () => {
  const store = new StatsStore();
  const next = new Recorder();
  const allowAll = rbac(port, { statPrefix: 'first.', rules: { action: 'DENY', policies: [] } });
  const chain = withNetworkRbac(
    next,
    [allowAll, rbac(port, { statPrefix: 'second.' })],
    store,
    new Logger('off'),
  );
  onSocket = (s) => chain.onConnection(s);
  assert.equal(await dial(), '');
  assert.equal(store.counter('first.rbac.allowed').value, 1);
  assert.equal(store.counter('second.rbac.denied').value, 1);
  assert.deepEqual(next.rejected, ['rbac_access_denied_matched_policy[no-port]']);
  chain.drain?.();
  await chain.whenDrained?.();
  await chain.close();
  assert.deepEqual(next.calls, ['drain', 'whenDrained', 'close']);
  assert.equal(withNetworkRbac(next, undefined, store, new Logger('off')), next);
});

// End to end: transparent capture in real network namespaces. An "app" host and a "server" host joined by a veth
// pair (IPv4 and IPv6); `remora iptables apply` in the app namespace; the sidecar (examples/capture/sidecar.yaml)
// running there as uid 1337. Plain clients with no proxy settings go through the sidecar, both ways, for each
// rule backend. Needs root: without it the test fails, saying so.

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { linkVeth, Netns, requireRootAndTools, uniqueSuffix, waitForLine } from './support/netns.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE = process.execPath;
const REMORA = join(ROOT, 'bin', 'remora');
const PEER = join(ROOT, 'dist', 'test', 'support', 'netns_peer.js');
const APP = { v4: '10.77.0.1', v6: 'fd77::1' };
const SERVER = { v4: '10.77.0.2', v6: 'fd77::2' };
const BACKENDS = [
  { backend: 'iptables', tools: ['iptables-nft-save', 'ip6tables-nft-save'] },
  { backend: 'iptables-legacy', tools: ['iptables-legacy-save', 'ip6tables-legacy-save'] },
  { backend: 'nft', tools: ['nft'] },
] as const;

/** A TCP client run in a namespace: sends "ping", prints what came back (or that the connection was refused). */
const TCP_CLIENT = `
const s = require('node:net').connect({ host: process.argv[1], port: Number(process.argv[2]) });
let got = '';
s.on('connect', () => s.write('ping\\n'));
s.on('data', (d) => { got += d; if (got.includes('ping')) s.end(); });
s.on('error', (e) => { got += 'error ' + e.code; });
s.on('close', () => console.log(JSON.stringify(got)));
setTimeout(() => { console.log(JSON.stringify('timeout ' + got)); process.exit(0); }, 5000).unref();
`;

interface Seen {
  readonly peer: string;
  readonly port: number;
  readonly remote: string;
  readonly url: string;
}

for (const { backend, tools } of BACKENDS) {
  describe(`transparent capture with the ${backend} backend`, () => {
    const suffix = uniqueSuffix();
    let app: Netns | undefined;
    let server: Netns | undefined;
    const children: ChildProcess[] = [];
    let proxyOut = '';
    let dir = '';

    before(async () => {
      requireRootAndTools('transparent capture', ['ip', 'curl', 'setpriv', ...tools]);
      app = await Netns.create(`rmr-app-${suffix}`);
      server = await Netns.create(`rmr-srv-${suffix}`);
      await linkVeth(app, server, suffix, { a4: APP.v4, b4: SERVER.v4, a6: APP.v6, b6: SERVER.v6 });
      const srv = server.spawn(NODE, [
        PEER,
        'server',
        'http:80,9100',
        'echo:9000,9001',
        `dns:${SERVER.v4}:53=web.mesh.test/${SERVER.v4}`,
      ]);
      // `ip netns exec` gives processes in the app namespace this resolv.conf: the server is their resolver.
      mkdirSync(`/etc/netns/${app.name}`, { recursive: true });
      writeFileSync(`/etc/netns/${app.name}/resolv.conf`, `nameserver ${SERVER.v4}\n`);
      const appPeer = app.spawn(NODE, [PEER, 'app', 'http:8080,8081']);
      children.push(srv, appPeer);
      await Promise.all([waitForLine(srv, /^ready$/), waitForLine(appPeer, /^ready$/)]);
      const apply = await app.exec(NODE, [
        REMORA,
        'iptables',
        'apply',
        '--backend',
        backend,
        '--exclude-outbound-ports',
        '9100',
        '--exclude-inbound-ports',
        '8081',
        '--capture-dns',
      ]);
      assert.equal(apply.code, 0, `remora iptables apply failed: ${apply.stderr}`);
      // The proxy reads its config as uid 1337.
      dir = mkdtempSync(join(tmpdir(), 'remora-capture-'));
      chmodSync(dir, 0o755);
      copyFileSync(join(ROOT, 'examples', 'capture', 'sidecar.yaml'), join(dir, 'sidecar.yaml'));
      chmodSync(join(dir, 'sidecar.yaml'), 0o644);
      const proxy = app.spawn(NODE, [
        REMORA,
        'proxy',
        '--uid',
        '1337',
        '--gid',
        '1337',
        '--dns-port',
        '15053',
        '-c',
        join(dir, 'sidecar.yaml'),
      ]);
      children.push(proxy);
      proxy.stdout?.on('data', (d: Buffer) => {
        proxyOut += d.toString();
      });
      await waitForLine(proxy, /remora is live/, { stream: 'stderr' });
    });

    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      if (app) rmSync(`/etc/netns/${app.name}`, { recursive: true, force: true });
      await app?.close();
      await server?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    /** A counter from the sidecar's admin /stats (0 when absent). */
    async function stat(name: string): Promise<number> {
      const r = await app!.exec('curl', ['-sS', '-m', '5', 'http://127.0.0.1:15000/stats']);
      assert.equal(r.code, 0, r.stderr);
      const line = r.stdout.split('\n').find((l) => l.startsWith(`${name}: `));
      return line === undefined ? 0 : Number(line.slice(name.length + 2));
    }

    async function curl(ns: Netns, url: string, asUser?: number): Promise<Seen> {
      const args = ['-sS', '-m', '5', '-g', url];
      const r =
        asUser === undefined
          ? await ns.exec('curl', args)
          : await ns.exec('setpriv', [
              '--reuid',
              `${asUser}`,
              '--regid',
              `${asUser}`,
              '--clear-groups',
              'curl',
              ...args,
            ]);
      assert.equal(r.code, 0, `curl ${url}: ${r.stderr}`);
      return JSON.parse(r.stdout) as Seen;
    }

    async function tcp(ns: Netns, host: string, port: number): Promise<string> {
      const r = await ns.exec(NODE, ['-e', TCP_CLIENT, host, `${port}`]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as string;
    }

    /** The access log lines written since `mark` (the sidecar writes them as connections end). */
    async function logSince(mark: number, pattern: RegExp): Promise<string> {
      for (let i = 0; i < 50; i++) {
        const line = proxyOut
          .slice(mark)
          .split('\n')
          .find((l) => pattern.test(l));
        if (line !== undefined) return line;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.fail(`no access log line matching ${pattern} in:\n${proxyOut.slice(mark)}`);
    }

    test('plain curl over IPv4 goes through the sidecar to the server, and is logged', async () => {
      const handedOff = await stat('listener.[::]_15001.downstream_cx_handed_off');
      const requests = await stat('http.outbound_0.0.0.0_80.downstream_rq_total');
      const mark = proxyOut.length;
      const seen = await curl(app!, `http://${SERVER.v4}/hello-v4`);
      assert.equal(seen.peer, 'server');
      // The sidecar's own connection, from the app's address: it was not captured again (no loop).
      assert.equal(seen.remote, `::ffff:${APP.v4}`);
      const line = await logSince(mark, /GET \/hello-v4 HTTP\/1\.1" 200/);
      assert.match(line, new RegExp(`-> ${SERVER.v4}:80 .* PassthroughCluster ${SERVER.v4}:80`));
      assert.equal(await stat('http.outbound_0.0.0.0_80.downstream_rq_total'), requests + 1);
      // Exactly one redirected connection: had the sidecar's upstream connection been captured, there would be two.
      assert.equal(await stat('listener.[::]_15001.downstream_cx_handed_off'), handedOff + 1);
    });

    test('plain curl over IPv6 goes through the sidecar too', async () => {
      const requests = await stat('http.outbound_0.0.0.0_80.downstream_rq_total');
      const mark = proxyOut.length;
      const seen = await curl(app!, `http://[${SERVER.v6}]/hello-v6`);
      assert.deepEqual([seen.peer, seen.remote], ['server', APP.v6]);
      const line = await logSince(mark, /GET \/hello-v6 HTTP\/1\.1" 200/);
      assert.match(line, new RegExp(`-> \\[${SERVER.v6}\\]:80 `));
      assert.equal(await stat('http.outbound_0.0.0.0_80.downstream_rq_total'), requests + 1);
    });

    test("with --capture-dns the application's DNS queries go through the sidecar's DNS port", async () => {
      const before = await stat('dns_proxy.downstream_rx_queries');
      const r = await app!.exec(NODE, [
        '-e',
        "require('node:dns').promises.resolve4('web.mesh.test').then((a) => console.log(a.join(',')))",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), SERVER.v4);
      assert.equal(await stat('dns_proxy.downstream_rx_queries'), before + 1);
      // By name, the whole way: DNS through the sidecar, then HTTP through it.
      const seen = await curl(app!, 'http://web.mesh.test/by-name');
      assert.equal(seen.peer, 'server');
    });

    test('a raw TCP connection to a non-HTTP port passes through, both families', async () => {
      const before = await stat('tcp.outbound_9000.downstream_cx_total');
      assert.equal(await tcp(app!, SERVER.v4, 9000), `server:9000 from ::ffff:${APP.v4}\nping\n`);
      assert.equal(await tcp(app!, SERVER.v6, 9000), `server:9000 from ${APP.v6}\nping\n`);
      assert.equal(await stat('tcp.outbound_9000.downstream_cx_total'), before + 2);
    });

    test('a destination the sidecar does not know is refused, with the reason logged (registry-only)', async () => {
      const before = await stat('cluster.BlackHoleCluster.upstream_cx_none_healthy');
      const mark = proxyOut.length;
      // The server listens on 9001 and greets whoever connects: only the sidecar stands in the way.
      assert.match(await tcp(app!, SERVER.v4, 9001), /^(|error ECONNRESET)$/);
      const line = await logSince(mark, new RegExp(`-> ${SERVER.v4}:9001 `));
      assert.match(line, /UH BlackHoleCluster - "cluster "BlackHoleCluster" has no endpoints"/);
      assert.equal(await stat('cluster.BlackHoleCluster.upstream_cx_none_healthy'), before + 1);
    });

    test('a connection from the server host to the app arrives through 15006 and reaches the app', async () => {
      const requests = await stat('http.inbound_0.0.0.0_8080.downstream_rq_total');
      const mark = proxyOut.length;
      const v4 = await curl(server!, `http://${APP.v4}:8080/in-v4`);
      // The sidecar forwards from 127.0.0.6 / ::6, which the rules leave alone.
      assert.deepEqual([v4.peer, v4.port, v4.remote], ['app', 8080, '::ffff:127.0.0.6']);
      const v6 = await curl(server!, `http://[${APP.v6}]:8080/in-v6`);
      assert.deepEqual([v6.peer, v6.port, v6.remote], ['app', 8080, '::6']);
      const line = await logSince(mark, /GET \/in-v4 HTTP\/1\.1" 200/);
      assert.match(
        line,
        new RegExp(`^\\[[^\\]]+\\] ${SERVER.v4}:\\d+ -> ${APP.v4}:8080 .* InboundPassthroughCluster`),
      );
      assert.equal(await stat('http.inbound_0.0.0.0_8080.downstream_rq_total'), requests + 2);
    });

    test('excluded ports bypass the sidecar, both ways', async () => {
      const outbound = await stat('listener.[::]_15001.downstream_cx_total');
      const inbound = await stat('listener.[::]_15006.downstream_cx_total');
      const out = await curl(app!, `http://${SERVER.v4}:9100/excluded`);
      assert.deepEqual([out.peer, out.remote], ['server', `::ffff:${APP.v4}`]);
      const into = await curl(server!, `http://${APP.v4}:8081/excluded`);
      // Straight from the server: not from 127.0.0.6.
      assert.deepEqual([into.peer, into.remote], ['app', `::ffff:${SERVER.v4}`]);
      assert.equal(await stat('listener.[::]_15001.downstream_cx_total'), outbound);
      assert.equal(await stat('listener.[::]_15006.downstream_cx_total'), inbound);
    });

    test("the proxy user's connections are not captured", async () => {
      const outbound = await stat('listener.[::]_15001.downstream_cx_total');
      const seen = await curl(app!, `http://${SERVER.v4}/as-proxy-user`, 1337);
      assert.deepEqual([seen.peer, seen.remote], ['server', `::ffff:${APP.v4}`]);
      assert.equal(await stat('listener.[::]_15001.downstream_cx_total'), outbound);
    });

    test('clean restores direct traffic and leaves no chain behind', async () => {
      const r = await app!.exec(NODE, [REMORA, 'iptables', 'clean', '--backend', backend]);
      assert.equal(r.code, 0, r.stderr);
      const outbound = await stat('listener.[::]_15001.downstream_cx_total');
      const seen = await curl(app!, `http://${SERVER.v4}/after-clean`);
      assert.equal(seen.peer, 'server');
      const into = await curl(server!, `http://${APP.v4}:8080/after-clean`);
      assert.equal(into.remote, `::ffff:${SERVER.v4}`);
      assert.equal(await stat('listener.[::]_15001.downstream_cx_total'), outbound);
      const rules =
        backend === 'nft'
          ? (await app!.exec('nft', ['list', 'ruleset'])).stdout
          : (await app!.exec(`${backend === 'iptables' ? 'iptables-nft' : 'iptables-legacy'}-save`, []))
              .stdout +
            (await app!.exec(`${backend === 'iptables' ? 'ip6tables-nft' : 'ip6tables-legacy'}-save`, []))
              .stdout;
      assert.doesNotMatch(rules, /REMORA|remora/);
      assert.doesNotMatch(await app!.ip('-6', 'addr', 'show', 'dev', 'lo'), /::6\/128/);
    });
  });
}

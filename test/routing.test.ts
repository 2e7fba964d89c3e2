// Integration: virtual-host selection, route matching, weighted splits, rewrites, direct responses and redirects.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { curl } from './support/clients.js';
import {
  bootstrap,
  httpListener,
  type Json,
  type RunningProxy,
  startProxy,
  staticCluster,
} from './support/proxy.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const UPSTREAMS = [
  // virtual hosts
  'vh-exact',
  'vh-suffix',
  'vh-suffix-long',
  'vh-prefix',
  'vh-prefix-long',
  'vh-with-port',
  'vh-no-port',
  'vh-fallback',
  // path matching
  'path',
  'regex',
  'separated',
  'nocase',
  'first',
  'second',
  // header matchers
  'h-exact',
  'h-prefix',
  'h-suffix',
  'h-contains',
  'h-present',
  'h-regex',
  'h-ignore-case',
  'h-range',
  'h-bare',
  'h-invert',
  'h-none',
  'absent',
  'absent-fallback',
  // query parameters
  'q-exact',
  'q-present',
  'q-none',
  // actions
  'w80',
  'w20',
  'rewrite',
  'host',
] as const;
type Name = (typeof UPSTREAMS)[number];

const ups = new Map<Name, Upstream>();
let proxy: RunningProxy;

function to(cluster: Name, extra: Json = {}): Json {
  return { route: { cluster, ...extra } };
}

function hm(name: string, spec: Json, cluster: Name): Json {
  return { match: { prefix: '/match', headers: [{ name, ...spec }] }, ...to(cluster) };
}

function redirect(prefix: string, r: Json): Json {
  return { match: { prefix }, redirect: r };
}

before(async () => {
  for (const n of UPSTREAMS) ups.set(n, await startUpstream(n));
  const hostRoutes = (cluster: Name): Json[] => [{ match: { prefix: '/' }, ...to(cluster) }];
  const vhosts: Json = {
    name: 'vhosts',
    virtual_hosts: [
      // Listed least specific first so that table order cannot explain the results.
      { name: 'fallback', domains: ['*'], routes: hostRoutes('vh-fallback') },
      { name: 'prefix', domains: ['api.*'], routes: hostRoutes('vh-prefix') },
      { name: 'prefix-long', domains: ['api.internal.*'], routes: hostRoutes('vh-prefix-long') },
      { name: 'suffix', domains: ['*.example.com'], routes: hostRoutes('vh-suffix') },
      { name: 'suffix-long', domains: ['*.eu.example.com'], routes: hostRoutes('vh-suffix-long') },
      { name: 'exact', domains: ['www.example.com', 'api.eu.example.com'], routes: hostRoutes('vh-exact') },
      { name: 'with-port', domains: ['svc.example.org:8080'], routes: hostRoutes('vh-with-port') },
      { name: 'no-port', domains: ['shop.test'], routes: hostRoutes('vh-no-port') },
    ],
  };
  const strict: Json = {
    name: 'strict',
    virtual_hosts: [
      { name: 'only', domains: ['only.example.com'], routes: [{ match: { path: '/x' }, ...to('path') }] },
    ],
  };
  const table: Json[] = [
    { match: { path: '/exact' }, ...to('path') },
    { match: { safe_regex: { google_re2: {}, regex: '/re/[0-9]+' } }, ...to('regex') },
    { match: { path_separated_prefix: '/sep' }, ...to('separated') },
    { match: { prefix: '/CaseLess', case_sensitive: false }, ...to('nocase') },
    { match: { prefix: '/first' }, ...to('first') },
    { match: { prefix: '/first/more' }, ...to('second') },
    hm('x-exact', { exact_match: 'v1' }, 'h-exact'),
    hm('x-prefix', { prefix_match: 'pre' }, 'h-prefix'),
    hm('x-suffix', { suffix_match: 'fix' }, 'h-suffix'),
    hm('x-contains', { contains_match: 'mid' }, 'h-contains'),
    hm('x-present', { present_match: true }, 'h-present'),
    hm('x-regex', { safe_regex_match: { google_re2: {}, regex: 'v[0-9]+' } }, 'h-regex'),
    hm('x-ci', { string_match: { exact: 'MiXeD', ignore_case: true } }, 'h-ignore-case'),
    hm('x-range', { range_match: { start: 10, end: 20 } }, 'h-range'),
    hm('x-bare', {}, 'h-bare'),
    hm('x-inv', { exact_match: 'no', invert_match: true }, 'h-invert'),
    { match: { prefix: '/match' }, ...to('h-none') },
    { match: { prefix: '/absent', headers: [{ name: 'x-flag', present_match: false }] }, ...to('absent') },
    { match: { prefix: '/absent' }, ...to('absent-fallback') },
    {
      match: { prefix: '/q', query_parameters: [{ name: 'mode', string_match: { exact: 'fast' } }] },
      ...to('q-exact'),
    },
    {
      match: { prefix: '/q', query_parameters: [{ name: 'debug', present_match: true }] },
      ...to('q-present'),
    },
    { match: { prefix: '/q' }, ...to('q-none') },
    {
      match: { prefix: '/split' },
      route: {
        weighted_clusters: {
          clusters: [
            { name: 'w80', weight: 80 },
            { name: 'w20', weight: 20 },
          ],
        },
      },
    },
    { match: { prefix: '/old/' }, ...to('rewrite', { prefix_rewrite: '/new/' }) },
    {
      match: { prefix: '/users/' },
      ...to('rewrite', {
        regex_rewrite: {
          pattern: { google_re2: {}, regex: '^/users/([0-9]+)/profile$' },
          substitution: '/v2/profiles/\\1',
        },
      }),
    },
    {
      match: { prefix: '/all/' },
      ...to('rewrite', {
        regex_rewrite: { pattern: { google_re2: {}, regex: 'one' }, substitution: 'two' },
      }),
    },
    { match: { prefix: '/host' }, ...to('host', { host_rewrite_literal: 'upstream.internal' }) },
    {
      match: { path: '/direct' },
      direct_response: { status: 403, body: { inline_string: 'denied here\n' } },
    },
    { match: { path: '/direct-empty' }, direct_response: { status: 503 } },
    redirect('/r/https-port', { https_redirect: true, port_redirect: 8443 }),
    redirect('/r/https', { https_redirect: true }),
    redirect('/r/host', { host_redirect: 'other.example.net' }),
    redirect('/r/port', { port_redirect: 9443 }),
    redirect('/r/path-query', { path_redirect: '/new/place?from=redirect', strip_query: true }),
    redirect('/r/path', { path_redirect: '/new/place' }),
    redirect('/r/prefix/', { prefix_rewrite: '/moved/' }),
    redirect('/r/strip', { strip_query: true }),
    redirect('/r/all', {
      https_redirect: true,
      host_redirect: 'new.example.net',
      port_redirect: 8443,
      path_redirect: '/landing',
      strip_query: true,
      response_code: 'PERMANENT_REDIRECT',
    }),
    redirect('/r/code/301', { path_redirect: '/c', response_code: 'MOVED_PERMANENTLY' }),
    redirect('/r/code/302', { path_redirect: '/c', response_code: 'FOUND' }),
    redirect('/r/code/303', { path_redirect: '/c', response_code: 'SEE_OTHER' }),
    redirect('/r/code/307', { path_redirect: '/c', response_code: 'TEMPORARY_REDIRECT' }),
    redirect('/r/code/308', { path_redirect: '/c', response_code: 'PERMANENT_REDIRECT' }),
  ];
  const routes: Json = { name: 'routes', virtual_hosts: [{ name: 'all', domains: ['*'], routes: table }] };
  proxy = await startProxy(
    bootstrap(
      [
        httpListener('vhosts', vhosts, { stat_prefix: 'vhosts' }),
        httpListener('routes', routes, { stat_prefix: 'routes' }),
        httpListener('strict', strict, { stat_prefix: 'strict' }),
      ],
      UPSTREAMS.map((n) => staticCluster(n, [ups.get(n)!.port])),
    ),
  );
});

after(async () => {
  await proxy?.close();
  await Promise.all([...ups.values()].map((u) => u.close()));
});

/** Sends one request through curl and returns the name of the upstream that answered. */
async function who(listener: string, path: string, headers: Record<string, string> = {}): Promise<string> {
  const args = [`${proxy.url(listener)}${path}`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  const r = await curl(args);
  assert.equal(r.status, 200, `${path} ${JSON.stringify(headers)}: ${r.body}`);
  return JSON.parse(r.body).name;
}

/** The request the named upstream saw last. */
function lastSeen(name: Name): Upstream['requests'][number] {
  const reqs = ups.get(name)!.requests;
  assert.ok(reqs.length > 0, `upstream ${name} got no request`);
  return reqs[reqs.length - 1]!;
}

describe('virtual host selection by domains', () => {
  const host = (h: string) => who('vhosts', '/', { host: h });

  test('an exact domain wins over every wildcard, whatever the case of the Host header', async () => {
    assert.equal(await host('www.example.com'), 'vh-exact');
    assert.equal(await host('WWW.Example.COM'), 'vh-exact');
    // Also matched by *.eu.example.com, *.example.com and api.*: the exact domain still wins.
    assert.equal(await host('api.eu.example.com'), 'vh-exact');
  });

  test('a suffix wildcard needs at least one character before the suffix; the longest suffix wins', async () => {
    assert.equal(await host('shop.example.com'), 'vh-suffix');
    assert.equal(await host('a.b.example.com'), 'vh-suffix');
    assert.equal(await host('shop.eu.example.com'), 'vh-suffix-long');
    assert.equal(await host('example.com'), 'vh-fallback');
    assert.equal(await host('.example.com'), 'vh-fallback');
  });

  test('a suffix wildcard wins over a prefix wildcard; the longest prefix wins among prefixes', async () => {
    // api.* and *.example.com both match: the suffix wildcard is more specific in Envoy's order.
    assert.equal(await host('api.example.com'), 'vh-suffix');
    assert.equal(await host('api.example.org'), 'vh-prefix');
    assert.equal(await host('api.internal.example.org'), 'vh-prefix-long');
    assert.equal(await host('api'), 'vh-fallback');
  });

  test('anything else falls back to the "*" virtual host', async () => {
    assert.equal(await host('unknown.test'), 'vh-fallback');
    assert.equal(await host('localhost'), 'vh-fallback');
  });

  test('a domain with a port matches only a Host header carrying that port', async () => {
    assert.equal(await host('svc.example.org:8080'), 'vh-with-port');
    assert.equal(await host('svc.example.org'), 'vh-fallback');
    assert.equal(await host('svc.example.org:9090'), 'vh-fallback');
  });

  test('a Host header with a port matching no domain is tried again without its port before "*"', async () => {
    // Remora's documented choice: the port-less retry happens before the catch-all.
    assert.equal(await host('shop.test:9090'), 'vh-no-port');
    assert.equal(await host('shop.test'), 'vh-no-port');
    assert.equal(await host('www.example.com:8443'), 'vh-exact');
    assert.equal(await host('shop.eu.example.com:8443'), 'vh-suffix-long');
    assert.equal(await host('[::1]:8080'), 'vh-fallback');
  });

  test('no virtual host and no "*": 404 NR, counted as no_route', async () => {
    const before = proxy.stat('http.strict.no_route');
    const r = await curl([`${proxy.url('strict')}/x`, '-H', 'host: other.example.com']);
    assert.equal(r.status, 404);
    assert.match(r.body, /no route matched host "other\.example\.com" path "\/x"/);
    assert.equal(r.headers['x-remora-error'], 'REMORA_ERR_NO_ROUTE');
    assert.equal(proxy.stat('http.strict.no_route'), before + 1);
    const ok = await curl([`${proxy.url('strict')}/x`, '-H', 'host: only.example.com']);
    assert.equal(ok.status, 200);
  });
});

describe('route match', () => {
  const path = (p: string, h: Record<string, string> = {}) => who('routes', p, h);

  test('path: the whole path must be equal, the query string is ignored', async () => {
    assert.equal(await path('/exact'), 'path');
    assert.equal(await path('/exact?x=1&y=2'), 'path');
    assert.equal(lastSeen('path').url, '/exact?x=1&y=2');
    const r = await curl([`${proxy.url('routes')}/exact/more`]);
    assert.equal(r.status, 404);
    const upper = await curl([`${proxy.url('routes')}/EXACT`]);
    assert.equal(upper.status, 404, 'path matching is case sensitive by default');
  });

  test('safe_regex: a full match of the path, the query string ignored', async () => {
    assert.equal(await path('/re/123'), 'regex');
    assert.equal(await path('/re/123?q=abc'), 'regex');
    for (const miss of ['/re/123abc', '/re/', '/x/re/123', '/re/12/3']) {
      const r = await curl([`${proxy.url('routes')}${miss}`]);
      assert.equal(r.status, 404, `${miss} must not match /re/[0-9]+`);
    }
  });

  test('path_separated_prefix: the prefix must end at a "/" or at the end of the path', async () => {
    assert.equal(await path('/sep'), 'separated');
    assert.equal(await path('/sep/'), 'separated');
    assert.equal(await path('/sep/a/b'), 'separated');
    assert.equal(await path('/sep?x=1'), 'separated');
    const r = await curl([`${proxy.url('routes')}/separate`]);
    assert.equal(r.status, 404);
  });

  test('case_sensitive: false matches the prefix in any case and forwards the path untouched', async () => {
    assert.equal(await path('/caseless/a'), 'nocase');
    assert.equal(await path('/CASELESS'), 'nocase');
    assert.equal(lastSeen('nocase').url, '/CASELESS');
  });

  test('the first matching route wins, even when a later one is more specific', async () => {
    assert.equal(await path('/first/more'), 'first');
    assert.equal(await path('/firstly'), 'first');
    assert.equal(ups.get('second')!.requests.length, 0);
  });

  test('headers: exact, prefix, suffix and contains', async () => {
    assert.equal(await path('/match', { 'x-exact': 'v1' }), 'h-exact');
    assert.equal(await path('/match', { 'x-exact': 'v12' }), 'h-none');
    assert.equal(await path('/match', { 'x-exact': 'V1' }), 'h-none');
    assert.equal(await path('/match', { 'x-prefix': 'prefixed' }), 'h-prefix');
    assert.equal(await path('/match', { 'x-prefix': 'xpre' }), 'h-none');
    assert.equal(await path('/match', { 'x-suffix': 'suffix' }), 'h-suffix');
    assert.equal(await path('/match', { 'x-suffix': 'fixed' }), 'h-none');
    assert.equal(await path('/match', { 'x-contains': 'amidst' }), 'h-contains');
    assert.equal(await path('/match', { 'x-contains': 'm-i-d' }), 'h-none');
  });

  test('headers: present_match, and a matcher without a specifier means "present"', async () => {
    assert.equal(await path('/match', { 'x-present': 'anything' }), 'h-present');
    assert.equal(await path('/match', { 'x-bare': 'anything' }), 'h-bare');
    assert.equal(await path('/match'), 'h-none');
    assert.equal(await path('/absent'), 'absent');
    assert.equal(await path('/absent', { 'x-flag': '1' }), 'absent-fallback');
  });

  test('headers: safe_regex_match is a full match', async () => {
    assert.equal(await path('/match', { 'x-regex': 'v12' }), 'h-regex');
    assert.equal(await path('/match', { 'x-regex': 'xv12' }), 'h-none');
    assert.equal(await path('/match', { 'x-regex': 'v12x' }), 'h-none');
  });

  test('headers: string_match with ignore_case', async () => {
    assert.equal(await path('/match', { 'x-ci': 'mixed' }), 'h-ignore-case');
    assert.equal(await path('/match', { 'x-ci': 'MIXED' }), 'h-ignore-case');
    assert.equal(await path('/match', { 'x-ci': 'mixed2' }), 'h-none');
  });

  test('headers: range_match is [start, end) over integers', async () => {
    assert.equal(await path('/match', { 'x-range': '10' }), 'h-range');
    assert.equal(await path('/match', { 'x-range': '19' }), 'h-range');
    assert.equal(await path('/match', { 'x-range': '20' }), 'h-none');
    assert.equal(await path('/match', { 'x-range': '9' }), 'h-none');
    assert.equal(await path('/match', { 'x-range': '-15' }), 'h-none');
    assert.equal(await path('/match', { 'x-range': '1x' }), 'h-none');
  });

  test('headers: invert_match inverts a present header, and a missing header still does not match', async () => {
    assert.equal(await path('/match', { 'x-inv': 'yes' }), 'h-invert');
    assert.equal(await path('/match', { 'x-inv': 'no' }), 'h-none');
    // Envoy: a header matcher (other than present_match) never matches a missing header, inverted or not.
    assert.equal(await path('/match'), 'h-none');
  });

  test('query_parameters: string_match exact and present_match', async () => {
    assert.equal(await path('/q?mode=fast'), 'q-exact');
    assert.equal(await path('/q?a=1&mode=fast&b=2'), 'q-exact');
    assert.equal(await path('/q?mode=faster'), 'q-none');
    assert.equal(await path('/q?mode=FAST'), 'q-none');
    assert.equal(await path('/q?debug'), 'q-present');
    assert.equal(await path('/q?debug=1'), 'q-present');
    assert.equal(await path('/q?nodebug=1'), 'q-none');
    assert.equal(await path('/q'), 'q-none');
  });

  test('nothing matches: 404 NR naming host and path', async () => {
    const before = proxy.stat('http.routes.no_route');
    const r = await curl([`${proxy.url('routes')}/nothing/here?x=1`, '-H', 'host: a.example']);
    assert.equal(r.status, 404);
    assert.match(r.body, /no route matched host "a\.example" path "\/nothing\/here\?x=1"/);
    assert.equal(proxy.stat('http.routes.no_route'), before + 1);
  });
});

describe('route actions', () => {
  test('weighted_clusters: an 80/20 split over 1000 requests stays within ±7%', async () => {
    const counts = new Map<string, number>();
    const url = `${proxy.url('routes')}/split`;
    const total = 1000;
    for (let sent = 0; sent < total; sent += 50) {
      const names = await Promise.all(
        Array.from({ length: 50 }, async () => {
          const res = await fetch(url);
          assert.equal(res.status, 200);
          return ((await res.json()) as { name: string }).name;
        }),
      );
      for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const w80 = counts.get('w80') ?? 0;
    const w20 = counts.get('w20') ?? 0;
    assert.equal(w80 + w20, total, `unexpected upstreams: ${JSON.stringify([...counts])}`);
    // The binomial standard deviation is about 13 requests: ±70 is more than five of them.
    assert.ok(w80 >= 730 && w80 <= 870, `w80 got ${w80} of ${total}`);
    assert.ok(w20 >= 130 && w20 <= 270, `w20 got ${w20} of ${total}`);
  });

  test('prefix_rewrite: the upstream sees the new prefix, the query kept, and x-envoy-original-path', async () => {
    assert.equal(await who('routes', '/old/a/b?x=1&y=2'), 'rewrite');
    const seen = lastSeen('rewrite');
    assert.equal(seen.url, '/new/a/b?x=1&y=2');
    assert.equal(seen.headers['x-envoy-original-path'], '/old/a/b?x=1&y=2');
  });

  test('regex_rewrite: capture groups are substituted with \\1, the query kept', async () => {
    assert.equal(await who('routes', '/users/42/profile?full=1'), 'rewrite');
    const seen = lastSeen('rewrite');
    assert.equal(seen.url, '/v2/profiles/42?full=1');
    assert.equal(seen.headers['x-envoy-original-path'], '/users/42/profile?full=1');
  });

  test('regex_rewrite: every match in the path is replaced, never in the query', async () => {
    assert.equal(await who('routes', '/all/one/x/one?one=1'), 'rewrite');
    assert.equal(lastSeen('rewrite').url, '/all/two/x/two?one=1');
  });

  test('a route without a rewrite sends the path untouched and no x-envoy-original-path', async () => {
    assert.equal(await who('routes', '/exact?z=9'), 'path');
    assert.equal(lastSeen('path').headers['x-envoy-original-path'], undefined);
  });

  test('host_rewrite_literal: the upstream sees the new Host', async () => {
    assert.equal(await who('routes', '/host/x', { host: 'original.example' }), 'host');
    const seen = lastSeen('host');
    assert.equal(seen.headers.host, 'upstream.internal');
    assert.equal(seen.url, '/host/x');
  });

  test('direct_response: status and body from the route, HEAD gets the headers without the body', async () => {
    const before = proxy.stat('http.routes.rq_direct_response');
    const r = await curl([`${proxy.url('routes')}/direct`]);
    assert.equal(r.status, 403);
    assert.equal(r.body, 'denied here\n');
    assert.equal(r.headers['content-length'], '12');
    assert.equal(r.headers['content-type'], 'text/plain');
    const head = await curl(['-I', `${proxy.url('routes')}/direct`]);
    assert.equal(head.status, 403);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '12');
    const empty = await curl([`${proxy.url('routes')}/direct-empty`]);
    assert.equal(empty.status, 503);
    assert.equal(empty.body, '');
    assert.equal(proxy.stat('http.routes.rq_direct_response'), before + 3);
  });

  describe('redirect', () => {
    const HOST = 'shop.example.com:8080';
    async function location(path: string, host = HOST): Promise<{ status: number; location: string }> {
      const r = await curl([`${proxy.url('routes')}${path}`, '-H', `host: ${host}`]);
      assert.equal(r.body, '');
      return { status: r.status, location: r.headers.location ?? '' };
    }

    test('https_redirect keeps the path, the query and a non-default port; 301 by default', async () => {
      assert.deepEqual(await location('/r/https/a?x=1'), {
        status: 301,
        location: 'https://shop.example.com:8080/r/https/a?x=1',
      });
      assert.equal(
        (await location('/r/https', 'shop.example.com')).location,
        'https://shop.example.com/r/https',
      );
      // The default port of the old scheme goes away with it.
      assert.equal(
        (await location('/r/https', 'shop.example.com:80')).location,
        'https://shop.example.com/r/https',
      );
    });

    test('host_redirect replaces the whole authority, port included', async () => {
      assert.equal((await location('/r/host/p?q=1')).location, 'http://other.example.net/r/host/p?q=1');
      assert.equal(
        (await location('/r/host', 'shop.example.com')).location,
        'http://other.example.net/r/host',
      );
    });

    test('port_redirect replaces the port', async () => {
      assert.equal((await location('/r/port/x')).location, 'http://shop.example.com:9443/r/port/x');
      assert.equal(
        (await location('/r/port', 'shop.example.com')).location,
        'http://shop.example.com:9443/r/port',
      );
      assert.equal(
        (await location('/r/https-port?a=b')).location,
        'https://shop.example.com:8443/r/https-port?a=b',
      );
    });

    test('path_redirect replaces the path and keeps the query, unless it brings its own', async () => {
      assert.equal(
        (await location('/r/path/x?keep=1')).location,
        'http://shop.example.com:8080/new/place?keep=1',
      );
      assert.equal((await location('/r/path')).location, 'http://shop.example.com:8080/new/place');
      // A query in path_redirect replaces the request's and survives strip_query.
      assert.equal(
        (await location('/r/path-query?drop=1')).location,
        'http://shop.example.com:8080/new/place?from=redirect',
      );
    });

    test('prefix_rewrite swaps the matched prefix and keeps the rest of the path and the query', async () => {
      assert.equal(
        (await location('/r/prefix/a/b?z=1')).location,
        'http://shop.example.com:8080/moved/a/b?z=1',
      );
    });

    test('strip_query drops the query string', async () => {
      assert.equal((await location('/r/strip/x?a=1&b=2')).location, 'http://shop.example.com:8080/r/strip/x');
    });

    test('everything at once: scheme, host, port, path, stripped query and 308', async () => {
      assert.deepEqual(await location('/r/all?x=1'), {
        status: 308,
        location: 'https://new.example.net:8443/landing',
      });
    });

    test('response_code: each RedirectResponseCode maps to its status', async () => {
      for (const code of [301, 302, 303, 307, 308]) {
        assert.deepEqual(await location(`/r/code/${code}`), {
          status: code,
          location: 'http://shop.example.com:8080/c',
        });
      }
    });
  });
});

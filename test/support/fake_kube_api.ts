// Test support: a FAKE Kubernetes API server (no real one can run here) speaking list and watch over HTTP.

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { FakeHttpServer } from './fake_http.js';

/**
 * This is a fake, not Kubernetes. It serves the collection paths the Kubernetes source's informers use, with the
 * semantics they depend on, and nothing else:
 * - `GET <collection>`: the list, `metadata.resourceVersion` the current revision. Items of built-in kinds carry
 *   no apiVersion/kind (as the real server sends them); custom resources' items do.
 * - `GET <collection>?watch=true&resourceVersion=R`: every change after R (from a bounded history), then changes
 *   as they happen, one JSON line each: ADDED, MODIFIED, DELETED, and BOOKMARK when `allowWatchBookmarks=true`.
 *   A revision older than the history (after `compact()`) gets the real server's answer: an ERROR event with a
 *   410 `Expired` Status in a 200 stream (or an HTTP 410, with `goneAsHttpStatus`), so the informer relists.
 * - One revision counter for all kinds, as etcd gives the real server; a bearer token is required.
 * - `POST /apis/authentication.k8s.io/v1/tokenreviews`: reviews service-account tokens made by
 *   `issueServiceAccountToken` (JWT-shaped, with the real claims but a meaningless signature), answering as the
 *   real server does: 201 with `status.authenticated`, the `system:serviceaccount:<ns>:<sa>` user and the
 *   audiences the token and the request share, or `authenticated: false` with an `error`.
 * Objects change through methods (`apply`, `remove`), not through the HTTP API.
 */

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
}

interface Collection {
  readonly path: string;
  readonly apiVersion: string;
  readonly kind: string;
  /** Custom resources' list items keep apiVersion and kind. */
  readonly custom: boolean;
  readonly objects: Map<string, KubeObject>;
  readonly history: { rv: number; type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }[];
  readonly watches: Set<Watch>;
}

interface Watch {
  readonly res: ServerResponse;
  readonly bookmarks: boolean;
}

export const TOKEN = 'fake-api-server-token';

/** The audience of a token when none is asked for, and of a review that names none (the API server's own). */
export const API_SERVER_AUDIENCE = 'https://kubernetes.default.svc';

interface ServiceAccountToken {
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly audiences: readonly string[];
  readonly expiresAt: number;
}

/** Built-in and Istio kinds by collection path: what `@kubernetes/client-node` informers list and watch. */
const KINDS: readonly { path: string; apiVersion: string; kind: string; custom: boolean }[] = [
  { path: '/api/v1/services', apiVersion: 'v1', kind: 'Service', custom: false },
  { path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod', custom: false },
  {
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    custom: false,
  },
  ...['VirtualService', 'DestinationRule', 'Sidecar', 'WorkloadEntry'].map((kind) => ({
    path: `/apis/networking.istio.io/v1/${kind.toLowerCase()}s`,
    apiVersion: 'networking.istio.io/v1',
    kind,
    custom: true,
  })),
];

export class FakeKubeApi extends FakeHttpServer {
  private readonly collections = new Map<string, Collection>();
  private revision = 1000;
  /** History at or below this revision is gone: watches from before it get 410. */
  private compactedTo = 0;
  private uid = 0;
  /** Answer a too-old revision with HTTP 410 instead of a 410 ERROR event. */
  goneAsHttpStatus = false;
  /** Requests by kind: `list Service`, `watch Service`, `gone Service`, and `tokenreview`. */
  readonly counts = new Map<string, number>();
  private readonly saTokens = new Map<string, ServiceAccountToken>();

  constructor() {
    super();
    for (const k of KINDS)
      this.collections.set(k.path, { ...k, objects: new Map(), history: [], watches: new Set() });
  }

  /** Stops listening and cuts every connection (watches included), as an API server that went away. */
  override async stop(): Promise<void> {
    for (const c of this.collections.values()) c.watches.clear();
    await super.stop();
  }

  /** A kubeconfig for this server (plain HTTP, so TLS verification is off, and a bearer token). */
  writeKubeconfig(dir: string): string {
    const file = join(dir, 'kubeconfig.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: fake`,
        `  cluster: {server: "${this.url}", insecure-skip-tls-verify: true}`,
        'users:',
        `- name: fake`,
        `  user: {token: ${TOKEN}}`,
        'contexts:',
        '- name: fake',
        '  context: {cluster: fake, user: fake}',
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return file;
  }

  /**
   * A token for a service account, as the TokenRequest API (a projected volume) would mint it: for `audiences`
   * (default the API server's), valid for `ttlSeconds` (default 1 h).
   */
  issueServiceAccountToken(
    namespace: string,
    serviceAccount: string,
    opts: { audiences?: readonly string[]; ttlSeconds?: number } = {},
  ): string {
    const now = Math.floor(Date.now() / 1000);
    const exp = now + (opts.ttlSeconds ?? 3600);
    const audiences = opts.audiences ?? [API_SERVER_AUDIENCE];
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = {
      aud: audiences,
      exp,
      iat: now,
      iss: API_SERVER_AUDIENCE,
      sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
      'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: `uid-${++this.uid}` } },
    };
    const token = `${b64({ alg: 'RS256', kid: 'fake' })}.${b64(claims)}.${randomBytes(32).toString('base64url')}`;
    this.saTokens.set(token, { namespace, serviceAccount, audiences, expiresAt: exp * 1000 });
    return token;
  }

  count(what: string): number {
    return this.counts.get(what) ?? 0;
  }

  /** Creates or replaces an object (by kind, namespace and name), as the server would after a write. */
  apply(input: KubeObject): KubeObject {
    const c = this.collectionOf(input.kind);
    const key = `${input.metadata.namespace ?? 'default'}/${input.metadata.name}`;
    const had = c.objects.get(key);
    const rv = ++this.revision;
    const object: KubeObject = structuredClone(input);
    object.apiVersion = c.apiVersion;
    object.kind = c.kind;
    object.metadata = {
      ...object.metadata,
      namespace: input.metadata.namespace ?? 'default',
      uid: (had?.metadata.uid as string | undefined) ?? `uid-${++this.uid}`,
      resourceVersion: String(rv),
      creationTimestamp: (had?.metadata.creationTimestamp as string | undefined) ?? new Date().toISOString(),
      // What a real server adds: fields the mesh must accept and ignore.
      generation: 1,
      managedFields: [
        { manager: 'fake', operation: 'Update', apiVersion: c.apiVersion, time: '2024-01-01T00:00:00Z' },
      ],
    };
    c.objects.set(key, object);
    this.publish(c, rv, had === undefined ? 'ADDED' : 'MODIFIED', object);
    return object;
  }

  remove(kind: string, namespace: string, name: string): void {
    const c = this.collectionOf(kind);
    const key = `${namespace}/${name}`;
    const had = c.objects.get(key);
    if (had === undefined) throw new Error(`fake API server: no ${kind} ${key}`);
    c.objects.delete(key);
    const rv = ++this.revision;
    this.publish(c, rv, 'DELETED', { ...had, metadata: { ...had.metadata, resourceVersion: String(rv) } });
  }

  /** Forgets the history: a watch resuming from any earlier revision gets 410 Gone. */
  compact(): void {
    this.compactedTo = this.revision;
    for (const c of this.collections.values()) c.history.length = 0;
  }

  /** Ends every open watch stream cleanly (a real server does so after its watch timeout). */
  dropWatches(): void {
    for (const c of this.collections.values()) {
      for (const w of c.watches) w.res.end();
      c.watches.clear();
    }
  }

  /** Sends a BOOKMARK with the current revision to every watch that asked for bookmarks. */
  bookmark(): void {
    for (const c of this.collections.values()) {
      for (const w of c.watches) {
        if (!w.bookmarks) continue;
        const object = {
          kind: c.kind,
          apiVersion: c.apiVersion,
          metadata: { resourceVersion: String(this.revision) },
        };
        w.res.write(`${JSON.stringify({ type: 'BOOKMARK', object })}\n`);
      }
    }
  }

  /** Every object, as `[kind, namespace, name]`. */
  all(): [string, string, string][] {
    const out: [string, string, string][] = [];
    for (const c of this.collections.values())
      for (const o of c.objects.values())
        out.push([c.kind, o.metadata.namespace ?? 'default', o.metadata.name]);
    return out;
  }

  openWatches(): number {
    let n = 0;
    for (const c of this.collections.values()) n += c.watches.size;
    return n;
  }

  private collectionOf(kind: string | undefined): Collection {
    for (const c of this.collections.values()) if (c.kind === kind) return c;
    throw new Error(`fake API server: no collection for kind ${kind}`);
  }

  private bump(what: string): void {
    this.counts.set(what, this.count(what) + 1);
  }

  private publish(
    c: Collection,
    rv: number,
    type: 'ADDED' | 'MODIFIED' | 'DELETED',
    object: KubeObject,
  ): void {
    c.history.push({ rv, type, object });
    if (c.history.length > 1000) c.history.shift();
    for (const w of c.watches) w.res.write(`${JSON.stringify({ type, object })}\n`);
  }

  protected handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return status(res, 401, 'Unauthorized', 'Unauthorized');
    if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews')
      return this.tokenReview(req, res);
    const c = this.collections.get(url.pathname);
    if (req.method !== 'GET' || c === undefined)
      return status(res, 404, 'NotFound', `the fake API server does not serve ${req.method} ${url.pathname}`);
    if (url.searchParams.get('watch') === 'true') return this.watch(c, url, res);
    this.bump(`list ${c.kind}`);
    const items = [...c.objects.values()].map((o) => {
      if (c.custom) return o;
      const { apiVersion: _a, kind: _k, ...rest } = o;
      return rest;
    });
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({
        apiVersion: c.apiVersion,
        kind: `${c.kind}List`,
        metadata: { resourceVersion: String(this.revision) },
        items,
      }),
    );
  }

  private tokenReview(req: IncomingMessage, res: ServerResponse): void {
    this.bump('tokenreview');
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      let review: { spec?: { token?: string; audiences?: string[] } };
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return status(res, 400, 'BadRequest', 'the body is not JSON');
      }
      const spec = review.spec ?? {};
      const wanted =
        spec.audiences !== undefined && spec.audiences.length > 0 ? spec.audiences : [API_SERVER_AUDIENCE];
      const t = spec.token === undefined ? undefined : this.saTokens.get(spec.token);
      let result: Record<string, unknown>;
      if (t === undefined) result = { user: {}, error: '[invalid bearer token, token lookup failed]' };
      else if (t.expiresAt <= Date.now())
        result = {
          user: {},
          error: '[invalid bearer token, square/go-jose/jwt: validation failed, token is expired (exp)]',
        };
      else {
        const shared = t.audiences.filter((a) => wanted.includes(a));
        result =
          shared.length === 0
            ? {
                user: {},
                error: `[invalid bearer token, token audiences ${JSON.stringify(t.audiences)} is invalid for the target audiences ${JSON.stringify(wanted)}]`,
              }
            : {
                authenticated: true,
                audiences: shared,
                user: {
                  username: `system:serviceaccount:${t.namespace}:${t.serviceAccount}`,
                  uid: 'fake-uid',
                  groups: [
                    'system:serviceaccounts',
                    `system:serviceaccounts:${t.namespace}`,
                    'system:authenticated',
                  ],
                },
              };
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          kind: 'TokenReview',
          apiVersion: 'authentication.k8s.io/v1',
          metadata: { creationTimestamp: null },
          spec,
          status: result,
        }),
      );
    });
  }

  private watch(c: Collection, url: URL, res: ServerResponse): void {
    this.bump(`watch ${c.kind}`);
    const from = url.searchParams.get('resourceVersion') ?? '';
    const since = from === '' || from === '0' ? undefined : Number(from);
    if (since !== undefined && (!Number.isInteger(since) || since < this.compactedTo)) {
      this.bump(`gone ${c.kind}`);
      const message = `too old resource version: ${from} (${this.compactedTo})`;
      if (this.goneAsHttpStatus) return status(res, 410, 'Expired', message);
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: statusObject(410, 'Expired', message) })}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    // A real server answers a watch at once, before any event.
    res.flushHeaders();
    if (since === undefined) {
      // "Start at most recent": synthetic ADDED events for what exists.
      for (const o of c.objects.values()) res.write(`${JSON.stringify({ type: 'ADDED', object: o })}\n`);
    } else {
      for (const e of c.history) {
        if (e.rv > since) res.write(`${JSON.stringify({ type: e.type, object: e.object })}\n`);
      }
    }
    const w: Watch = { res, bookmarks: url.searchParams.get('allowWatchBookmarks') === 'true' };
    c.watches.add(w);
    res.on('close', () => c.watches.delete(w));
  }
}

function statusObject(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

function status(res: ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(statusObject(code, reason, message)));
}

// Cross-object checks of a mesh: references to hosts, subsets, ports and namespaces; conflicting policies.

import { quote } from '../config/reader.js';
import { speaksMtls } from './generator/mtls.js';
import { SERVICE_NAME_LABEL } from './manifests/kubernetes.js';
import { hostMatches } from './model/hosts.js';
import {
  type AuthorizationPolicyObject,
  type AuthzSource,
  type DestinationRuleObject,
  describeObject,
  type Labels,
  type MeshObject,
  type SidecarObject,
  selects,
  type VirtualServiceObject,
} from './model/objects.js';
import { MESH_ROOT_NAMESPACE, mtlsFor } from './model/security.js';
import type { MeshSnapshot } from './model/snapshot.js';
import { unreachableRoutes } from './route_coverage.js';

/** Stable problem codes of `remora analyze` (and of the sources), documented in docs/control-plane.md. */
export const PROBLEM_NAMES = {
  RA0101: 'yaml-syntax',
  RA0102: 'invalid-field',
  RA0103: 'unknown-kind',
  RA0104: 'duplicate-object',
  RA0105: 'unreadable-file',
  RA0201: 'unknown-host',
  RA0202: 'unknown-subset',
  RA0203: 'subset-without-endpoints',
  RA0204: 'unknown-port',
  RA0205: 'unknown-namespace',
  RA0206: 'unknown-service',
  RA0301: 'conflicting-virtual-services',
  RA0302: 'unreachable-route',
  RA0303: 'conflicting-destination-rules',
  RA0304: 'conflicting-sidecars',
  RA0305: 'conflicting-hostname',
  RA0306: 'policy-never-matches',
  RA0307: 'strict-without-identity',
  RA0401: 'dns-lookup-failed',
  RA0402: 'source-unreachable',
  RA0403: 'serving-kept-state',
  RA0404: 'kept-state-unusable',
} as const;

export type ProblemCode = keyof typeof PROBLEM_NAMES;

export interface Problem {
  readonly code: ProblemCode;
  /** `file: Kind ns/name: field.path: what is wrong`. */
  readonly message: string;
}

type Located = {
  readonly kind: string;
  readonly meta: MeshObject['meta'];
  readonly origin: MeshObject['origin'];
};

function at(o: Located, path: string, message: string): string {
  const where = o.origin.file === undefined ? '' : `${o.origin.file}: `;
  return `${where}${describeObject(o)}: ${path === '' ? '' : `${path}: `}${message}`;
}

function where(o: Located): string {
  return o.origin.file === undefined ? describeObject(o) : `${describeObject(o)} (${o.origin.file})`;
}

/** Every cross-object problem of a valid set of objects and the snapshot built from them. */
export function checkMesh(snapshot: MeshSnapshot, objects: readonly MeshObject[]): Problem[] {
  const out: Problem[] = [];
  const add = (code: ProblemCode, o: Located, path: string, message: string) =>
    out.push({ code, message: at(o, path, message) });
  const known = (host: string) =>
    host.includes('*') ? snapshot.servicesMatching(host).length > 0 : snapshot.service(host) !== undefined;

  checkHostnames(objects, add);
  for (const o of objects) {
    if (
      o.kind === 'EndpointSlice' &&
      !objects.some(
        (s) => s.kind === 'Service' && s.meta.namespace === o.meta.namespace && s.meta.name === o.serviceName,
      )
    )
      add(
        'RA0206',
        o,
        `metadata.labels[${JSON.stringify(SERVICE_NAME_LABEL)}]`,
        `no Service ${quote(o.serviceName)} in namespace ${quote(o.meta.namespace)}`,
      );
  }
  const vsByHost = new Map<string, VirtualServiceObject>();
  for (const vs of snapshot.virtualServices) {
    vs.hosts.forEach((h, i) => {
      if (!known(h.fqdn))
        add(
          'RA0201',
          vs,
          `spec.hosts[${i}]`,
          `unknown host ${quote(h.host)}: no service ${h.fqdn.includes('*') ? 'matches' : 'is named'} ${quote(h.fqdn)}`,
        );
      const first = vsByHost.get(h.fqdn);
      if (first === undefined) vsByHost.set(h.fqdn, vs);
      else if (first !== vs)
        add(
          'RA0301',
          vs,
          `spec.hosts[${i}]`,
          `host ${quote(h.fqdn)} is also routed by ${where(first)}: one VirtualService per host (merge their routes)`,
        );
    });
    checkRoutes(snapshot, vs, add, known);
  }
  const drByHost = new Map<string, DestinationRuleObject>();
  for (const dr of snapshot.destinationRules) {
    if (!known(dr.fqdn))
      add(
        'RA0201',
        dr,
        'spec.host',
        `unknown host ${quote(dr.host)}: no service ${dr.fqdn.includes('*') ? 'matches' : 'is named'} ${quote(dr.fqdn)}`,
      );
    const first = drByHost.get(dr.fqdn);
    if (first === undefined) drByHost.set(dr.fqdn, dr);
    else
      add(
        'RA0303',
        dr,
        'spec.host',
        `host ${quote(dr.fqdn)} also has ${where(first)}: one DestinationRule per host`,
      );
    if (dr.fqdn.includes('*') || snapshot.service(dr.fqdn) === undefined) continue;
    const eps = snapshot.endpoints(dr.fqdn);
    dr.subsets.forEach((s, i) => {
      if (eps.some((e) => selects(s.labels, e.labels))) return;
      const why =
        eps.length === 0
          ? `${dr.fqdn} has no endpoints`
          : `none of the ${eps.length} endpoints of ${dr.fqdn} has labels ${JSON.stringify(s.labels)}`;
      add('RA0203', dr, `spec.subsets[${i}]`, `subset ${quote(s.name)} selects no endpoints: ${why}`);
    });
  }
  checkSidecars(snapshot, add);
  checkAuthorizationPolicies(snapshot, add);
  checkStrictMtls(snapshot, add);
  return out;
}

function checkHostnames(
  objects: readonly MeshObject[],
  add: (c: ProblemCode, o: Located, p: string, m: string) => void,
) {
  const seen = new Map<string, Located>();
  for (const o of objects) {
    if (o.kind !== 'ServiceEntry') continue;
    const first = seen.get(o.host);
    if (first === undefined) seen.set(o.host, o);
    else
      add(
        'RA0305',
        o,
        'spec.hosts[0]',
        `host ${quote(o.host)} is also declared by ${where(first)}: ignored here`,
      );
  }
}

function checkRoutes(
  snapshot: MeshSnapshot,
  vs: VirtualServiceObject,
  add: (c: ProblemCode, o: Located, p: string, m: string) => void,
  known: (host: string) => boolean,
): void {
  vs.http.forEach((r, i) => {
    r.route.forEach((rd, j) => {
      const d = rd.destination;
      const path = `spec.http[${i}].route[${j}].destination`;
      if (!known(d.fqdn)) {
        add(
          'RA0201',
          vs,
          `${path}.host`,
          `unknown host ${quote(d.host)}: no service is named ${quote(d.fqdn)}`,
        );
        return;
      }
      const svc = snapshot.service(d.fqdn);
      if (svc !== undefined && d.port !== undefined && !svc.ports.some((p) => p.port === d.port)) {
        const ports = svc.ports.map((p) => p.port).join(', ') || 'none';
        add(
          'RA0204',
          vs,
          `${path}.port.number`,
          `${d.fqdn} does not expose port ${d.port} (its ports: ${ports})`,
        );
      }
      if (d.subset !== undefined) {
        const dr = snapshot.destinationRule(d.fqdn);
        if (dr === undefined || !dr.subsets.some((s) => s.name === d.subset)) {
          const why =
            dr === undefined
              ? `no DestinationRule for ${d.fqdn}`
              : `${where(dr)} defines ${dr.subsets.map((s) => quote(s.name)).join(', ') || 'no subsets'}`;
          add('RA0202', vs, `${path}.subset`, `unknown subset ${quote(d.subset)}: ${why}`);
        }
      }
    });
  });
  for (const u of unreachableRoutes(vs.http)) {
    const by = u.shadowedBy
      .map((k) => `http[${k}]${vs.http[k]!.name ? ` (${quote(vs.http[k]!.name!)})` : ''}`)
      .join(', ');
    add(
      'RA0302',
      vs,
      `spec.http[${u.index}]`,
      `this route can never match: ${by} before it ${u.shadowedBy.length > 1 ? 'catch' : 'catches'} every request it would`,
    );
  }
}

function checkSidecars(
  snapshot: MeshSnapshot,
  add: (c: ProblemCode, o: Located, p: string, m: string) => void,
) {
  const namespaces = new Set(snapshot.namespaces);
  const defaults = new Map<string, SidecarObject>();
  for (const sc of snapshot.sidecars) {
    if (sc.workloadSelector === undefined) {
      const first = defaults.get(sc.meta.namespace);
      if (first === undefined) defaults.set(sc.meta.namespace, sc);
      else
        add(
          'RA0304',
          sc,
          'spec',
          `namespace ${quote(sc.meta.namespace)} already has a Sidecar without workloadSelector, ${where(first)}: only one may apply`,
        );
    }
    sc.egress.forEach((e, i) => {
      e.hosts.forEach((h, j) => {
        if (h.namespace === '*' || h.namespace === '~' || namespaces.has(h.namespace)) {
          const inNs = (ns: string) => h.namespace === '*' || ns === h.namespace;
          if (
            h.namespace !== '~' &&
            h.host !== '*' &&
            !snapshot.services.some((s) => inNs(s.namespace) && hostMatches(h.host, s.hostname))
          )
            add(
              'RA0201',
              sc,
              `spec.egress[${i}].hosts[${j}]`,
              `unknown host ${quote(h.raw)}: no service matches it`,
            );
          return;
        }
        add(
          'RA0205',
          sc,
          `spec.egress[${i}].hosts[${j}]`,
          `namespace ${quote(h.namespace)} does not exist (no object is in it)`,
        );
      });
    });
  }
}

/**
 * AuthorizationPolicies, or parts of them, that can never match: a selector no workload or endpoint of the
 * namespace carries (the mesh's, in the root namespace), a path without its leading "/", a method in lower case
 * (methods are case-sensitive), a source namespace no object is in, a rule on callers' identities for workloads
 * that have no mesh identity (nobody calls them over mTLS).
 */
function checkAuthorizationPolicies(
  snapshot: MeshSnapshot,
  add: (c: ProblemCode, o: Located, p: string, m: string) => void,
) {
  const namespaces = new Set(snapshot.namespaces);
  // The label sets of every workload and endpoint, by namespace (undefined: the whole mesh), each made once.
  const byNamespace = new Map<string | undefined, Labels[]>();
  const labelSets = (ns: string | undefined): Labels[] => {
    let sets = byNamespace.get(ns);
    if (sets === undefined) {
      sets = [
        ...snapshot.workloads.filter((w) => ns === undefined || w.namespace === ns).map((w) => w.labels),
        ...snapshot.services
          .filter((svc) => ns === undefined || svc.namespace === ns)
          .flatMap((svc) => snapshot.endpoints(svc.hostname).map((e) => e.labels)),
      ];
      byNamespace.set(ns, sets);
    }
    return sets;
  };
  // The workloads a policy applies to when none of them has a mesh identity (and mTLS is not STRICT for them,
  // which RA0307 reports): named for the message; undefined otherwise, or when it applies to none.
  const identityless = (ap: AuthorizationPolicyObject): string | undefined => {
    const root = ap.meta.namespace === MESH_ROOT_NAMESPACE;
    const targets = snapshot.workloads.filter(
      (w) =>
        (root || w.namespace === ap.meta.namespace) &&
        (ap.selector === undefined || selects(ap.selector, w.labels)),
    );
    if (targets.length === 0 || targets.some((w) => speaksMtls(w.labels))) return undefined;
    if (targets.some((w) => mtlsFor(snapshot.peerAuthentications, w.namespace, w.labels).mode === 'STRICT'))
      return undefined;
    const names = targets.slice(0, 3).map((w) => `${w.kind} ${w.namespace}/${w.name}`);
    return `${names.join(', ')}${targets.length > 3 ? ` and ${targets.length - 3} more` : ''}`;
  };
  for (const ap of snapshot.authorizationPolicies) {
    if (ap.selector !== undefined && Object.keys(ap.selector).length > 0) {
      const ns = ap.meta.namespace === MESH_ROOT_NAMESPACE ? undefined : ap.meta.namespace;
      if (!labelSets(ns).some((l) => selects(ap.selector!, l)))
        add(
          'RA0306',
          ap,
          'spec.selector.matchLabels',
          `selects no workload: nothing ${ns === undefined ? 'in the mesh' : `in namespace ${quote(ns)}`} has labels ${JSON.stringify(ap.selector)}`,
        );
    }
    ap.rules.forEach((rule, i) => {
      rule.to.forEach((op, j) => {
        const at = `spec.rules[${i}].to[${j}].operation`;
        op.paths?.forEach((p, k) => {
          if (!p.startsWith('/') && !p.startsWith('*'))
            add('RA0306', ap, `${at}.paths[${k}]`, `${quote(p)} never matches: request paths start with "/"`);
        });
        op.methods?.forEach((m, k) => {
          if (m !== m.toUpperCase())
            add(
              'RA0306',
              ap,
              `${at}.methods[${k}]`,
              `${quote(m)} never matches: methods are case-sensitive (${quote(m.toUpperCase())})`,
            );
        });
      });
      const stranded = identityless(ap);
      if (stranded !== undefined && rule.from.length > 0 && rule.from.every(needsIdentity))
        add(
          'RA0306',
          ap,
          `spec.rules[${i}].from`,
          `never matches: it asks for the caller's identity, but ${stranded} ha${stranded.includes(',') ? 've' : 's'} ` +
            'no mesh identity (label "security.istio.io/tlsMode: istio"), so callers come in plaintext, unidentified',
        );
      rule.from.forEach((src, j) => {
        src.namespaces?.forEach((n, k) => {
          if (!n.includes('*') && !namespaces.has(n))
            add(
              'RA0205',
              ap,
              `spec.rules[${i}].from[${j}].source.namespaces[${k}]`,
              `namespace ${quote(n)} does not exist (no object is in it)`,
            );
        });
      });
    });
  }
}

/** A source that only a caller with a verified identity can match. */
function needsIdentity(src: AuthzSource): boolean {
  return (src.principals?.length ?? 0) > 0 || (src.namespaces?.length ?? 0) > 0;
}

/**
 * PeerAuthentications whose STRICT reaches a workload without a mesh identity (no `security.istio.io/tlsMode:
 * istio` label): its clients send it plaintext, which STRICT refuses, so nothing gets through.
 */
function checkStrictMtls(
  snapshot: MeshSnapshot,
  add: (c: ProblemCode, o: Located, p: string, m: string) => void,
) {
  for (const pa of snapshot.peerAuthentications) {
    const strict = pa.mode === 'STRICT' || Object.values(pa.portLevel).includes('STRICT');
    if (!strict) continue;
    const mesh = pa.meta.namespace === MESH_ROOT_NAMESPACE && pa.selector === undefined;
    const stranded = snapshot.workloads.filter((w) => {
      if (speaksMtls(w.labels)) return false;
      if (!mesh && w.namespace !== pa.meta.namespace) return false;
      if (pa.selector !== undefined && !selects(pa.selector, w.labels)) return false;
      const m = mtlsFor(snapshot.peerAuthentications, w.namespace, w.labels);
      return m.mode === 'STRICT' || Object.values(m.ports).includes('STRICT');
    });
    if (stranded.length === 0) continue;
    const names = stranded.slice(0, 3).map((w) => `${w.kind} ${w.namespace}/${w.name}`);
    const more = stranded.length > 3 ? ` and ${stranded.length - 3} more` : '';
    add(
      'RA0307',
      pa,
      pa.mode === 'STRICT' ? 'spec.mtls.mode' : 'spec.portLevelMtls',
      `STRICT refuses all traffic to ${names.join(', ')}${more}: without the label ` +
        `"security.istio.io/tlsMode: istio" it has no mesh identity, so clients send it plaintext`,
    );
  }
}

// ClusterLoadAssignments: the ready endpoints of each EDS cluster (a subset's: those its labels select), grouped
// by locality and priority.

import { deepFreeze } from '../model/digest.js';
import { selects } from '../model/objects.js';
import type { Endpoint, MeshSnapshot } from '../model/snapshot.js';
import type { EdsTarget } from './clusters.js';
import { MTLS_ENDPOINT_METADATA, speaksMtls } from './mtls.js';
import type { Json } from './names.js';

/**
 * Assignments already built from a snapshot, by everything `buildAssignment` reads of the target: proxies of many
 * groups share most of their clusters, and an endpoint change rebuilds every group's assignments.
 */
const built = new WeakMap<MeshSnapshot, Map<string, Json>>();

/**
 * The assignment of one EDS cluster, built once per snapshot and target and frozen (it is shared; the encoder
 * knows a frozen object's content cannot change).
 */
export function loadAssignment(snapshot: MeshSnapshot, target: EdsTarget): Json {
  let memo = built.get(snapshot);
  if (memo === undefined) {
    memo = new Map();
    built.set(snapshot, memo);
  }
  const key = `${target.cluster}\0${target.service.hostname}\0${target.port.name}\0${
    target.subsetLabels === undefined ? '' : JSON.stringify(target.subsetLabels)
  }`;
  let cla = memo.get(key);
  if (cla === undefined) {
    cla = deepFreeze(buildAssignment(snapshot, target));
    memo.set(key, cla);
  }
  return cla;
}

/**
 * The assignment of one EDS cluster. An endpoint of a workload that speaks mTLS says so in its metadata, which
 * the cluster's `tlsMode-istio` transport socket matches. Endpoints that are not ready, or that do not serve the service port, are left
 * out, as Istio leaves them out by default (a not-ready endpoint sent as UNHEALTHY would only count against the
 * panic threshold). Every locality carries a `locality` (possibly empty)
 * and a non-zero `load_balancing_weight`, the sum of its endpoints' weights: proxyless gRPC clients refuse a
 * locality without one and drop one weighted 0.
 */
function buildAssignment(snapshot: MeshSnapshot, target: EdsTarget): Json {
  const groups = new Map<string, { locality: Json; priority: number; weight: number; lb: Json[] }>();
  for (const e of snapshot.endpoints(target.service.hostname)) {
    const port = e.ports[target.port.name];
    if (!e.ready || port === undefined) continue;
    if (target.subsetLabels !== undefined && !selects(target.subsetLabels, e.labels)) continue;
    const locality = localityJson(e);
    const priority = e.priority ?? 0;
    const key = `${JSON.stringify(locality)}|${priority}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { locality, priority, weight: 0, lb: [] };
      groups.set(key, g);
    }
    const weight = e.weight !== undefined && e.weight > 0 ? e.weight : 1;
    g.weight += weight;
    g.lb.push({
      endpoint: { address: { socket_address: { address: e.address, port_value: port } } },
      ...(speaksMtls(e.labels) && { metadata: MTLS_ENDPOINT_METADATA }),
      ...(weight !== 1 && { load_balancing_weight: weight }),
    });
  }
  const endpoints = [...groups.entries()]
    .sort((a, b) => a[1].priority - b[1].priority || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([, g]) => ({
      locality: g.locality,
      lb_endpoints: g.lb,
      load_balancing_weight: g.weight,
      ...(g.priority !== 0 && { priority: g.priority }),
    }));
  return { cluster_name: target.cluster, endpoints };
}

function localityJson(e: Endpoint): Json {
  const l = e.locality;
  const out: Json = {};
  if (l?.region) out.region = l.region;
  if (l?.zone) out.zone = l.zone;
  if (l?.subZone) out.sub_zone = l.subZone;
  return out;
}

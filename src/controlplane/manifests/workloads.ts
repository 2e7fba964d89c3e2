// Istio's kinds for workloads and services outside Kubernetes: WorkloadEntry, and ServiceEntry resolved by DNS.

import { quote } from '../../config/reader.js';
import { isDnsLabel, isHostPattern, meshProtocolOf } from '../model/hosts.js';
import type { Origin, ServiceEntryObject, ServiceEntryPort, WorkloadEntryObject } from '../model/objects.js';
import { checkIp, exportToOf, labelsOf, type Metadata, uniquelyNamed } from './common.js';
import { checkInt, type Obj } from './reader.js';

/** The annotation that turns on SRV lookups for a ServiceEntry's ports. */
export const DNS_SRV_ANNOTATION = 'remora.io/dns-srv';

export function workloadEntryOf(top: Obj, md: Metadata, origin: Origin): WorkloadEntryObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const address = spec.string('address');
  if (address === undefined) {
    spec.error(
      'address',
      "missing: Remora needs the workload's IP address (network-only entries are not supported yet)",
    );
  } else if (address.startsWith('unix://')) {
    spec.error('address', 'Unix domain socket addresses are not supported by Remora yet');
  } else {
    checkIp(spec, spec.pathOf('address'), address);
  }
  const ports: Record<string, number> = {};
  for (const e of spec.entries('ports')) {
    if (!isDnsLabel(e.key)) {
      spec.ctx.error(e.path, `${quote(e.key)} is not a valid port name`);
      continue;
    }
    const n = checkInt(spec.ctx, e.value, e.path, { min: 1, max: 65535 });
    if (n !== undefined) ports[e.key] = n;
  }
  const labels = labelsOf(spec, 'labels') ?? {};
  const serviceAccount = spec.string('serviceAccount', { nonEmpty: true });
  const network = spec.string('network', { nonEmpty: true });
  const locality = spec.string('locality', { nonEmpty: true });
  const weight = spec.int('weight', { min: 1, max: 2147483647 });
  const priority = spec.int('priority', { max: 127 });
  spec.finish();
  if (address === undefined) return undefined;
  return {
    kind: 'WorkloadEntry',
    meta: md.meta,
    origin,
    address,
    ports: sortedRecord(ports),
    labels,
    serviceAccount,
    network,
    locality,
    weight,
    priority,
  };
}

const SE_PROTOCOLS = ['HTTP', 'HTTPS', 'GRPC', 'HTTP2', 'MONGO', 'TCP', 'TLS'] as const;

function serviceEntryPort(o: Obj): ServiceEntryPort | undefined {
  const number = o.int('number', { required: true, min: 1, max: 65535 });
  const name = o.string('name', { required: true });
  if (name !== undefined && !isDnsLabel(name)) o.error('name', `${quote(name)} is not a valid port name`);
  const protocol = o.enumOf('protocol', SE_PROTOCOLS);
  const targetPort = o.int('targetPort', { min: 1, max: 65535 });
  o.finish();
  if (number === undefined || name === undefined) return undefined;
  return { name, number, protocol, targetPort, meshProtocol: meshProtocolOf(name, protocol, 'TCP') };
}

export function serviceEntryOf(top: Obj, md: Metadata, origin: Origin): ServiceEntryObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const hosts = spec.strings('hosts', { nonEmpty: true });
  if (hosts.length > 1)
    spec.error('hosts', 'Remora resolves one host per ServiceEntry: write one ServiceEntry per host');
  const host = (hosts[0]?.value as string | undefined)?.toLowerCase();
  if (host !== undefined && (!isHostPattern(host) || host.includes('*') || !host.includes('.')))
    spec.ctx.error(
      hosts[0]!.path,
      `${quote(host)} is not a fully qualified DNS name (wildcards are not resolvable)`,
    );
  const ports = uniquelyNamed(spec, spec.list('ports', { nonEmpty: true }), 'port', serviceEntryPort);
  const resolution = spec.enumOf('resolution', ['DNS'] as const, ['NONE', 'STATIC', 'DNS_ROUND_ROBIN']);
  if (!spec.has('resolution'))
    spec.error('resolution', 'missing: Remora supports ServiceEntries with resolution DNS');
  const location = spec.enumOf('location', ['MESH_EXTERNAL', 'MESH_INTERNAL'] as const) ?? 'MESH_EXTERNAL';
  const exportTo = exportToOf(spec);
  spec.notYet(['addresses', 'endpoints', 'workloadSelector', 'subjectAltNames']);
  spec.finish();
  const srvFlag = md.annotations[DNS_SRV_ANNOTATION];
  if (srvFlag !== undefined && srvFlag !== 'true' && srvFlag !== 'false')
    top.ctx.error(
      `metadata.annotations[${JSON.stringify(DNS_SRV_ANNOTATION)}]`,
      `expected "true" or "false", got ${quote(srvFlag)}`,
    );
  if (host === undefined || resolution === undefined) return undefined;
  return {
    kind: 'ServiceEntry',
    meta: md.meta,
    origin,
    host,
    ports,
    resolution,
    location,
    exportTo,
    srv: srvFlag === 'true',
  };
}

function sortedRecord(r: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(r).sort()) out[k] = r[k]!;
  return out;
}

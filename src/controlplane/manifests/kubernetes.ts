// Kubernetes kinds: v1 Namespace, v1 Service and discovery.k8s.io/v1 EndpointSlice, validated into mesh objects.

import { quote } from '../../config/reader.js';
import { isDnsLabel, meshProtocolOf } from '../model/hosts.js';
import type {
  EndpointSliceObject,
  NamespaceObject,
  Origin,
  PortProtocol,
  ServiceObject,
  ServicePort,
  SliceEndpoint,
  SlicePort,
} from '../model/objects.js';
import { checkIp, labelsOf, type Metadata, uniquelyNamed } from './common.js';
import { Obj } from './reader.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';
const PROTOCOLS: readonly PortProtocol[] = ['TCP', 'UDP', 'SCTP'];

export function namespaceOf(top: Obj, md: Metadata, origin: Origin): NamespaceObject | undefined {
  // A Namespace's spec and status hold only finalizers and phase: nothing the mesh uses.
  top.ignore(['spec', 'status']);
  return { kind: 'Namespace', meta: { ...md.meta, namespace: md.meta.name }, origin };
}

/** A port name as Kubernetes allows it for a target port: IANA_SVC_NAME (1-15 characters, a letter required). */
function isPortName(s: string): boolean {
  return s.length <= 15 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes('--');
}

function servicePort(o: Obj, single: boolean): ServicePort | undefined {
  const name = o.string('name', { required: !single }) ?? '';
  if (name !== '' && !isDnsLabel(name))
    o.error('name', `${quote(name)} is not a valid port name (a DNS label)`);
  const port = o.int('port', { required: true, min: 1, max: 65535 });
  const protocol = o.enumOf('protocol', PROTOCOLS) ?? 'TCP';
  const appProtocol = o.string('appProtocol', { nonEmpty: true });
  let targetPort: number | string | undefined = port;
  const tp = o.take('targetPort');
  if (typeof tp === 'number') {
    targetPort = Number.isInteger(tp) && tp >= 1 && tp <= 65535 ? tp : undefined;
    if (targetPort === undefined)
      o.error('targetPort', `must be a port number between 1 and 65535 or a port name, got ${tp}`);
  } else if (typeof tp === 'string') {
    if (/^[0-9]+$/.test(tp)) targetPort = Number(tp);
    else if (isPortName(tp)) targetPort = tp;
    else
      o.error(
        'targetPort',
        `${quote(tp)} is not a valid port name (up to 15 lower-case letters, digits and "-")`,
      );
  } else if (tp !== undefined) {
    o.error('targetPort', `expected a port number or name, got ${typeof tp}`);
  }
  o.ignore(['nodePort']);
  o.finish();
  if (port === undefined || targetPort === undefined) return undefined;
  return {
    name,
    port,
    protocol,
    appProtocol,
    targetPort,
    meshProtocol: meshProtocolOf(name, appProtocol, protocol),
  };
}

export function serviceOf(top: Obj, md: Metadata, origin: Origin): ServiceObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const items = spec.list('ports');
  const ports: ServicePort[] = [];
  const names = new Set<string>();
  const numbers = new Set<string>();
  for (const item of items) {
    const o = Obj.of(spec.ctx, item.value, item.path);
    const p = o && servicePort(o, items.length === 1);
    if (p === undefined) continue;
    if (names.has(p.name)) spec.ctx.error(`${item.path}.name`, `duplicate port name ${quote(p.name)}`);
    if (numbers.has(`${p.port}/${p.protocol}`))
      spec.ctx.error(`${item.path}.port`, `duplicate port ${p.port}/${p.protocol}`);
    names.add(p.name);
    numbers.add(`${p.port}/${p.protocol}`);
    ports.push(p);
  }
  const selector = labelsOf(spec, 'selector');
  const type =
    spec.enumOf('type', ['ClusterIP', 'NodePort', 'LoadBalancer'] as const, ['ExternalName']) ?? 'ClusterIP';
  const { clusterIPs, headless } = clusterIPsOf(spec);
  const publishNotReadyAddresses = spec.bool('publishNotReadyAddresses') ?? false;
  spec.enumOf('sessionAffinity', ['None'], ['ClientIP']);
  spec.enumOf('internalTrafficPolicy', ['Cluster'], ['Local']);
  // How traffic from outside the cluster reaches nodes: no concern of the sidecars.
  spec.ignore([
    'ipFamilies',
    'ipFamilyPolicy',
    'externalTrafficPolicy',
    'healthCheckNodePort',
    'allocateLoadBalancerNodePorts',
    'loadBalancerClass',
    'loadBalancerIP',
    'loadBalancerSourceRanges',
  ]);
  spec.notYet(['externalName', 'externalIPs', 'sessionAffinityConfig', 'trafficDistribution']);
  spec.finish();
  if (ports.length !== items.length) return undefined;
  return {
    kind: 'Service',
    meta: md.meta,
    origin,
    type,
    clusterIPs,
    headless,
    ports,
    selector,
    publishNotReadyAddresses,
  };
}

function clusterIPsOf(spec: Obj): { clusterIPs: string[]; headless: boolean } {
  const one = spec.string('clusterIP');
  const list = spec.strings('clusterIPs').map((i) => ({ ip: i.value as string, path: i.path }));
  if (one !== undefined && list.length > 0 && list[0]!.ip !== one)
    spec.error('clusterIPs', `the first entry must equal clusterIP (${quote(one)})`);
  const all = list.length > 0 ? list : one === undefined ? [] : [{ ip: one, path: spec.pathOf('clusterIP') }];
  const headless = all.some((a) => a.ip === 'None');
  if (headless && all.length > 1) spec.error('clusterIPs', '"None" must be the only entry');
  const clusterIPs: string[] = [];
  for (const a of all) {
    if (a.ip === 'None' || a.ip === '') continue;
    if (checkIp(spec, a.path, a.ip)) clusterIPs.push(a.ip);
  }
  return { clusterIPs, headless };
}

function sliceEndpoint(o: Obj, family: 4 | 6): SliceEndpoint | undefined {
  const addresses = o.strings('addresses', { nonEmpty: true });
  for (const a of addresses) checkIp(o, a.path, a.value as string, family);
  let ready = true;
  const cond = o.object('conditions');
  if (cond !== undefined) {
    // Kubernetes: an unknown (absent) ready condition is to be read as ready.
    ready = cond.bool('ready') ?? true;
    cond.bool('serving');
    cond.bool('terminating');
    cond.finish();
  }
  const hostname = o.string('hostname', { nonEmpty: true });
  const nodeName = o.string('nodeName', { nonEmpty: true });
  const zone = o.string('zone', { nonEmpty: true });
  let targetRef: string | undefined;
  const ref = o.object('targetRef');
  if (ref !== undefined) {
    const kind = ref.string('kind') ?? 'Pod';
    const name = ref.string('name', { required: true });
    const namespace = ref.string('namespace');
    ref.ignore(['apiVersion', 'uid', 'resourceVersion', 'fieldPath']);
    ref.finish();
    if (name !== undefined) targetRef = `${kind}/${namespace ?? ''}/${name}`;
  }
  o.ignore(['deprecatedTopology']);
  o.notYet(['hints'], { hints: 'topology-aware routing' });
  o.finish();
  const address = addresses[0]?.value as string | undefined;
  if (address === undefined) return undefined;
  return { address, ready, hostname, zone, nodeName, targetRef };
}

function slicePort(o: Obj): SlicePort | undefined {
  const name = o.string('name') ?? '';
  if (name !== '' && !isDnsLabel(name))
    o.error('name', `${quote(name)} is not a valid port name (a DNS label)`);
  const port = o.int('port', { required: true, min: 1, max: 65535 });
  const protocol = o.enumOf('protocol', PROTOCOLS) ?? 'TCP';
  const appProtocol = o.string('appProtocol', { nonEmpty: true });
  o.finish();
  if (port === undefined) return undefined;
  return { name, port, protocol, appProtocol };
}

export function endpointSliceOf(top: Obj, md: Metadata, origin: Origin): EndpointSliceObject | undefined {
  const serviceName = md.meta.labels[SERVICE_NAME_LABEL];
  if (serviceName === undefined)
    top.ctx.error(
      `metadata.labels[${JSON.stringify(SERVICE_NAME_LABEL)}]`,
      'missing: the label names the Service (in the same namespace) these endpoints belong to',
    );
  const addressType = top.enumOf('addressType', ['IPv4', 'IPv6'] as const, ['FQDN']);
  if (!top.has('addressType')) top.error('addressType', 'missing required field');
  const family = addressType === 'IPv6' ? 6 : 4;
  const endpoints: SliceEndpoint[] = [];
  const epItems = top.list('endpoints');
  for (const item of epItems) {
    const o = Obj.of(top.ctx, item.value, item.path);
    const e = o && sliceEndpoint(o, family);
    if (e !== undefined) endpoints.push(e);
  }
  const portItems = top.list('ports');
  const ports = uniquelyNamed(top, portItems, 'port', slicePort);
  if (serviceName === undefined || addressType === undefined) return undefined;
  if (endpoints.length !== epItems.length || ports.length !== portItems.length) return undefined;
  return { kind: 'EndpointSlice', meta: md.meta, origin, serviceName, addressType, endpoints, ports };
}

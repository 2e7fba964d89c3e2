// Istio DestinationRule: subsets by labels, load balancing, connection pool limits and the mesh's TLS mode; the rest
// rejected.

import { quote } from '../../config/reader.js';
import { isHostPattern, resolveHost } from '../model/hosts.js';
import type {
  ConnectionPool,
  DestinationRuleObject,
  LoadBalancer,
  Origin,
  Subset,
  TrafficPolicy,
  TrafficTls,
} from '../model/objects.js';
import { durationField, exportToOf, labelsOf, type Metadata, uniquelyNamed } from './common.js';
import type { Obj } from './reader.js';

const POLICY_NOT_YET: Readonly<Record<string, string>> = {
  outlierDetection: 'outlier detection',
  portLevelSettings: 'per-port traffic policies',
  tunnel: 'tunnelling',
  proxyProtocol: 'the PROXY protocol',
};

function consistentHash(o: Obj): LoadBalancer | undefined {
  const which = o.oneOf(['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'], {
    required: true,
  });
  const header = o.string('httpHeaderName', { nonEmpty: true });
  let cookie: { name: string; path: string | undefined; ttlMs: number | undefined } | undefined;
  const c = o.object('httpCookie');
  if (c !== undefined) {
    const name = c.string('name', { required: true });
    const path = c.string('path', { nonEmpty: true });
    const ttlMs = durationField(c, 'ttl');
    c.notYet(['attributes'], { attributes: 'cookie attributes' });
    c.finish();
    if (name !== undefined) cookie = { name, path, ttlMs };
  }
  const sourceIp = o.bool('useSourceIp');
  if (which === 'useSourceIp' && sourceIp === false)
    o.error('useSourceIp', 'must be true when it is the hash key');
  const algo = o.oneOf(['ringHash', 'maglev', 'minimumRingSize']);
  let algorithm: Extract<LoadBalancer, { kind: 'consistentHash' }>['algorithm'] = {
    kind: 'ringHash',
    minimumRingSize: undefined,
  };
  const rh = o.object('ringHash');
  if (rh !== undefined) {
    algorithm = { kind: 'ringHash', minimumRingSize: rh.int('minimumRingSize', { min: 1, max: 8_388_608 }) };
    rh.finish();
  }
  // Deprecated by Istio in favour of ringHash.minimumRingSize; same meaning.
  const legacy = o.int('minimumRingSize', { min: 1, max: 8_388_608 });
  if (algo === 'minimumRingSize') algorithm = { kind: 'ringHash', minimumRingSize: legacy };
  const mg = o.object('maglev');
  if (mg !== undefined) {
    const tableSize = mg.int('tableSize', { min: 1, max: 5_000_011 });
    mg.finish();
    algorithm = { kind: 'maglev', tableSize };
  }
  o.notYet(['httpQueryParameterName'], { httpQueryParameterName: 'hashing on a query parameter' });
  o.finish();
  if (which === 'httpHeaderName' && header !== undefined)
    return {
      kind: 'consistentHash',
      hash: { kind: 'httpHeaderName', name: header.toLowerCase() },
      algorithm,
    };
  if (which === 'httpCookie' && cookie !== undefined)
    return { kind: 'consistentHash', hash: { kind: 'httpCookie', ...cookie }, algorithm };
  if (which === 'useSourceIp' && sourceIp === true)
    return { kind: 'consistentHash', hash: { kind: 'useSourceIp' }, algorithm };
  return undefined;
}

function loadBalancer(o: Obj): LoadBalancer | undefined {
  const which = o.oneOf(['simple', 'consistentHash']);
  // LEAST_CONN is Istio's deprecated name for LEAST_REQUEST.
  const simple = o.enumOf(
    'simple',
    ['ROUND_ROBIN', 'LEAST_REQUEST', 'LEAST_CONN', 'RANDOM', 'UNSPECIFIED'] as const,
    ['PASSTHROUGH'],
  );
  const ch = o.object('consistentHash');
  const hashed = ch && consistentHash(ch);
  o.notYet(['localityLbSetting', 'warmup', 'warmupDurationSecs'], {
    localityLbSetting: 'locality load balancing',
    warmup: 'slow start',
    warmupDurationSecs: 'slow start',
  });
  o.finish();
  if (which === 'consistentHash') return hashed;
  if (simple === undefined || simple === 'UNSPECIFIED') return undefined;
  return { kind: 'simple', simple: simple === 'LEAST_CONN' ? 'LEAST_REQUEST' : simple };
}

function connectionPool(o: Obj): ConnectionPool {
  let tcp: ConnectionPool['tcp'];
  const t = o.object('tcp');
  if (t !== undefined) {
    tcp = {
      maxConnections: t.int('maxConnections', { min: 1 }),
      connectTimeoutMs: durationField(t, 'connectTimeout', { min: 1 }),
    };
    t.notYet(['tcpKeepalive', 'maxConnectionDuration', 'idleTimeout'], {
      tcpKeepalive: 'TCP keep-alive settings',
      maxConnectionDuration: 'a maximum connection duration',
      idleTimeout: 'a TCP idle timeout',
    });
    t.finish();
  }
  let http: ConnectionPool['http'];
  const h = o.object('http');
  if (h !== undefined) {
    http = {
      http1MaxPendingRequests: h.int('http1MaxPendingRequests', { min: 1 }),
      http2MaxRequests: h.int('http2MaxRequests', { min: 1 }),
      maxRequestsPerConnection: h.int('maxRequestsPerConnection'),
      maxRetries: h.int('maxRetries'),
    };
    h.enumOf('h2UpgradePolicy', ['DEFAULT', 'DO_NOT_UPGRADE'] as const, ['UPGRADE']);
    h.notYet(['idleTimeout', 'useClientProtocol', 'maxConcurrentStreams'], {
      idleTimeout: 'an HTTP idle timeout',
      useClientProtocol: "keeping the client's protocol",
      maxConcurrentStreams: 'a stream limit per connection',
    });
    h.finish();
  }
  o.finish();
  return { tcp, http };
}

/**
 * `tls`: DISABLE (plaintext, even to workloads that speak mTLS) or ISTIO_MUTUAL (mTLS with the workload certificate
 * to every endpoint); SIMPLE and MUTUAL (TLS origination with given certificates) are not supported yet.
 */
function trafficTls(o: Obj): TrafficTls | undefined {
  const mode = o.enumOf('mode', ['DISABLE', 'ISTIO_MUTUAL'] as const, ['SIMPLE', 'MUTUAL']);
  const sni = o.string('sni', { nonEmpty: true });
  const sans = o.strings('subjectAltNames', { nonEmptyItems: true }).map((i) => i.value as string);
  o.notYet(
    ['clientCertificate', 'privateKey', 'caCertificates', 'credentialName', 'caCrl', 'insecureSkipVerify'],
    {
      credentialName: 'certificates from a Kubernetes secret',
    },
  );
  o.finish();
  if (mode === undefined) return undefined;
  return {
    mode,
    ...(sni !== undefined && { sni }),
    ...(sans.length > 0 && { subjectAltNames: sans }),
  };
}

function trafficPolicy(o: Obj): TrafficPolicy {
  const lb = o.object('loadBalancer');
  const cp = o.object('connectionPool');
  const t = o.object('tls');
  const tls = t && trafficTls(t);
  const policy = {
    loadBalancer: lb && loadBalancer(lb),
    connectionPool: cp && connectionPool(cp),
    ...(tls !== undefined && { tls }),
  };
  o.notYet(Object.keys(POLICY_NOT_YET), POLICY_NOT_YET);
  o.finish();
  return policy;
}

function subset(o: Obj): Subset | undefined {
  const name = o.string('name', { required: true });
  if (name !== undefined && !/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name))
    o.error('name', `${quote(name)} is not a valid subset name (letters, digits, "-", "_", ".")`);
  const labels = labelsOf(o, 'labels') ?? {};
  const tp = o.object('trafficPolicy');
  const policy = tp && trafficPolicy(tp);
  o.finish();
  if (name === undefined) return undefined;
  return { name, labels, trafficPolicy: policy };
}

export function destinationRuleOf(top: Obj, md: Metadata, origin: Origin): DestinationRuleObject | undefined {
  const spec = top.object('spec', { required: true });
  top.ignore(['status']);
  if (spec === undefined) return undefined;
  const host = spec.string('host', { required: true });
  if (host !== undefined && !isHostPattern(host))
    spec.error('host', `${quote(host)} is not a host name, "*.suffix" or "*"`);
  const tp = spec.object('trafficPolicy');
  const policy = tp && trafficPolicy(tp);
  const subsets = uniquelyNamed(spec, spec.list('subsets'), 'subset', subset);
  const exportTo = exportToOf(spec);
  spec.notYet(['workloadSelector'], { workloadSelector: 'a workload selector on a DestinationRule' });
  spec.finish();
  if (host === undefined) return undefined;
  return {
    kind: 'DestinationRule',
    meta: md.meta,
    origin,
    host,
    fqdn: resolveHost(host, md.meta.namespace),
    trafficPolicy: policy,
    subsets,
    exportTo,
  };
}

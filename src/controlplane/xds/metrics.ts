// The ADS server's metrics, declared in one place and rendered in Prometheus text format 0.0.4.

/** Seconds: pushes are usually milliseconds; the debounce ceiling is 1 s; a slow client may take many. */
const BUCKETS_S = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

export class SecondsHistogram {
  readonly counts = new Array<number>(BUCKETS_S.length).fill(0);
  count = 0;
  sum = 0;

  record(seconds: number): void {
    this.count++;
    this.sum += seconds;
    const i = BUCKETS_S.findIndex((b) => seconds <= b);
    if (i >= 0) this.counts[i]!++;
  }
}

/** Counters by xDS type (CDS, EDS, ...). */
class TypeCounter {
  readonly byType = new Map<string, number>();
  inc(type: string): void {
    this.byType.set(type, (this.byType.get(type) ?? 0) + 1);
  }
  total(): number {
    let n = 0;
    for (const v of this.byType.values()) n += v;
    return n;
  }
}

export class XdsMetrics {
  /** Responses written, by type. */
  readonly pushes = new TypeCounter();
  /** NACKs received, by type. */
  readonly nacks = new TypeCounter();
  /** Requests ignored because their nonce was not the latest. */
  staleNonces = 0;
  /** From a cache change to the response it caused being written (includes the debounce). */
  readonly pushLatency = new SecondsHistogram();
  /** From a cache change to the proxy's ACK of the response it caused. */
  readonly convergence = new SecondsHistogram();

  constructor(
    private readonly connected: () => number,
    private readonly rejectedSnapshots: () => number,
  ) {}

  render(): string {
    let out = '';
    out += family('remora_xds_pushes_total', 'counter', 'xDS responses sent, by type.');
    out += byType('remora_xds_pushes_total', this.pushes);
    out += family('remora_xds_nacks_total', 'counter', 'xDS responses rejected by proxies (NACK), by type.');
    out += byType('remora_xds_nacks_total', this.nacks);
    out += family('remora_xds_stale_nonces_total', 'counter', 'Requests ignored for a stale nonce.');
    out += `remora_xds_stale_nonces_total ${this.staleNonces}\n`;
    out += family('remora_xds_rejected_snapshots_total', 'counter', 'Snapshots refused as inconsistent.');
    out += `remora_xds_rejected_snapshots_total ${this.rejectedSnapshots()}\n`;
    out += family('remora_xds_connected_proxies', 'gauge', 'Open ADS streams.');
    out += `remora_xds_connected_proxies ${this.connected()}\n`;
    out += histogram(
      'remora_xds_push_latency_seconds',
      'From a config change to the response it caused being sent.',
      this.pushLatency,
    );
    out += histogram(
      'remora_xds_convergence_seconds',
      'From a config change to the proxy acknowledging it.',
      this.convergence,
    );
    return out + processMemory();
  }
}

/** The process's memory under the names Prometheus' Node.js client uses, so existing dashboards read it. */
function processMemory(): string {
  const m = process.memoryUsage();
  let out = '';
  const gauge = (name: string, help: string, value: number) => {
    out += `${family(name, 'gauge', help)}${name} ${value}\n`;
  };
  gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', m.rss);
  gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', m.heapTotal);
  gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', m.heapUsed);
  gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', m.external);
  gauge('nodejs_array_buffers_bytes', 'Memory of ArrayBuffers and Buffers in bytes.', m.arrayBuffers);
  return out;
}

function family(name: string, kind: string, help: string): string {
  return `# HELP ${name} ${help}\n# TYPE ${name} ${kind}\n`;
}

function byType(name: string, c: TypeCounter): string {
  let out = '';
  for (const type of [...c.byType.keys()].sort())
    out += `${name}{type="${escapeLabel(type)}"} ${c.byType.get(type)}\n`;
  return out;
}

function histogram(name: string, help: string, h: SecondsHistogram): string {
  let out = family(name, 'histogram', help);
  let cumulative = 0;
  BUCKETS_S.forEach((b, i) => {
    cumulative += h.counts[i]!;
    out += `${name}_bucket{le="${b}"} ${cumulative}\n`;
  });
  out += `${name}_bucket{le="+Inf"} ${h.count}\n${name}_sum ${h.sum}\n${name}_count ${h.count}\n`;
  return out;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

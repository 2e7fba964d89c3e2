// `remora proxy-status`: each proxy connected to a control plane, SYNCED / STALE / NOT SENT per xDS type and its
// last NACK, read from the control plane's debug port (/debug/syncz).

const TYPES = ['CDS', 'LDS', 'EDS', 'RDS'] as const;

/** What /debug/syncz says of one stream (the fields read here). */
interface SynczProxy {
  readonly node: { readonly id: string; readonly cluster: string };
  readonly types: readonly {
    readonly type: string;
    readonly status: string;
    readonly lastNack?: { readonly message: string; readonly at: string };
  }[];
  readonly rejectedSnapshot?: { readonly errors: readonly { path: string; message: string }[] };
}

interface Output {
  write(text: string): unknown;
}

/** `host:port`, `[v6]:port` or a URL; the port defaults to 15014. */
export function synczUrl(controlPlane: string): string {
  const base = /^https?:\/\//.test(controlPlane) ? controlPlane : `http://${controlPlane}`;
  const url = new URL(base);
  if (url.port === '') url.port = '15014';
  url.pathname = '/debug/syncz';
  return url.toString();
}

/** The table: one row per connected proxy (stream), sorted by node id. */
export function formatProxyStatus(proxies: readonly SynczProxy[]): string {
  const rows: string[][] = [['NAME', 'CLUSTER', ...TYPES, 'LAST NACK']];
  const notes: string[] = [];
  const sorted = [...proxies].sort((a, b) => (a.node.id < b.node.id ? -1 : a.node.id > b.node.id ? 1 : 0));
  for (const p of sorted) {
    const byType = new Map(p.types.map((t) => [t.type, t]));
    let nack: { type: string; message: string; at: string } | undefined;
    for (const t of p.types) {
      if (t.lastNack !== undefined && (nack === undefined || t.lastNack.at > nack.at))
        nack = { type: t.type, message: t.lastNack.message, at: t.lastNack.at };
    }
    const nackText =
      nack === undefined
        ? '-'
        : `${nack.type} at ${nack.at}: ${nack.message.replace(/\s*[\r\n]+\s*/g, '; ')}`;
    rows.push([
      p.node.id,
      p.node.cluster === '' ? '-' : p.node.cluster,
      ...TYPES.map((t) => byType.get(t)?.status ?? 'NOT SENT'),
      nackText,
    ]);
    for (const e of p.rejectedSnapshot?.errors ?? [])
      notes.push(
        `${p.node.id}: the control plane refused its new snapshot (the last good one is served): ${e.path}: ${e.message}`,
      );
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
  return `${[...lines, ...notes].join('\n')}\n`;
}

export async function runProxyStatus(
  controlPlane: string,
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  let url: string;
  try {
    url = synczUrl(controlPlane);
  } catch {
    err.write(`remora proxy-status: --control-plane ${JSON.stringify(controlPlane)}: expected HOST:PORT\n`);
    return 2;
  }
  let proxies: SynczProxy[];
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} from ${url}`);
    proxies = (await res.json()) as SynczProxy[];
    if (!Array.isArray(proxies)) throw new Error(`${url} did not answer with a list of proxies`);
  } catch (e) {
    const cause = (e as { cause?: Error }).cause?.message;
    err.write(
      `remora proxy-status: cannot read ${url}: ${(e as Error).message}${cause ? ` (${cause})` : ''}\n`,
    );
    return 1;
  }
  if (proxies.length === 0) {
    out.write(`no proxy is connected to the control plane at ${controlPlane}\n`);
    return 0;
  }
  out.write(formatProxyStatus(proxies));
  return 0;
}

// request/response_headers_to_add/remove, compiled once per config, with Envoy's %VARIABLE% substitutions.

import type { HEADER_VARIABLES } from '../../config/headers.js';
import type { HeaderMutations, HeaderValueOption } from '../../config/model.js';
import { type HeaderList, headerHas, headerRemove, headerSet } from './header_list.js';

/** What a header value may refer to. */
export interface SubstitutionContext {
  readonly downstreamRemoteAddress: string;
  readonly downstreamLocalAddress: string;
  readonly upstreamHost: string | undefined;
  readonly protocol: string;
  readonly requestId: string | undefined;
}

type ValueFn = (ctx: SubstitutionContext) => string;

/** One function per name in config's HEADER_VARIABLES (validation rejects any other name). */
const VARIABLES: Record<(typeof HEADER_VARIABLES)[number], ValueFn> = {
  DOWNSTREAM_REMOTE_ADDRESS: (c) => c.downstreamRemoteAddress,
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: (c) => stripPort(c.downstreamRemoteAddress),
  DOWNSTREAM_LOCAL_ADDRESS: (c) => c.downstreamLocalAddress,
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: (c) => stripPort(c.downstreamLocalAddress),
  UPSTREAM_REMOTE_ADDRESS: (c) => c.upstreamHost ?? '',
  PROTOCOL: (c) => c.protocol,
  START_TIME: () => new Date().toISOString(),
  HOSTNAME: () => process.env.HOSTNAME ?? '',
  REQUEST_ID: (c) => c.requestId ?? '',
};

function stripPort(addr: string): string {
  if (addr.startsWith('[')) return addr.slice(1, addr.indexOf(']'));
  const i = addr.lastIndexOf(':');
  return i > 0 && addr.indexOf(':') === i ? addr.slice(0, i) : addr;
}

export function compileValue(value: string): ValueFn | string {
  if (!value.includes('%')) return value;
  const parts: (string | ValueFn)[] = [];
  const re = /%%|%([A-Z_]+)%/g;
  let last = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    parts.push(value.slice(last, m.index));
    if (m[0] === '%%') parts.push('%');
    else {
      const fn = (VARIABLES as Record<string, ValueFn | undefined>)[m[1]!];
      parts.push(fn ?? m[0]);
    }
    last = m.index + m[0].length;
  }
  parts.push(value.slice(last));
  return (ctx) => {
    let s = '';
    for (const p of parts) s += typeof p === 'string' ? p : p(ctx);
    return s;
  };
}

interface CompiledAdd {
  readonly key: string;
  readonly value: ValueFn | string;
  readonly action: HeaderValueOption['appendAction'];
  readonly keepEmpty: boolean;
}

export class HeaderMutator {
  private readonly reqAdd: CompiledAdd[];
  private readonly respAdd: CompiledAdd[];
  readonly empty: boolean;

  constructor(
    m: HeaderMutations,
    private readonly reqRemove = m.requestHeadersToRemove,
    private readonly respRemove = m.responseHeadersToRemove,
  ) {
    this.reqAdd = m.requestHeadersToAdd.map(compileAdd);
    this.respAdd = m.responseHeadersToAdd.map(compileAdd);
    this.empty =
      this.reqAdd.length === 0 &&
      this.respAdd.length === 0 &&
      reqRemove.length === 0 &&
      respRemove.length === 0;
  }

  applyRequest(h: HeaderList, ctx: SubstitutionContext): void {
    apply(h, this.reqRemove, this.reqAdd, ctx);
  }

  applyResponse(h: HeaderList, ctx: SubstitutionContext): void {
    apply(h, this.respRemove, this.respAdd, ctx);
  }
}

function apply(
  h: HeaderList,
  remove: readonly string[],
  add: readonly CompiledAdd[],
  ctx: SubstitutionContext,
): void {
  for (const name of remove) headerRemove(h, name);
  for (const a of add) {
    const v = typeof a.value === 'string' ? a.value : a.value(ctx);
    if (v === '' && !a.keepEmpty) continue;
    const present = headerHas(h, a.key);
    switch (a.action) {
      case 'APPEND_IF_EXISTS_OR_ADD':
        h.push(a.key, v);
        break;
      case 'ADD_IF_ABSENT':
        if (!present) h.push(a.key, v);
        break;
      case 'OVERWRITE_IF_EXISTS_OR_ADD':
        headerSet(h, a.key, v);
        break;
      case 'OVERWRITE_IF_EXISTS':
        if (present) headerSet(h, a.key, v);
        break;
    }
  }
}

function compileAdd(o: HeaderValueOption): CompiledAdd {
  return { key: o.key, value: compileValue(o.value), action: o.appendAction, keepEmpty: o.keepEmptyValue };
}

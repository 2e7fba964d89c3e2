// Envoy access-log formats (text and JSON) compiled once per config into parts; a log call only concatenates.

import type { AccessLogFormat } from '../../config/model.js';
import { nodeOs } from '../../lazy_builtins.js';
import { headerFirst } from '../http/header_list.js';
import { compileStartTimeFormat } from './start_time_format.js';
import type { ResponseFlag, StreamInfo } from './stream_info.js';

/** Envoy's default text format (it ends in a newline; a custom text format is used exactly as written). */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ' +
  '%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ' +
  '%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ' +
  '"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/** A format that cannot be compiled; `path` names the JSON field when the format is json_format. */
export class AccessLogFormatError extends Error {
  readonly code = 'REMORA_ERR_ACCESS_LOG_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'AccessLogFormatError';
  }
}

type Raw = string | number | undefined;

/** One command operator, resolved at compile time. */
interface Operator {
  /** Typed as a JSON number when it is the whole value of a json_format field. */
  readonly numeric: boolean;
  readonly get: (info: StreamInfo) => Raw;
  /** The `:Z` suffix: truncate the printed value to Z characters. */
  readonly maxLength: number | undefined;
}

type Part = string | Operator;

/** Compiles a format; throws AccessLogFormatError on an unknown operator or a malformed command. */
export function compileFormat(format: AccessLogFormat): (info: StreamInfo) => string {
  if (format.kind === 'text')
    return compileText(format.template === '' ? DEFAULT_ACCESS_LOG_FORMAT : format.template);
  return compileJson(format.fields);
}

/** The compile error of a text template or a whole format, or undefined when it is valid. */
export function validateFormat(format: string | AccessLogFormat): string | undefined {
  try {
    compileFormat(typeof format === 'string' ? { kind: 'text', template: format } : format);
    return undefined;
  } catch (err) {
    if (err instanceof AccessLogFormatError) return err.message;
    throw err;
  }
}

// ---------------------------------------------------------------- text

function compileText(template: string): (info: StreamInfo) => string {
  const parts = parseTemplate(template);
  if (parts.length === 1 && typeof parts[0] === 'string') {
    const constant = parts[0];
    return () => constant;
  }
  return (info) => {
    let out = '';
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      out += typeof p === 'string' ? p : text(p, info);
    }
    return out;
  };
}

function text(op: Operator, info: StreamInfo): string {
  const v = op.get(info);
  if (v === undefined) return '-';
  const s = typeof v === 'number' ? String(v) : v;
  return op.maxLength !== undefined && s.length > op.maxLength ? s.slice(0, op.maxLength) : s;
}

// ---------------------------------------------------------------- JSON

/** Each field is a format string, a literal number/boolean/null, or a nested object; one object per line. */
function compileJson(fields: Readonly<Record<string, unknown>>): (info: StreamInfo) => string {
  const pieces: (string | ((info: StreamInfo) => string))[] = [];
  let literal = '';
  const emit = (p: string | ((info: StreamInfo) => string)): void => {
    if (typeof p === 'string') {
      literal += p;
      return;
    }
    if (literal !== '') pieces.push(literal);
    literal = '';
    pieces.push(p);
  };
  compileJsonObject(fields, '', emit);
  emit('\n');
  if (literal !== '') pieces.push(literal);
  return (info) => {
    let out = '';
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i]!;
      out += typeof p === 'string' ? p : p(info);
    }
    return out;
  };
}

function compileJsonObject(
  obj: Readonly<Record<string, unknown>>,
  path: string,
  emit: (p: string | ((info: StreamInfo) => string)) => void,
): void {
  emit('{');
  let first = true;
  for (const [key, value] of Object.entries(obj)) {
    const at = path === '' ? key : `${path}.${key}`;
    emit(`${first ? '' : ','}${JSON.stringify(key)}:`);
    first = false;
    if (typeof value === 'string') {
      emit(compileJsonValue(value, at));
    } else if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
      emit(JSON.stringify(value));
    } else if (typeof value === 'object' && !Array.isArray(value)) {
      compileJsonObject(value as Record<string, unknown>, at, emit);
    } else {
      throw new AccessLogFormatError(
        `json_format field '${at}': only strings, numbers, booleans, null and nested objects are supported`,
      );
    }
  }
  emit('}');
}

function compileJsonValue(template: string, path: string): string | ((info: StreamInfo) => string) {
  let parts: Part[];
  try {
    parts = parseTemplate(template);
  } catch (err) {
    if (err instanceof AccessLogFormatError)
      throw new AccessLogFormatError(`json_format field '${path}': ${err.message}`);
    throw err;
  }
  if (parts.length === 0) return '""';
  if (parts.length === 1 && typeof parts[0] === 'string') return JSON.stringify(parts[0]);
  if (parts.length === 1) {
    // A value that is exactly one operator keeps its type; a missing value is null.
    const op = parts[0] as Operator;
    if (op.numeric && op.maxLength === undefined) {
      return (info) => {
        const v = op.get(info);
        return v === undefined
          ? 'null'
          : typeof v === 'number' && Number.isFinite(v)
            ? String(v)
            : JSON.stringify(v);
      };
    }
    return (info) => (op.get(info) === undefined ? 'null' : JSON.stringify(text(op, info)));
  }
  return (info) => {
    let out = '';
    for (const p of parts) out += typeof p === 'string' ? p : text(p, info);
    return JSON.stringify(out);
  };
}

// ---------------------------------------------------------------- parsing

const COMMAND = /%([A-Z0-9_]+)(?:\(([^)]*)\))?(?::([0-9]+))?%/y;

function parseTemplate(template: string): Part[] {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < template.length) {
    const pct = template.indexOf('%', i);
    if (pct < 0) {
      literal += template.slice(i);
      break;
    }
    literal += template.slice(i, pct);
    if (template[pct + 1] === '%') {
      literal += '%';
      i = pct + 2;
      continue;
    }
    COMMAND.lastIndex = pct;
    const m = COMMAND.exec(template);
    if (!m) {
      throw new AccessLogFormatError(
        `no valid command at position ${pct} of "${template}" (write %% for a literal percent sign)`,
      );
    }
    if (literal !== '') parts.push(literal);
    literal = '';
    parts.push(operator(m[1]!, m[2], m[3] === undefined ? undefined : Number(m[3])));
    i = pct + m[0].length;
  }
  if (literal !== '') parts.push(literal);
  return parts;
}

type Factory = (arg: string | undefined, name: string) => Pick<Operator, 'numeric' | 'get'>;

function operator(name: string, arg: string | undefined, maxLength: number | undefined): Operator {
  const factory = OPERATORS[name];
  if (!factory) throw new AccessLogFormatError(`unknown command operator %${name}%`);
  return { ...factory(arg, name), maxLength };
}

const str = (get: (info: StreamInfo) => string | undefined): Factory =>
  noArg(false, (info) => orMissing(get(info)));
const num = (get: (info: StreamInfo) => number | undefined): Factory => noArg(true, get);

function noArg(numeric: boolean, get: (info: StreamInfo) => Raw): Factory {
  return (arg, name) => {
    if (arg !== undefined) throw new AccessLogFormatError(`%${name}% takes no argument, got (${arg})`);
    return { numeric, get };
  };
}

const OPERATORS: Readonly<Record<string, Factory>> = {
  START_TIME: (arg) => {
    if (arg === undefined || arg === '')
      return { numeric: false, get: (info) => new Date(info.startTime).toISOString() };
    const fmt = compileStartTimeFormat(arg);
    return { numeric: false, get: (info) => fmt(info.startTime) };
  },
  REQ: (arg, name) => headerOperator(arg, name, 'request', false),
  REQ_WITHOUT_QUERY: (arg, name) => headerOperator(arg, name, 'request', true),
  RESP: (arg, name) => headerOperator(arg, name, 'response', false),
  // Trailers are not kept on StreamInfo.
  TRAILER: (arg, name) => {
    headerOperator(arg, name, 'response', false);
    return { numeric: false, get: () => undefined };
  },
  PROTOCOL: str((info) => (info.protocol === 'TCP' ? undefined : info.protocol)),
  RESPONSE_CODE: num((info) => info.responseCode),
  RESPONSE_CODE_DETAILS: str((info) => info.responseCodeDetails),
  RESPONSE_FLAGS: str((info) => (info.responseFlags.length === 0 ? undefined : info.responseFlags.join(','))),
  RESPONSE_FLAGS_LONG: str((info) =>
    info.responseFlags.length === 0 ? undefined : info.responseFlags.map((f) => LONG_FLAGS[f] ?? f).join(','),
  ),
  BYTES_RECEIVED: num((info) => info.bytesReceived),
  BYTES_SENT: num((info) => info.bytesSent),
  DURATION: num((info) => millis(info.durationMs)),
  RESPONSE_DURATION: num((info) => millis(info.responseStartMs)),
  // Not measured: the end of the request body is not recorded on StreamInfo.
  REQUEST_DURATION: num(() => undefined),
  UPSTREAM_HOST: str((info) => address(info.upstreamHost)),
  UPSTREAM_REMOTE_ADDRESS: str((info) => address(info.upstreamHost)),
  UPSTREAM_CLUSTER: str((info) => info.upstreamCluster),
  UPSTREAM_LOCAL_ADDRESS: str((info) => address(info.upstreamLocalAddress)),
  UPSTREAM_TRANSPORT_FAILURE_REASON: str((info) => info.upstreamTransportFailureReason),
  UPSTREAM_REQUEST_ATTEMPT_COUNT: num((info) => info.attemptCount),
  DOWNSTREAM_REMOTE_ADDRESS: str((info) => address(info.downstreamRemoteAddress)),
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: str((info) => withoutPort(info.downstreamRemoteAddress)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS: str((info) => address(info.downstreamRemoteAddress)),
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT: str((info) => withoutPort(info.downstreamRemoteAddress)),
  DOWNSTREAM_LOCAL_ADDRESS: str((info) => address(info.downstreamLocalAddress)),
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: str((info) => withoutPort(info.downstreamLocalAddress)),
  // Envoy joins several SANs with ","; without a verified peer certificate they are missing ("-").
  DOWNSTREAM_PEER_URI_SAN: str((info) => joined(info.downstreamPeer?.uriSans)),
  DOWNSTREAM_PEER_DNS_SAN: str((info) => joined(info.downstreamPeer?.dnsSans)),
  DOWNSTREAM_PEER_SUBJECT: str((info) => orMissing(info.downstreamPeer?.subject)),
  ROUTE_NAME: str((info) => info.routeName),
  CONNECTION_TERMINATION_DETAILS: str((info) => info.connectionTerminationDetails),
  STREAM_ID: str((info) => info.requestId),
  HOSTNAME: (arg, name) => {
    if (arg !== undefined) throw new AccessLogFormatError(`%${name}% takes no argument, got (${arg})`);
    const host = nodeOs().hostname();
    return { numeric: false, get: () => host };
  },
};

const LONG_FLAGS: Readonly<Partial<Record<ResponseFlag, string>>> = {
  UPE: 'UpstreamProtocolError',
  UH: 'NoHealthyUpstream',
  DO: 'DropOverload',
  UF: 'UpstreamConnectionFailure',
  UO: 'UpstreamOverflow',
  NR: 'NoRouteFound',
  URX: 'UpstreamRetryLimitExceeded',
  UT: 'UpstreamRequestTimeout',
  DC: 'DownstreamConnectionTermination',
  LR: 'LocalReset',
  UC: 'UpstreamConnectionTermination',
  UR: 'UpstreamRemoteReset',
  DPE: 'DownstreamProtocolError',
  SI: 'StreamIdleTimeout',
  DI: 'DelayInjected',
  FI: 'FaultInjected',
  RL: 'RateLimited',
};

/** %REQ(X?Y)%: header X, else header Y; pseudo-headers map to StreamInfo fields. */
function headerOperator(
  arg: string | undefined,
  name: string,
  which: 'request' | 'response',
  stripQuery: boolean,
): Pick<Operator, 'numeric' | 'get'> {
  if (arg === undefined || arg === '') throw new AccessLogFormatError(`%${name}(...)% needs a header name`);
  const names = arg.split('?');
  if (names.length > 2) throw new AccessLogFormatError(`%${name}(${arg})%: more than one alternative header`);
  if (names.some((n) => n === '' || /[\s]/.test(n))) {
    throw new AccessLogFormatError(`%${name}(${arg})%: invalid header name`);
  }
  const main = headerGetter(names[0]!.toLowerCase(), which);
  const alt = names[1] === undefined ? undefined : headerGetter(names[1].toLowerCase(), which);
  const get = alt ? (info: StreamInfo) => main(info) ?? alt(info) : main;
  return { numeric: false, get: stripQuery ? (info) => withoutQuery(get(info)) : get };
}

function headerGetter(
  header: string,
  which: 'request' | 'response',
): (info: StreamInfo) => string | undefined {
  if (which === 'request') {
    switch (header) {
      case ':method':
        return (info) => orMissing(info.method);
      case ':path':
        return (info) => orMissing(info.path) ?? first(info.requestHeaders?.[':path']);
      case ':authority':
      case 'host':
        return (info) => orMissing(info.authority) ?? first(info.requestHeaders?.host);
      case ':scheme':
        return (info) => first(info.requestHeaders?.[':scheme']) ?? 'http';
      default:
        return (info) => first(info.requestHeaders?.[header]);
    }
  }
  if (header === ':status') return (info) => (info.responseCode > 0 ? String(info.responseCode) : undefined);
  return (info) => orMissing(info.responseHeaders && headerFirst(info.responseHeaders, header));
}

function joined(v: readonly string[] | undefined): string | undefined {
  return v === undefined || v.length === 0 ? undefined : v.join(',');
}

function first(v: string | string[] | undefined): string | undefined {
  return orMissing(Array.isArray(v) ? v[0] : v);
}

function orMissing(v: string | undefined): string | undefined {
  return v === '' ? undefined : v;
}

/** formatAddress() prints "-" for an unknown address: that is a missing value. */
function address(v: string | undefined): string | undefined {
  return v === '-' ? undefined : v;
}

function millis(ms: number | undefined): number | undefined {
  return ms === undefined || !Number.isFinite(ms) ? undefined : Math.floor(ms);
}

function withoutQuery(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const q = v.indexOf('?');
  return q < 0 ? v : v.slice(0, q);
}

/** "10.0.0.1:80" → "10.0.0.1", "[::1]:80" → "::1"; an address without a port is returned as is. */
export function withoutPort(address: string | undefined): string | undefined {
  if (address === undefined || address === '' || address === '-') return undefined;
  if (address.startsWith('[')) {
    const end = address.indexOf(']');
    return end > 0 ? address.slice(1, end) : address;
  }
  const colon = address.indexOf(':');
  if (colon < 0 || colon !== address.lastIndexOf(':')) return address;
  return address.slice(0, colon);
}

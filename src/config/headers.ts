// Header names and header mutations: HeaderValueOption and the *_headers_to_add / *_headers_to_remove fields.

import type { HeaderAppendAction, HeaderMutations, HeaderValueOption } from './model.js';
import { type Ctx, Fields, type Item, quote, typeOf } from './reader.js';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
const MAX_HEADER_BYTES = 16384;

/** An RFC 9110 field name (a token). */
export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/** Pseudo-headers and `host` belong to the proxy; header mutations may not touch them. */
function isReserved(name: string): boolean {
  return name.startsWith(':') || name === 'host';
}

const APPEND_ACTIONS: readonly HeaderAppendAction[] = [
  'APPEND_IF_EXISTS_OR_ADD',
  'ADD_IF_ABSENT',
  'OVERWRITE_IF_EXISTS_OR_ADD',
  'OVERWRITE_IF_EXISTS',
];

/** A header name to add or remove, lower-cased; undefined (with an error) when invalid or reserved. */
function mutableHeaderName(ctx: Ctx, name: string, path: string): string | undefined {
  const lower = name.toLowerCase();
  if (isReserved(lower)) {
    ctx.error(path, `header ${quote(name)} may not be modified (pseudo-headers and host are reserved)`);
    return undefined;
  }
  if (!isHeaderName(lower)) {
    ctx.error(path, `invalid header name ${quote(name)}`);
    return undefined;
  }
  return lower;
}

/** The %VARIABLE%s a header value may use; the data plane substitutes exactly these. */
export const HEADER_VARIABLES = [
  'DOWNSTREAM_REMOTE_ADDRESS',
  'DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT',
  'DOWNSTREAM_LOCAL_ADDRESS',
  'DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT',
  'UPSTREAM_REMOTE_ADDRESS',
  'PROTOCOL',
  'START_TIME',
  'HOSTNAME',
  'REQUEST_ID',
] as const;

export function headerValueOption(ctx: Ctx, raw: unknown, path: string): HeaderValueOption | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const header = f.object('header', { required: true });
  const append = f.bool('append');
  const action = f.enumOf('append_action', APPEND_ACTIONS);
  const keepEmptyValue = f.bool('keep_empty_value') ?? false;
  if (f.has('append') && f.has('append_action')) {
    ctx.error(path, 'append and append_action may not both be set (append is deprecated)');
  }
  f.finish();
  if (header === undefined) return undefined;
  const key = header.string('key', { required: true });
  const value = header.string('value') ?? '';
  header.unsupported(['raw_value']);
  header.finish();
  if (value.length > MAX_HEADER_BYTES) header.error('value', `longer than ${MAX_HEADER_BYTES} bytes`);
  else if (/[\r\n\0]/.test(value)) header.error('value', 'must not contain CR, LF or NUL');
  else {
    for (const m of value.matchAll(/%%|%([A-Z0-9_]+)%/g)) {
      if (m[1] !== undefined && !(HEADER_VARIABLES as readonly string[]).includes(m[1])) {
        header.error(
          'value',
          `unknown variable %${m[1]}% (supported: ${HEADER_VARIABLES.map((v) => `%${v}%`).join(', ')}; write %% for a literal %)`,
        );
      }
    }
  }
  if (key === undefined) return undefined;
  const name = mutableHeaderName(ctx, key, header.pathOf('key'));
  if (name === undefined) return undefined;
  let appendAction: HeaderAppendAction = action ?? 'APPEND_IF_EXISTS_OR_ADD';
  if (append !== undefined) appendAction = append ? 'APPEND_IF_EXISTS_OR_ADD' : 'OVERWRITE_IF_EXISTS_OR_ADD';
  return { key: name, value, appendAction, keepEmptyValue };
}

function headersToAdd(f: Fields, name: string): HeaderValueOption[] {
  const out: HeaderValueOption[] = [];
  for (const item of f.list(name)) {
    const h = headerValueOption(f.ctx, item.value, item.path);
    if (h !== undefined) out.push(h);
  }
  return out;
}

function headersToRemove(f: Fields, name: string): string[] {
  const out: string[] = [];
  for (const item of f.list(name)) {
    const h = removedHeader(f.ctx, item);
    if (h !== undefined) out.push(h);
  }
  return out;
}

function removedHeader(ctx: Ctx, item: Item): string | undefined {
  if (typeof item.value !== 'string') {
    ctx.error(item.path, `expected a string, got ${typeOf(item.value)}`);
    return undefined;
  }
  return mutableHeaderName(ctx, item.value, item.path);
}

/** Reads the four header mutation fields shared by route configs, virtual hosts, routes and weighted clusters. */
export function headerMutations(f: Fields): HeaderMutations {
  return {
    requestHeadersToAdd: headersToAdd(f, 'request_headers_to_add'),
    requestHeadersToRemove: headersToRemove(f, 'request_headers_to_remove'),
    responseHeadersToAdd: headersToAdd(f, 'response_headers_to_add'),
    responseHeadersToRemove: headersToRemove(f, 'response_headers_to_remove'),
  };
}

export const NO_HEADER_MUTATIONS: HeaderMutations = {
  requestHeadersToAdd: [],
  requestHeadersToRemove: [],
  responseHeadersToAdd: [],
  responseHeadersToRemove: [],
};

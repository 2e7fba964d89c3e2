// Access logs (envoy.config.accesslog.v3.AccessLog): stdout, stderr and file sinks with text or JSON formats.

import type { AccessLogConfig, AccessLogFormat } from './model.js';
import { type Ctx, Fields, isPlainObject, jsonObject, typeOf } from './reader.js';
import { TYPE_URLS, typedConfig, wrongType } from './typed_config.js';

/** Envoy's default access log format, used when a logger names none. */
export const DEFAULT_ACCESS_LOG_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  '%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% ' +
  '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

const DEFAULT_FORMAT: AccessLogFormat = { kind: 'text', template: DEFAULT_ACCESS_LOG_FORMAT };

/** Reads the repeated AccessLog field `name` of `f`. */
export function accessLogs(f: Fields, name = 'access_log'): AccessLogConfig[] {
  const out: AccessLogConfig[] = [];
  for (const item of f.list(name)) {
    const log = accessLog(f.ctx, item.value, item.path);
    if (log !== undefined) out.push(log);
  }
  return out;
}

function accessLog(ctx: Ctx, raw: unknown, path: string): AccessLogConfig | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const name = f.string('name');
  f.unsupported(['filter']);
  const tc = typedConfig(f, 'typed_config', { required: true });
  f.finish();
  if (tc === undefined) return undefined;
  const c = tc.fields;
  let log: AccessLogConfig | undefined;
  switch (tc.typeUrl) {
    case TYPE_URLS.stdoutAccessLog:
    case TYPE_URLS.stderrAccessLog: {
      const stdout = tc.typeUrl === TYPE_URLS.stdoutAccessLog;
      const raw = c.take('log_format');
      const format = raw === undefined ? DEFAULT_FORMAT : formatString(ctx, raw, c.pathOf('log_format'));
      log = format && {
        name: name || (stdout ? 'envoy.access_loggers.stdout' : 'envoy.access_loggers.stderr'),
        sink: stdout ? { kind: 'stdout' } : { kind: 'stderr' },
        format,
      };
      break;
    }
    case TYPE_URLS.fileAccessLog:
      log = fileAccessLog(c, name || 'envoy.access_loggers.file');
      break;
    default:
      wrongType(tc, 'envoy.extensions.access_loggers.', 'access logger');
      return undefined;
  }
  c.finish();
  return log;
}

function fileAccessLog(c: Fields, name: string): AccessLogConfig | undefined {
  const path = c.string('path', { required: true });
  const which = c.oneOf(['format', 'json_format', 'typed_json_format', 'log_format']);
  let format: AccessLogFormat | undefined = DEFAULT_FORMAT;
  const text = c.string('format');
  const json = c.take('json_format');
  const log = c.take('log_format');
  c.unsupported(['typed_json_format']);
  if (which === 'format' && text !== undefined) format = { kind: 'text', template: text };
  else if (which === 'json_format') format = jsonFormat(c.ctx, json, c.pathOf('json_format'));
  else if (which === 'log_format') format = formatString(c.ctx, log, c.pathOf('log_format'));
  else if (which !== undefined || c.has('format')) format = undefined;
  if (path === undefined || format === undefined) return undefined;
  return { name, sink: { kind: 'file', path }, format };
}

function jsonFormat(ctx: Ctx, raw: unknown, path: string): AccessLogFormat | undefined {
  if (!isPlainObject(raw)) {
    ctx.error(path, `expected an object, got ${typeOf(raw)}`);
    return undefined;
  }
  return { kind: 'json', fields: jsonObject(ctx, raw, path) };
}

/** SubstitutionFormatString: text_format, text_format_source.inline_string or json_format. */
function formatString(ctx: Ctx, raw: unknown, path: string): AccessLogFormat | undefined {
  const f = Fields.of(ctx, raw, path);
  if (f === undefined) return undefined;
  const which = f.oneOf(['text_format', 'json_format', 'text_format_source'], { required: true });
  const text = f.string('text_format');
  const json = f.take('json_format');
  const source = f.object('text_format_source');
  f.unsupported(['omit_empty_values', 'content_type', 'formatters', 'json_format_options'], {
    omit_empty_values: false,
  });
  let format: AccessLogFormat | undefined;
  if (which === 'text_format' && text !== undefined) format = { kind: 'text', template: text };
  else if (which === 'json_format') format = jsonFormat(ctx, json, f.pathOf('json_format'));
  else if (which === 'text_format_source' && source !== undefined) {
    const others = ['filename', 'inline_bytes', 'environment_variable', 'watched_directory'];
    const inline = source.string('inline_string', { required: !others.some((k) => source.has(k)) });
    source.unsupported(others);
    source.finish();
    if (inline !== undefined) format = { kind: 'text', template: inline };
  }
  f.finish();
  return format;
}

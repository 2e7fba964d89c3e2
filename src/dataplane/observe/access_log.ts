// Access loggers: a compiled format writing lines to stdout, stderr or a file without blocking the event loop.

import { resolve as resolvePath } from 'node:path';
import sonicBoom from 'sonic-boom';
import type { AccessLogConfig } from '../../config/model.js';
import { compileFormat } from './access_log_format.js';
import { declareStats, type StatsStore } from './stats.js';
import type { StreamInfo } from './stream_info.js';

export { compileFormat, DEFAULT_ACCESS_LOG_FORMAT, validateFormat } from './access_log_format.js';

// sonic-boom is CommonJS: the default import is its module.exports, whose `default` is the class.
const SonicBoom = sonicBoom.default;
type SonicBoom = InstanceType<typeof SonicBoom>;

/** Buffered bytes kept before a flush (unless the flush timer fires first). */
const DEFAULT_MIN_LENGTH = 4096;
/** Bytes waiting for a slow destination beyond which lines are dropped (and counted). */
const DEFAULT_MAX_BUFFER_BYTES = 16 * 1024 * 1024;
/** Envoy's file_flush_interval default. */
const DEFAULT_FLUSH_INTERVAL_MS = 1000;
/** close() gives up waiting for a stuck destination after this long. */
const CLOSE_TIMEOUT_MS = 5000;

/** Stats of access-log sinks, shared by every logger of the store. */
const ACCESS_LOG_STATS = declareStats({
  counters: [
    'access_logs.file.write_buffered',
    'access_logs.file.write_dropped',
    'access_logs.file.write_failed',
  ],
  gauges: [],
  histograms: [],
});
type AccessLogStats = ReturnType<typeof accessLogStats>;
function accessLogStats(store: StatsStore) {
  return store.scope(undefined, ACCESS_LOG_STATS);
}

export interface AccessLoggerOptions {
  /** Counts buffered, dropped and failed writes (`access_logs.file.*`). */
  readonly stats?: StatsStore;
  /** Drop lines while more than this many bytes wait for the destination. Default 16 MiB. */
  readonly maxBufferBytes?: number;
  /** Batch writes up to this many bytes. Default 4096; 0 writes every line at once. */
  readonly minLength?: number;
  /** Flush a partial batch after this long. Default 1000 ms. */
  readonly flushIntervalMs?: number;
}

/**
 * One configured access log. Lines go to a sink shared by every logger with the same destination (so two
 * loggers on stdout or on one file do not interleave partial writes); the sink closes with its last logger.
 */
export class AccessLogger {
  readonly name: string;
  private readonly format: (info: StreamInfo) => string;
  private sink: SharedSink | undefined;
  private dropped = 0;
  private readonly counters: AccessLogStats | undefined;
  private readonly onError = (): void => this.counters?.['access_logs.file.write_failed'].inc();

  /** Throws AccessLogFormatError when the format does not compile. */
  constructor(config: AccessLogConfig, opts: AccessLoggerOptions = {}) {
    this.name = config.name;
    this.format = compileFormat(config.format);
    this.counters = opts.stats ? accessLogStats(opts.stats) : undefined;
    this.sink = SharedSink.acquire(config.sink, opts, this.onError);
  }

  /** Lines dropped because the destination fell too far behind (or the logger was closed). */
  get droppedLines(): number {
    return this.dropped;
  }

  log(info: StreamInfo): void {
    const sink = this.sink;
    if (!sink) {
      this.drop();
      return;
    }
    if (sink.write(this.format(info))) this.counters?.['access_logs.file.write_buffered'].inc();
    else this.drop();
  }

  /** Reopens a file destination in place (log rotation); a no-op for stdout and stderr. */
  reopen(): void {
    this.sink?.reopen();
  }

  /** Flushes what is buffered and releases the destination. Later log() calls are dropped. */
  async close(): Promise<void> {
    const sink = this.sink;
    this.sink = undefined;
    if (sink) await sink.release(this.onError);
  }

  private drop(): void {
    this.dropped++;
    this.counters?.['access_logs.file.write_dropped'].inc();
  }
}

type SinkConfig = AccessLogConfig['sink'];

/** A SonicBoom destination with a reference count; the first logger to open it sets its buffer options. */
class SharedSink {
  private static readonly open = new Map<string, SharedSink>();

  static acquire(config: SinkConfig, opts: AccessLoggerOptions, onError: () => void): SharedSink {
    const key = config.kind === 'file' ? `file:${resolvePath(config.path)}` : config.kind;
    let sink = SharedSink.open.get(key);
    if (!sink) {
      sink = new SharedSink(key, config, opts);
      SharedSink.open.set(key, sink);
    }
    sink.refs++;
    sink.errorListeners.add(onError);
    return sink;
  }

  private refs = 0;
  private readonly errorListeners = new Set<() => void>();
  private readonly boom: SonicBoom;
  private dropFlag = false;
  private openFailed = false;
  private ended = false;
  private readonly isFile: boolean;

  private constructor(
    private readonly key: string,
    config: SinkConfig,
    opts: AccessLoggerOptions,
  ) {
    const common = {
      minLength: opts.minLength ?? DEFAULT_MIN_LENGTH,
      maxLength: opts.maxBufferBytes ?? DEFAULT_MAX_BUFFER_BYTES,
      periodicFlush: opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS,
      sync: false,
    };
    this.isFile = config.kind === 'file';
    this.boom =
      config.kind === 'file'
        ? new SonicBoom({ ...common, dest: config.path, mkdir: true, append: true })
        : new SonicBoom({ ...common, fd: config.kind === 'stdout' ? 1 : 2 });
    this.boom.on('drop', () => {
      this.dropFlag = true;
    });
    // A failing destination must never take the proxy down: count it; lines wait in the bounded buffer.
    this.boom.on('error', () => {
      if ((this.boom as unknown as { fd: number }).fd < 0) this.openFailed = true;
      for (const l of this.errorListeners) l();
    });
  }

  /** False when the line was dropped. */
  write(line: string): boolean {
    if (this.ended || this.openFailed) return false;
    this.dropFlag = false;
    this.boom.write(line);
    return !this.dropFlag;
  }

  reopen(): void {
    if (this.isFile && !this.ended && !this.openFailed) this.boom.reopen();
  }

  async release(onError: () => void): Promise<void> {
    this.errorListeners.delete(onError);
    if (--this.refs > 0) return;
    SharedSink.open.delete(this.key);
    await this.end();
  }

  private end(): Promise<void> {
    const boom = this.boom;
    if (this.ended || this.openFailed) return Promise.resolve();
    this.ended = true;
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
      timer.unref();
      boom.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      boom.end();
    });
  }
}

// The proxy's own diagnostic log (not access logs): levels as Envoy names them, one line per event on stderr.

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'error', 'critical', 'off'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const rank: Record<LogLevel, number> = {
  trace: 0,
  debug: 1,
  info: 2,
  warning: 3,
  error: 4,
  critical: 5,
  off: 6,
};

export class Logger {
  private min: number;
  constructor(
    private levelName: LogLevel = 'info',
    private readonly write: (line: string) => void = (l) => process.stderr.write(l),
  ) {
    this.min = rank[levelName];
  }

  get level(): LogLevel {
    return this.levelName;
  }

  /** Returns false for a name that is not a level. */
  setLevel(name: string): boolean {
    const l = (name === 'warn' ? 'warning' : name) as LogLevel;
    if (!(l in rank)) return false;
    this.levelName = l;
    this.min = rank[l];
    return true;
  }

  enabled(level: LogLevel): boolean {
    return rank[level] >= this.min && this.min < rank.off;
  }

  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    const extra = fields ? ` ${JSON.stringify(fields)}` : '';
    this.write(`[${new Date().toISOString()}][${level}] ${msg}${extra}\n`);
  }

  debug(msg: string, fields?: Record<string, unknown>): void {
    this.log('debug', msg, fields);
  }
  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('info', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('warning', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('error', msg, fields);
  }
}

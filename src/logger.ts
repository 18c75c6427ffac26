/** A small structured logger: one JSON line per entry on stderr, secrets scrubbed. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
// Connection strings and bearer tokens must never reach a log line, whatever code logs them.
const SECRET_PATTERNS: readonly RegExp[] = [
  /\b(postgres(?:ql)?|redis|rediss):\/\/[^\s"'`]+/gi,
  /\bBearer\s+[A-Za-z0-9._~+/=-]+/gi,
  /\bcpt_[A-Za-z0-9_-]{20,}/g,
];

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Creates a logger writing to `sink` (stderr by default) at or above `level`. */
export function createLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  sink: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  function write(entryLevel: Exclude<LogLevel, 'silent'>, message: string, fields?: Record<string, unknown>) {
    if (RANK[entryLevel] < RANK[level]) return;
    const entry = { level: entryLevel, time: new Date().toISOString(), msg: message, ...base, ...fields };
    sink(redactSecrets(JSON.stringify(entry, replaceErrors)));
  }
  return {
    debug: (message, fields) => write('debug', message, fields),
    info: (message, fields) => write('info', message, fields),
    warn: (message, fields) => write('warn', message, fields),
    error: (message, fields) => write('error', message, fields),
    child: (fields) => createLogger(level, { ...base, ...fields }, sink),
  };
}

/** Replaces anything that looks like a connection string or token with a marker. */
export function redactSecrets(text: string): string {
  return SECRET_PATTERNS.reduce((out, pattern) => out.replace(pattern, '[redacted]'), text);
}

function replaceErrors(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const cause = (value as Error & { cause?: unknown }).cause;
    return {
      name: value.name,
      message: value.message,
      code: (value as Error & { code?: unknown }).code,
      stack: value.stack,
      ...(cause === undefined ? {} : { cause }),
    };
  }
  if (typeof value === 'bigint') return value.toString();
  return value;
}

import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  name?: string;
}

/** Structured JSON logger. Components take one and derive child loggers with scope fields. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({
    name: options.name ?? 'streamfleet',
    level: options.level ?? 'info',
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that writes nothing: the default for library objects when none is given. */
export const silentLogger: Logger = pino({ level: 'silent' });

import { type Logger, pino } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  level?: string;
  name?: string;
}

/**
 * Structured JSON logger on stdout. Components take one and derive child loggers with scope fields.
 *
 * Each line is written when it is logged (synchronously), not buffered: pino's default async
 * destination flushes at `process.exit` without waiting for a write already under way, so a
 * process's last lines (`shutdown complete`, the fatal line before an exit) could land before
 * earlier ones or be lost. Only failures and lifecycle events log; the happy path does not.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'streamfleet',
      level: options.level ?? 'info',
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing: the default for library objects when none is given. */
export const silentLogger: Logger = pino({ level: 'silent' });

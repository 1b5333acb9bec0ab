import { type Logger, pino } from 'pino';

/** One JSON log line as a test reads it back. */
export type LogLine = Record<string, unknown> & { msg?: string; group?: string };

export interface CapturingLogger {
  logger: Logger;
  /** Every line logged so far, parsed. */
  lines: LogLine[];
  /** The lines with message `msg`, of `group` when given. */
  withMessage(msg: string, group?: string): LogLine[];
}

/** A pino logger at `level` (default info) that keeps its lines for a test to read. */
export function capturingLogger(level = 'info'): CapturingLogger {
  const lines: LogLine[] = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return {
    logger,
    lines,
    withMessage: (msg, group) => lines.filter((l) => l.msg === msg && (group === undefined || l.group === group)),
  };
}

import type { Logger } from '@streamfleet/core';

/**
 * Signals the worker handles, and why:
 *
 * - `SIGTERM`: what orchestrators send to stop a process (docker stop, Kubernetes, systemd).
 *   Graceful: stop reading, let in-flight handlers finish, flush acks, exit 0.
 * - `SIGINT`: Ctrl-C in a terminal, or `pnpm`/`turbo` forwarding it. Same graceful path.
 * - A second `SIGTERM`/`SIGINT` while shutting down means "now": exit at once with
 *   128 + signal number (130 for SIGINT, 143 for SIGTERM), the shell convention. Nothing is
 *   lost: unacknowledged entries stay pending and another worker claims them.
 *
 * Not handled: `SIGKILL` (cannot be), `SIGHUP` (no config reload; default behaviour ends the
 * process, which is right for a worker whose terminal went away), `SIGUSR1/2` (left to Node's
 * inspector). Safety net: if the graceful path overruns `hardDeadlineMs`, exit 1.
 */
export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

const SIGNAL_NUMBER: Record<ShutdownSignal, number> = { SIGINT: 2, SIGTERM: 15 };

export interface ShutdownOptions {
  logger: Logger;
  /** The graceful path; its rejection exits 1. */
  shutdown(signal: ShutdownSignal): Promise<void>;
  /** Exit 1 if the graceful path has not finished by then. */
  hardDeadlineMs: number;
  exit?: (code: number) => never;
}

/** Installs the handlers once; returns a function that removes them (tests). */
export function handleShutdownSignals(options: ShutdownOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let shuttingDown = false;
  const onSignal = (signal: ShutdownSignal) => {
    if (shuttingDown) {
      options.logger.warn({ signal }, 'second signal: exiting now');
      exit(128 + SIGNAL_NUMBER[signal]);
      return;
    }
    shuttingDown = true;
    options.logger.info({ signal }, 'shutting down gracefully (send the signal again to exit at once)');
    const watchdog = setTimeout(() => {
      options.logger.error({ hardDeadlineMs: options.hardDeadlineMs }, 'graceful shutdown overran; exiting');
      exit(1);
    }, options.hardDeadlineMs);
    watchdog.unref();
    options.shutdown(signal).then(
      () => {
        clearTimeout(watchdog);
        options.logger.info('shutdown complete');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(watchdog);
        options.logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  const handlers = SHUTDOWN_SIGNALS.map((signal) => {
    const handler = () => onSignal(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  return () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
}

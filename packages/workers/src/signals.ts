import type { Logger } from '@streamfleet/core';

/**
 * Signals the worker handles, and why:
 *
 * - `SIGTERM`: what orchestrators send to stop a process (docker stop, Kubernetes, systemd).
 *   Graceful: stop reading, let in-flight handlers finish, flush acks, exit 0.
 * - `SIGINT`: Ctrl-C in a terminal, or `pnpm`/`turbo` forwarding it. Same graceful path.
 * - A repeat within `repeatWindowMs` (1 s) of the first signal is the same request, not a new
 *   one: Ctrl-C reaches every process of the terminal's foreground group, and a wrapper
 *   (`pnpm`, `sh`, the tsx CLI, a spawner) often relays the same signal again a few ms later.
 * - A later `SIGTERM`/`SIGINT` while shutting down means "now": exit at once with
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

/** How long after the first signal a repeat still counts as the same request. */
export const REPEAT_SIGNAL_WINDOW_MS = 1000;

export interface ShutdownOptions {
  logger: Logger;
  /**
   * The graceful path; its rejection exits 1. It may resolve to the exit code (default 0),
   * e.g. non-zero when the shutdown was started because something failed.
   */
  shutdown(signal: ShutdownSignal): Promise<number | undefined>;
  /** Exit 1 if the graceful path has not finished by then. */
  hardDeadlineMs: number;
  /** A repeated signal this soon after the first is ignored. Default `REPEAT_SIGNAL_WINDOW_MS`. */
  repeatWindowMs?: number;
  exit?: (code: number) => never;
}

/** Installs the handlers once; returns a function that removes them (tests). */
export function handleShutdownSignals(options: ShutdownOptions): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const repeatWindowMs = options.repeatWindowMs ?? REPEAT_SIGNAL_WINDOW_MS;
  let firstSignalAt: number | undefined;
  const onSignal = (signal: ShutdownSignal) => {
    if (firstSignalAt !== undefined) {
      const sinceFirstMs = Math.round(performance.now() - firstSignalAt);
      if (sinceFirstMs < repeatWindowMs) {
        options.logger.debug({ signal, sinceFirstMs }, 'repeated signal: already shutting down');
        return;
      }
      options.logger.warn({ signal, sinceFirstMs }, 'second signal: exiting now');
      exit(128 + SIGNAL_NUMBER[signal]);
      return;
    }
    firstSignalAt = performance.now();
    options.logger.info({ signal }, 'shutting down gracefully (a signal again after a second exits at once)');
    const watchdog = setTimeout(() => {
      options.logger.error({ hardDeadlineMs: options.hardDeadlineMs }, 'graceful shutdown overran; exiting');
      exit(1);
    }, options.hardDeadlineMs);
    watchdog.unref();
    options.shutdown(signal).then(
      (result) => {
        clearTimeout(watchdog);
        const exitCode = typeof result === 'number' ? result : 0;
        options.logger.info(exitCode === 0 ? {} : { exitCode }, 'shutdown complete');
        exit(exitCode);
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

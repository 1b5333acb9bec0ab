import { type Logger, silentLogger } from '../logging/index';

export interface PeriodicOptions {
  /** Names the task in logs. */
  name: string;
  intervalMs: number;
  logger?: Logger;
}

/**
 * Runs a housekeeping task every `intervalMs` until closed: never two runs at once (the
 * next run is timed from the end of the last), a failing run is logged and the schedule
 * goes on, and the timer does not keep the process alive. `close()` waits for a run in
 * progress.
 */
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<void> | undefined;
  private stopped = true;
  private readonly logger: Logger;

  constructor(
    private readonly options: PeriodicOptions,
    private readonly task: () => Promise<unknown>,
  ) {
    this.logger = (options.logger ?? silentLogger).child({ component: options.name });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.current;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.task()
        .then(
          () => undefined,
          (err: unknown) => this.logger.warn({ err }, `${this.options.name} failed; trying again later`),
        )
        .finally(() => {
          this.current = undefined;
          this.schedule();
        });
    }, this.options.intervalMs);
    this.timer.unref();
  }
}

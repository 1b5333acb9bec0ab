/**
 * Shared by the entrypoints (`main.ts`, `all.ts`, `migrate.ts`): the only code in this
 * package that reads `process.env`, installs signal handlers or calls `process.exit`.
 */
import {
  type Config,
  ConfigError,
  createLogger,
  createPostgres,
  ensureDatabase,
  type Logger,
  loadConfig,
  migrate,
} from '@streamfleet/core';
import { defaultRegistry, UnknownGroupError } from './groups/index';
import { handleShutdownSignals } from './signals';
import { Worker } from './worker';

/** Parses the environment; on a `ConfigError` prints the message (it names the variable) and exits 1. */
export function loadConfigOrExit(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`streamfleet: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

export function createProcessLogger(config: Config, name: string): Logger {
  return createLogger({ level: config.logLevel, name });
}

/**
 * Creates the database named in `DATABASE_URL` when missing and applies pending migrations
 * (advisory-locked: several processes may race). Throws what went wrong.
 */
export async function migrateDatabase(config: Config, logger: Logger): Promise<void> {
  const { created } = await ensureDatabase(config.databaseUrl);
  if (created) logger.info('database created');
  const sql = createPostgres(config.databaseUrl, { max: 1, applicationName: 'streamfleet-migrate' });
  try {
    const result = await migrate(sql);
    logger.info(result, result.applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Extra, test-only knob outside core's schema: simulated handler work in the e2e groups. */
function e2eHandlerDelayMs(): number | undefined {
  const raw = process.env.E2E_HANDLER_DELAY_MS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`streamfleet: Invalid environment:\n  E2E_HANDLER_DELAY_MS: must be an integer >= 0\n`);
    process.exit(1);
  }
  return n;
}

export interface RunWorkerOptions {
  /**
   * Extra work for the graceful shutdown, after the worker closed (e.g. wait for the API
   * child). May resolve to the process's exit code (default 0).
   */
  onShutdown?: () => Promise<number | undefined>;
}

/**
 * Builds and starts a worker for `config.workerGroups`, with SIGTERM/SIGINT handling
 * (see `signals.ts`). Exits 1 on an unknown group name (in `WORKER_GROUPS` or
 * `RETRY_OVERRIDES`) or a failed start.
 */
export async function runWorker(config: Config, logger: Logger, options: RunWorkerOptions = {}): Promise<Worker> {
  let worker: Worker;
  try {
    const delay = e2eHandlerDelayMs();
    worker = await Worker.create({
      config,
      logger,
      registry: defaultRegistry(delay === undefined ? {} : { e2eHandlerDelayMs: delay }),
    });
  } catch (err) {
    // A bad WORKER_GROUPS, or RETRY_OVERRIDES naming an unknown group: both only checkable here.
    if (err instanceof UnknownGroupError || err instanceof ConfigError) {
      process.stderr.write(`streamfleet: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  handleShutdownSignals({
    logger,
    hardDeadlineMs: config.shutdownTimeoutMs + 10_000,
    async shutdown() {
      worker.markClosing();
      await worker.close({ timeoutMs: config.shutdownTimeoutMs });
      return options.onShutdown?.();
    },
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting');
    process.exit(1);
  });
  try {
    await worker.start();
  } catch (err) {
    logger.fatal({ err }, 'worker failed to start');
    process.exit(1);
  }
  return worker;
}

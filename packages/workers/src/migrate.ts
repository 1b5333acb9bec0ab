/**
 * `pnpm migrate`: creates the database named in `DATABASE_URL` when missing and applies
 * pending migrations. Safe to run from several processes at once (advisory lock).
 */
import { createProcessLogger, loadConfigOrExit, migrateDatabase } from './entrypoint';

const config = loadConfigOrExit();
const logger = createProcessLogger(config, 'streamfleet-migrate');
try {
  await migrateDatabase(config, logger);
} catch (err) {
  logger.fatal({ err }, 'migration failed');
  process.exit(1);
}

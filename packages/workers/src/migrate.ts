/**
 * `pnpm migrate`: creates the database named in `DATABASE_URL` when missing and applies
 * pending migrations. Safe to run from several processes at once (advisory lock).
 */
import { createPostgres, ensureDatabase, migrate } from '@streamfleet/core';
import { createProcessLogger, loadConfigOrExit } from './entrypoint';

const config = loadConfigOrExit();
const logger = createProcessLogger(config, 'streamfleet-migrate');
try {
  const { created } = await ensureDatabase(config.databaseUrl);
  if (created) logger.info('database created');
  const sql = createPostgres(config.databaseUrl, { max: 1, applicationName: 'streamfleet-migrate' });
  try {
    const result = await migrate(sql);
    logger.info(result, result.applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await sql.end({ timeout: 5 });
  }
} catch (err) {
  logger.fatal({ err }, 'migration failed');
  process.exit(1);
}

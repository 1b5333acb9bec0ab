/**
 * `pnpm start`: the whole system on one machine, on localhost Redis and Postgres —
 * migrations, the HTTP API (`packages/api/src/server.ts` as a child process, exactly as
 * `pnpm start:api` runs it) and one worker for every group, with the outbox relay.
 *
 * The API runs in its own process group: Ctrl-C reaches only this process, which then
 * stops the worker and sends the API one SIGTERM (a second one would make it exit at once).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createProcessLogger, loadConfigOrExit, migrateDatabase, runWorker } from './entrypoint';

const config = loadConfigOrExit();
const logger = createProcessLogger(config, 'streamfleet');

try {
  await migrateDatabase(config, logger);
} catch (err) {
  logger.fatal({ err }, `migrations failed; is Postgres up at ${redact(config.databaseUrl)}?`);
  process.exit(1);
}

const apiDir = fileURLToPath(new URL('../../api', import.meta.url));
const apiEntry = 'src/server.ts';
let api: ReturnType<typeof spawn> | undefined;
let stopping = false;
if (existsSync(`${apiDir}/${apiEntry}`)) {
  api = spawn(process.execPath, ['--import', 'tsx', apiEntry], {
    cwd: apiDir,
    env: process.env,
    stdio: 'inherit',
    detached: true,
  });
  const child = api;
  child.on('exit', (code, signal) => {
    if (stopping) return;
    logger.fatal({ code, signal }, 'API process exited; stopping');
    process.kill(process.pid, 'SIGTERM');
  });
  // Whatever way this process ends, don't leave the API behind.
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
} else {
  logger.warn(`no API at packages/api/${apiEntry}; running the worker only`);
}

await runWorker({ ...config, workerGroups: undefined }, logger, {
  async onShutdown() {
    stopping = true;
    const child = api;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  },
});

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

/**
 * `pnpm start`: the whole system on one machine, on localhost Redis and Postgres —
 * migrations, the HTTP API (`packages/api/src/server.ts` as a child process, exactly as
 * `pnpm start:api` runs it) and one worker for every group, with the outbox relay.
 *
 * Never leaves the API behind:
 * - SIGTERM/SIGINT: forwarded to the API at once (it runs in its own process group, so this
 *   process is its only source of signals), then the worker drains; exit once both stopped.
 *   Both sides treat a repeat within a second as the same request, so a relayed Ctrl-C
 *   (terminal group + pnpm) is one stop, and a later one forces both out.
 * - The API exits unexpectedly (e.g. its port is taken): the worker stops too, exit 1.
 * - This process dies anyway (SIGKILL, crash): the API sees its IPC channel close and
 *   shuts itself down.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createProcessLogger, loadConfigOrExit, migrateDatabase, runWorker } from './entrypoint';
import { SHUTDOWN_SIGNALS, type ShutdownSignal } from './signals';

const config = loadConfigOrExit();
const logger = createProcessLogger(config, 'streamfleet');

try {
  await migrateDatabase(config, logger);
} catch (err) {
  logger.fatal({ err }, `migrations failed; is Postgres up at ${redact(config.databaseUrl)}?`);
  process.exit(1);
}

type Phase = 'starting' | 'running' | 'stopping';
let phase: Phase = 'starting';
/** Set when the API exited on its own: the worker then stops and the process exits 1. */
let apiFailed = false;

const apiDir = fileURLToPath(new URL('../../api', import.meta.url));
const apiEntry = 'src/server.ts';
let api: ChildProcess | undefined;
let apiExited: Promise<number | null> = Promise.resolve(0);
if (existsSync(`${apiDir}/${apiEntry}`)) {
  const child = spawn(process.execPath, ['--import', 'tsx', apiEntry], {
    cwd: apiDir,
    env: process.env,
    // The IPC channel is how the API notices this process is gone, even after a SIGKILL.
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Its own process group: Ctrl-C reaches this process only, which forwards it once.
    detached: true,
  });
  api = child;
  apiExited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      if (phase === 'stopping') {
        if (code !== 0) logger.error({ code, signal }, 'API process did not stop cleanly');
        resolve(code);
        return;
      }
      apiFailed = true;
      logger.fatal({ code, signal }, 'API process exited unexpectedly; stopping');
      resolve(code);
      // Before the worker is running its signal handlers are not installed yet: it is
      // stopped once it is (below).
      if (phase === 'running') process.kill(process.pid, 'SIGTERM');
    });
  });
  child.on('error', (err) => logger.error({ err }, 'API process error'));
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, () => forward(signal));
  // Whatever way this process ends, don't leave the API behind. After a forced exit this is
  // the API's second signal, so it exits at once too.
  process.on('exit', () => {
    if (isRunning(child)) child.kill('SIGTERM');
  });
} else {
  logger.warn(`no API at packages/api/${apiEntry}; running the worker only`);
}

/** Every shutdown signal this process gets, the API gets too (it dedupes repeats itself). */
function forward(signal: ShutdownSignal): void {
  const child = api;
  if (child && isRunning(child)) child.kill(signal);
  if (phase === 'starting') {
    // The worker's own handlers are not installed yet: nothing to drain, stop the API and go.
    phase = 'stopping';
    logger.info({ signal }, 'stopping during startup');
    void apiExited.then((code) => process.exit(code === 0 ? 0 : 1));
    return;
  }
  phase = 'stopping';
}

await runWorker({ ...config, workerGroups: undefined }, logger, {
  async onShutdown() {
    phase = 'stopping';
    const code = await apiExited;
    return apiFailed || code !== 0 ? 1 : 0;
  },
});
if (phase === 'starting') {
  phase = 'running';
  if (apiFailed) process.kill(process.pid, 'SIGTERM');
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

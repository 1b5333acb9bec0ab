/**
 * Worker process (`pnpm start:worker`): runs the consumer groups named in `WORKER_GROUPS`
 * (default: every registered group), their retry workers and the engine's housekeeping,
 * and serves `/healthz`, `/readyz`, `/metrics` on `WORKER_PORT`. Start several to scale.
 */
import { createProcessLogger, loadConfigOrExit, runWorker } from './entrypoint';

const config = loadConfigOrExit();
const logger = createProcessLogger(config, 'streamfleet-worker');
await runWorker(config, logger);

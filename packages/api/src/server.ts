/**
 * API entrypoint: reads the environment once, connects, serves, and shuts down cleanly.
 *
 * Signals: SIGTERM (orchestrators) and SIGINT (Ctrl-C) both start a graceful shutdown:
 * `/readyz` turns 503 so load balancers stop routing here, in-flight requests finish,
 * then the app and every connection close, exit 0. A repeat within a second of the first
 * signal is the same request (Ctrl-C reaches the whole process group and wrappers relay it
 * again); a later one exits at once with 128 + signal number, like the worker.
 *
 * Started by `pnpm start`'s spawner (`packages/workers/src/all.ts`) it has an IPC channel to
 * that parent: when the channel closes (the parent died, even by SIGKILL) it shuts down
 * gracefully instead of living on as an orphan holding the port.
 */
import type { AddressInfo } from 'node:net';
import {
  ConfigError,
  createCatalog,
  createLogger,
  createPostgres,
  createRedis,
  DeadLetterStream,
  loadConfig,
  OrderService,
  RetryQueues,
  StreamfleetKeys,
  StreamProducer,
} from '@streamfleet/core';
import { buildApp } from './app';
import { inventoryPlugin } from './routes/inventory';
import { ordersPlugin } from './routes/orders';

/** How long after the first signal a repeat still counts as the same request (as in the worker). */
const REPEAT_SIGNAL_WINDOW_MS = 1000;

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      // As the worker entrypoints print it, so `pnpm start`'s interleaved output says whose it is.
      process.stderr.write(`streamfleet: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, name: 'streamfleet-api' });
  const keys = new StreamfleetKeys(config.prefix);
  // Requests must fail fast when Redis is away (readyz reports it), not queue forever.
  // Auto-pipelining: the XADDs of concurrent requests leave in one write per event-loop
  // turn instead of one write (syscall) each, which was the API's largest single CPU cost.
  // Every command then rides in an ioredis pipeline: patches/ioredis@6.0.0.patch makes a
  // finished pipeline release its commands, which were otherwise kept until a full GC.
  const redis = createRedis(config.redisUrl, {
    cluster: config.redisCluster,
    connectionName: `${config.prefix}:api`,
    maxRetriesPerRequest: 2,
    enableAutoPipelining: true,
  });
  // BullMQ wants a connection that never gives up on a command; give it its own.
  const bullConnection = createRedis(config.redisUrl, {
    cluster: config.redisCluster,
    connectionName: `${config.prefix}:api:retry`,
  });
  const catalog = createCatalog();
  const retryQueues = new RetryQueues({ connection: bullConnection, keys, logger });
  const sql = createPostgres(config.databaseUrl, { max: config.databasePoolMax, applicationName: 'streamfleet-api' });
  const deps = {
    redis,
    catalog,
    // Routes validate every event against the catalog already; the producer need not repeat it.
    producer: new StreamProducer({ redis, keys }),
    deadLetters: new DeadLetterStream({ redis, keys, retryQueues, catalog, logger }),
    retryQueues,
    logger,
    plugins: [ordersPlugin(new OrderService(sql)), inventoryPlugin(sql)],
    readinessChecks: { postgres: () => sql`select 1` },
  };
  const app = buildApp(config, deps);

  const closeConnections = async () => {
    await retryQueues.close();
    await Promise.all([redis.quit(), bullConnection.quit(), sql.end({ timeout: 5 })]);
  };

  let stopping = false;
  const shutdown = async (cause: { signal: string } | { reason: string }) => {
    stopping = true;
    logger.info(cause, 'shutting down gracefully');
    app.beginShutdown();
    const timer = setTimeout(() => {
      logger.error({ shutdownTimeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    timer.unref();
    try {
      await app.close();
      await closeConnections();
      logger.info('shutdown complete');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  let firstSignalAt: number | undefined;
  const onSignal = (signal: 'SIGTERM' | 'SIGINT') => {
    if (firstSignalAt !== undefined) {
      const sinceFirstMs = Math.round(performance.now() - firstSignalAt);
      if (sinceFirstMs < REPEAT_SIGNAL_WINDOW_MS) {
        logger.debug({ signal, sinceFirstMs }, 'repeated signal: already shutting down');
        return;
      }
      logger.warn({ signal, sinceFirstMs }, 'second signal: exiting now');
      process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    }
    firstSignalAt = performance.now();
    if (!stopping) void shutdown({ signal });
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  if (process.send) {
    // Spawned with an IPC channel (by `pnpm start`): its closing means the parent is gone.
    process.channel?.unref();
    process.once('disconnect', () => {
      if (stopping) return;
      logger.warn('parent process exited; shutting down');
      void shutdown({ reason: 'parent exited' });
    });
  }

  await app.ready();
  // Fastify logs one plain "Server listening at" line per interface; the line below says it once.
  const appLogLevel = app.log.level;
  app.log.level = 'silent';
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (err) {
    if (stopping) return;
    const { code, message } = err as NodeJS.ErrnoException;
    const where = `${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
    const why = code === 'EADDRINUSE' ? `PORT ${config.port} is already in use` : message;
    logger.fatal(
      { code, port: config.port, host: config.host, address: where },
      `cannot listen on ${where}: ${why}; set PORT (and HOST) to a free address`,
    );
    process.exit(1);
  } finally {
    app.log.level = appLogLevel;
  }
  logger.info(listeningLine(app.server.address() as AddressInfo), 'listening');
  if (!config.adminToken) logger.warn('ADMIN_TOKEN is not set: admin routes refuse every request');
}

/**
 * Where the server is bound (`address`, `host`, `port`: `http://0.0.0.0:3000` when bound to
 * every interface) and a URL to reach it by (`url`, `docs`, `openapi`): `localhost` for a
 * wildcard address. Fastify's `listen()` answers `http://127.0.0.1:3000` for a wildcard, the
 * first of its interfaces, which read as if the server were reachable from this host only.
 */
function listeningLine({ address: host, port }: AddressInfo) {
  const bracketed = host.includes(':') ? `[${host}]` : host;
  const wildcard = host === '0.0.0.0' || host === '::';
  const url = `http://${wildcard ? 'localhost' : bracketed}:${port}`;
  return { address: `http://${bracketed}:${port}`, host, port, url, docs: `${url}/docs`, openapi: `${url}/docs/json` };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
